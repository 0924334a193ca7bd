-- The wallet moves a completion or a reversal makes (functions-sql's wallets file): each type,
-- refunds against what remains refundable, overdrafts refused, reversals, and
-- get_wallet_balance.
-- Runs as postgres on a fresh clone in one transaction: now() is constant, so every transaction
-- here is created (and moved) at now(). The users, notes and helpers are tests/sql/fixtures/
-- transactions.sql.
begin;
select plan(44);

call tests.fixture('transactions');
call pg_temp.story_created();

-- Balances ---------------------------------------------------------------------------------------

-- UGX: Aline's credit, debit, fee, payment, refund, transfer to Bosco and commission.
select is(
    pg_temp.make('b credit', 'aline', 'credit', 10000, 'UGX')::text
    || pg_temp.make('b debit', 'aline', 'debit', 1000, 'UGX')::text
    || pg_temp.make('b fee', 'aline', 'fee', 100, 'UGX')::text
    || pg_temp.make('b payment', 'aline', 'payment', 2000, 'UGX')::text
    || pg_temp.make('b transfer', 'aline', 'transfer', 1400, 'UGX', 'bosco')::text
    || pg_temp.make('b commission', 'aline', 'commission', 999, 'UGX')::text,
    pg_temp.txn('b credit')::text || pg_temp.txn('b debit') || pg_temp.txn('b fee')
    || pg_temp.txn('b payment') || pg_temp.txn('b transfer') || pg_temp.txn('b commission'),
    'UGX transactions of each type, pending'
);
select is(
    public.get_wallet_balance(pg_temp.uid('aline'), 'UGX'), 0::numeric,
    'pending transactions move nothing: no wallet, balance 0'
);
select is(
    pg_temp.move('b credit', 'processing') || ' '
    || pg_temp.balance('aline', 'UGX'),
    'processing 0',
    'nor do processing ones'
);
select is(
    pg_temp.move('b credit', 'completed') || ' '
    || pg_temp.balance('aline', 'UGX'),
    'completed 10000',
    'a completed credit adds: 10000'
);
select is(
    pg_temp.move('b debit', 'processing', 'completed') || ' '
    || pg_temp.balance('aline', 'UGX'),
    'completed 9000',
    'a completed debit takes: 9000'
);
select is(
    pg_temp.move('b fee', 'processing', 'completed') || ' '
    || pg_temp.balance('aline', 'UGX'),
    'completed 8900',
    'a completed fee takes: 8900'
);
select is(
    pg_temp.move('b payment', 'processing', 'completed') || ' '
    || pg_temp.balance('aline', 'UGX'),
    'completed 6900',
    'a completed payment takes: 6900'
);
select is(
    pg_temp.make('b refund', 'aline', 'refund', 500, 'UGX', null, 'b payment')::text
    || pg_temp.move('b refund', 'processing', 'completed') || ' '
    || pg_temp.balance('aline', 'UGX'),
    pg_temp.txn('b refund') || 'completed 7400',
    'a completed refund adds: 7400'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 1501, 'UGX', null, '{}', null, pg_temp.txn('b payment')
    ),
    'PT409',
    format(
        'create_transaction: a refund of 1501 UGX exceeds the 1500 UGX still refundable of %s',
        pg_temp.ref('b payment')
    ),
    'a completed partial refund counts against what remains refundable'
);
-- The directory is written before the refund is checked: a retry of a refund of all that
-- remained is a replay, not a refund that no longer fits. It is failed after, so that the
-- payment can be reversed below.
insert into pg_temp.made
select 'b full refund', t.*
from public.create_transaction(
    pg_temp.uid('aline'), 'refund', 1500, 'UGX', 'k-b-full-refund', '{}', null,
    pg_temp.txn('b payment')
) as t;
select is(
    (select t.id from public.create_transaction(
        pg_temp.uid('aline'), 'refund', 1500, 'UGX', 'k-b-full-refund', '{}', null,
        pg_temp.txn('b payment')
    ) as t)::text || ' ' || pg_temp.move('b full refund', 'failed'),
    pg_temp.txn('b full refund') || ' failed',
    'a refund of all that remained, retried with its key, is replayed, not refused'
);
select is(
    pg_temp.move('b transfer', 'processing', 'completed') || ' '
    || pg_temp.balance('aline', 'UGX') || ' '
    || pg_temp.balance('bosco', 'UGX'),
    'completed 6000 1400',
    'a completed transfer takes from the user (6000) and gives to the counterparty (1400)'
);
select is(
    pg_temp.move('b commission', 'processing', 'completed') || ' '
    || pg_temp.balance('aline', 'UGX') || ' '
    || pg_temp.balance('bosco', 'UGX'),
    'completed 6000 1400',
    'a completed commission moves nothing'
);
select results_eq(
    $$select user_id, currency, balance from public.wallets where currency = 'UGX'
       order by user_id$$,
    $$values (pg_temp.uid('aline'), 'UGX'::text, 6000::numeric),
             (pg_temp.uid('bosco'), 'UGX', 1400)$$,
    'the wallets: one per user and currency'
);

-- An overdraft: refused, changing nothing.
select is(
    pg_temp.make('b overdraft', 'aline', 'debit', 6001, 'UGX')::text
    || pg_temp.move('b overdraft', 'processing'),
    pg_temp.txn('b overdraft') || 'processing',
    'a debit of 6001 is processing'
);
select throws_ok(
    format(
        'select public.update_transaction_status(%L, %L)', pg_temp.txn('b overdraft'), 'completed'
    ),
    'PT402',
    format(
        'insufficient funds: completing debit %s needs 6001 UGX but wallet %s holds 6000 UGX',
        pg_temp.ref('b overdraft'), pg_temp.uid('aline')
    ),
    'completing a debit beyond the balance is refused'
);
select results_eq(
    $$select t.status::text, t.completed_at, public.get_wallet_balance(t.user_id, 'UGX'),
             (select count(*) from public.transaction_events as e where e.transaction_id = t.id),
             (select count(*) from public.outbox_events as o where o.aggregate_id = t.id::text)
        from public.transactions as t
       where t.id = pg_temp.txn('b overdraft')$$,
    $$values ('processing'::text, null::timestamptz, 6000::numeric, 2::bigint, 2::bigint)$$,
    'and changes nothing: still processing, the balance 6000, no event'
);
select is(
    pg_temp.make('d overdraft', 'dan', 'debit', 10, 'UGX')::text
    || pg_temp.move('d overdraft', 'processing'),
    pg_temp.txn('d overdraft') || 'processing',
    'a debit of 10 for Dan, who has no UGX wallet, is processing'
);
select throws_ok(
    format(
        'select public.update_transaction_status(%L, %L)', pg_temp.txn('d overdraft'), 'completed'
    ),
    'PT402',
    format(
        'insufficient funds: completing debit %s needs 10 UGX but wallet %s holds 0 UGX',
        pg_temp.ref('d overdraft'), pg_temp.uid('dan')
    ),
    'completing a debit without a wallet is refused'
);
select is_empty(
    $$select * from public.wallets where user_id = pg_temp.uid('dan') and currency = 'UGX'$$,
    'and leaves no wallet behind'
);

-- Reversals undo exactly what the completion did.
select is(
    pg_temp.move('b debit', 'reversed') || ' '
    || pg_temp.balance('aline', 'UGX'),
    'reversed 7000',
    'reversing a debit gives it back: 7000'
);
select is(
    pg_temp.move('b transfer', 'reversed') || ' '
    || pg_temp.balance('aline', 'UGX') || ' '
    || pg_temp.balance('bosco', 'UGX'),
    'reversed 8400 0',
    'reversing a transfer moves it back: 8400 and 0'
);
select throws_ok(
    format(
        'select public.update_transaction_status(%L, %L)', pg_temp.txn('b payment'), 'reversed'
    ),
    'PT409',
    format(
        'update_transaction_status: %s has refunds; reverse those instead',
        pg_temp.ref('b payment')
    ),
    'a payment with a completed refund cannot be reversed'
);
select is(
    pg_temp.move('b refund', 'reversed') || ' '
    || pg_temp.balance('aline', 'UGX'),
    'reversed 7900',
    'reversing the refund takes it back: 7900'
);
select is(
    pg_temp.move('b payment', 'reversed') || ' '
    || pg_temp.balance('aline', 'UGX'),
    'reversed 9900',
    'then the payment can be reversed: 9900'
);
select is(
    pg_temp.make('b fee refund', 'aline', 'refund', 50, 'UGX', null, 'b fee')::text
    || pg_temp.move('b fee refund', 'failed')
    || pg_temp.move('b fee', 'reversed') || ' '
    || pg_temp.balance('aline', 'UGX'),
    pg_temp.txn('b fee refund') || 'failedreversed 10000',
    'a failed refund does not stop a reversal: the fee comes back, 10000'
);

-- A chain: a reversed refund gives back what it took from the refundable amount, so the payment
-- can be refunded again in full, and no further; with no live refund left, it can be reversed.
select is(
    pg_temp.make('c credit', 'dan', 'credit', 1000, 'GHS')::text
    || pg_temp.move('c credit', 'processing', 'completed')
    || pg_temp.make('c payment', 'dan', 'payment', 600, 'GHS')::text
    || pg_temp.move('c payment', 'processing', 'completed') || ' '
    || pg_temp.balance('dan', 'GHS') || ' '
    || pg_temp.make('c refund 1', 'dan', 'refund', 600, 'GHS', null, 'c payment')::text
    || pg_temp.move('c refund 1', 'processing', 'completed') || ' '
    || pg_temp.balance('dan', 'GHS') || ' '
    || pg_temp.move('c refund 1', 'reversed') || ' '
    || pg_temp.balance('dan', 'GHS') || ' '
    || pg_temp.make('c refund 2', 'dan', 'refund', 600, 'GHS', null, 'c payment')::text
    || pg_temp.move('c refund 2', 'processing', 'completed') || ' '
    || pg_temp.balance('dan', 'GHS'),
    pg_temp.txn('c credit')::text || 'completed' || pg_temp.txn('c payment') || 'completed 400 '
    || pg_temp.txn('c refund 1') || 'completed 1000 reversed 400 '
    || pg_temp.txn('c refund 2') || 'completed 1000',
    'a reversed refund frees what it took: the payment is refunded in full a second time'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('dan'), 'refund', 0.01, 'GHS', null, '{}', null, pg_temp.txn('c payment')
    ),
    'PT409',
    format(
        'create_transaction: a refund of 0.01 GHS exceeds the 0 GHS still refundable of %s',
        pg_temp.ref('c payment')
    ),
    'and then nothing more'
);
select is(
    pg_temp.move('c refund 2', 'reversed') || ' '
    || pg_temp.move('c payment', 'reversed') || ' '
    || pg_temp.balance('dan', 'GHS'),
    'reversed reversed 1000',
    'with both refunds reversed the payment can be reversed: 1000, the credit alone'
);
select is(
    pg_temp.make('b payment 2', 'aline', 'payment', 300, 'UGX')::text
    || pg_temp.move('b payment 2', 'processing', 'completed')
    || pg_temp.make('b payment 2 refund', 'aline', 'refund', 100, 'UGX', null, 'b payment 2')::text,
    pg_temp.txn('b payment 2') || 'completed' || pg_temp.txn('b payment 2 refund'),
    'a payment of 300 completes and a refund of 100 of it is pending'
);
select throws_ok(
    format(
        'select public.update_transaction_status(%L, %L)', pg_temp.txn('b payment 2'), 'reversed'
    ),
    'PT409',
    format(
        'update_transaction_status: %s has refunds; reverse those instead',
        pg_temp.ref('b payment 2')
    ),
    'a payment with a pending refund cannot be reversed'
);
select is(
    pg_temp.make('b spend', 'aline', 'debit', 9000, 'UGX')::text
    || pg_temp.move('b spend', 'processing', 'completed') || ' '
    || pg_temp.balance('aline', 'UGX'),
    pg_temp.txn('b spend') || 'completed 700',
    'Aline spends 9000: 700 left'
);
select throws_ok(
    format(
        'select public.update_transaction_status(%L, %L)', pg_temp.txn('b credit'), 'reversed'
    ),
    'PT402',
    format(
        'insufficient funds: reversing credit %s needs 10000 UGX but wallet %s holds 700 UGX',
        pg_temp.ref('b credit'), pg_temp.uid('aline')
    ),
    'reversing a credit already spent is refused'
);
select results_eq(
    $$select t.status::text, public.get_wallet_balance(t.user_id, 'UGX'),
             (select count(*) from public.transaction_events as e where e.transaction_id = t.id)
        from public.transactions as t
       where t.id = pg_temp.txn('b credit')$$,
    $$values ('completed'::text, 700::numeric, 3::bigint)$$,
    'and changes nothing: still completed, 700, no event'
);
-- A transfer whose counterparty spent it cannot be reversed (TZS: Aline to Dan).
select is(
    pg_temp.make('t credit', 'aline', 'credit', 1000, 'TZS')::text
    || pg_temp.move('t credit', 'processing', 'completed')
    || pg_temp.make('t transfer', 'aline', 'transfer', 400, 'TZS', 'dan')::text
    || pg_temp.move('t transfer', 'processing', 'completed')
    || pg_temp.make('t spend', 'dan', 'debit', 300, 'TZS')::text
    || pg_temp.move('t spend', 'processing', 'completed') || ' '
    || pg_temp.balance('aline', 'TZS') || ' ' || pg_temp.balance('dan', 'TZS'),
    pg_temp.txn('t credit') || 'completed' || pg_temp.txn('t transfer') || 'completed'
    || pg_temp.txn('t spend') || 'completed 600 100',
    'Aline transfers 400 TZS to Dan, who spends 300'
);
select throws_ok(
    format(
        'select public.update_transaction_status(%L, %L)', pg_temp.txn('t transfer'), 'reversed'
    ),
    'PT402',
    format(
        'insufficient funds: reversing transfer %s needs 400 TZS but wallet %s holds 100 TZS',
        pg_temp.ref('t transfer'), pg_temp.uid('dan')
    ),
    'reversing the transfer is refused on the counterparty''s side'
);
select results_eq(
    $$select t.status::text, public.get_wallet_balance(t.user_id, 'TZS'),
             public.get_wallet_balance(t.counterparty_id, 'TZS')
        from public.transactions as t
       where t.id = pg_temp.txn('t transfer')$$,
    $$values ('completed'::text, 600::numeric, 100::numeric)$$,
    'and changes neither side'
);
select is(
    pg_temp.move('b commission', 'reversed') || ' '
    || pg_temp.balance('aline', 'UGX'),
    'reversed 700',
    'reversing a commission moves nothing'
);

-- get_wallet_balance
select is(
    public.get_wallet_balance(pg_temp.uid('claire'), 'UGX'), 0::numeric,
    'get_wallet_balance is 0 for a user without a wallet'
);
select is(
    public.get_wallet_balance(pg_temp.uid('aline'), 'RWF'), 3500::numeric,
    'and the balance for one with a wallet (RWF: 5000 - 1500)'
);
select throws_ok(
    format('select public.get_wallet_balance(%L, %L)', pg_temp.uid('aline'), 'ugx'),
    '22023',
    'get_wallet_balance: p_currency must be an ISO 4217 code the platform handles, in capitals '
    || '(got ugx)',
    'get_wallet_balance refuses a currency it does not know'
);
select throws_ok(
    format('select public.get_wallet_balance(%L, null)', pg_temp.uid('aline')),
    '22023',
    'get_wallet_balance: p_currency must be an ISO 4217 code the platform handles, in capitals '
    || '(got null)',
    'get_wallet_balance refuses a null currency'
);
select throws_ok(
    $$select public.get_wallet_balance(null, 'UGX')$$,
    '22023', 'get_wallet_balance: p_user_id must be a user id',
    'get_wallet_balance refuses a null user'
);
select throws_ok(
    $$select public.get_wallet_balance('00000000-0000-4000-8000-000000000000', 'UGX')$$,
    'PT404', 'get_wallet_balance: no user 00000000-0000-4000-8000-000000000000',
    'get_wallet_balance of an unknown user is PT404 (HTTP 404), not a balance of 0'
);
select throws_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'authenticated',
        pg_temp.user_claims('claire'),
        $$select public.get_wallet_balance('00000000-0000-4000-8000-000000000000', 'UGX')$$
    ),
    '42501', 'get_wallet_balance: a user may read only their own balance',
    'a signed-in user asking about an unknown user is refused as for any other (it does not tell '
    || 'who exists)'
);

select * from finish();
rollback;

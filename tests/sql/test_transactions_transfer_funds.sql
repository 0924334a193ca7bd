-- transfer_funds (functions-sql's transactions file): a transfer between wallets created completed
-- in one call: the balances, the one transaction, event, outbox event and audit rows; its
-- idempotency; every refusal with its SQLSTATE, changing nothing; who may call it.
-- Runs as postgres on a fresh clone in one transaction: now() is constant. The users, notes and
-- helpers are tests/sql/fixtures/transactions.sql.
begin;
select plan(38);

call tests.fixture('transactions');

-- The SQL of a transfer_funds call, as a caller would send it.
create function pg_temp.transfer_sql(
    p_from uuid,
    p_to uuid,
    p_amount numeric,
    p_currency text,
    p_key text default null,
    p_metadata jsonb default '{}'
)
returns text
language sql
as $$
    select format(
        'select public.transfer_funds(%L, %L, %L, %L, %L, %L)',
        p_from, p_to, p_amount, p_currency, p_key, p_metadata
    )
$$;

-- What every refusal must leave as it was.
create function pg_temp.ledger()
returns text
language sql
as $$
    select concat_ws(
        ' ',
        (select count(*) from public.transactions),
        (select count(*) from private.transaction_directory),
        (select count(*) from public.transaction_events),
        (select count(*) from public.outbox_events),
        (select count(*) from public.system_audit_logs),
        (select string_agg(w.user_id || w.currency || w.balance, ',' order by w.user_id, w.currency)
            from public.wallets as w)
    )
$$;

select is(
    pg_temp.make('fund', 'aline', 'credit', 10000, 'RWF')::text
    || pg_temp.move('fund', 'processing', 'completed'),
    pg_temp.txn('fund') || 'completed',
    'Aline is funded with 10000 RWF'
);
insert into pg_temp.seen values
('events', (select count(*) from public.transaction_events)),
('outbox', (select count(*) from public.outbox_events));

-- The happy path ---------------------------------------------------------------------------------

select lives_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'service_role',
        '{"role": "service_role", "sub": "payments-svc"}',
        format(
            'insert into pg_temp.made select %L, t.* '
            || 'from public.transfer_funds(%L, %L, 700, %L, %L, %L) as t',
            'transfer', pg_temp.uid('aline'), pg_temp.uid('bosco'), 'RWF', 'tf-1',
            '{"note": "rent"}'
        )
    ),
    'service_role transfers 700 RWF from Aline to Bosco'
);
select results_eq(
    $$select user_id, counterparty_id, type::text, amount, currency, status::text, idempotency_key,
             metadata, completed_at = now(), created_at = now(),
             reference ~ '^TXN-\d{8}-[0-9A-HJKMNP-TV-Z]{6}$'
        from pg_temp.made where note = 'transfer'$$,
    $$values (pg_temp.uid('aline'), pg_temp.uid('bosco'), 'transfer', 700::numeric, 'RWF',
              'completed', 'tf-1'::text, '{"note": "rent"}'::jsonb, true, true, true)$$,
    'it returns the transfer completed, with its reference, key and metadata'
);
select results_eq(
    $$select status::text, completed_at = now(), amount from public.transactions
       where id = pg_temp.txn('transfer')$$,
    $$values ('completed', true, 700::numeric)$$,
    'public.transactions holds it completed'
);
select is(
    array[pg_temp.balance('aline', 'RWF'), pg_temp.balance('bosco', 'RWF')],
    array[9300, 700]::numeric[],
    'both balances moved: Aline 9300, Bosco 700'
);
select results_eq(
    $$select from_status, to_status, actor_type, actor_id, user_id
        from public.transaction_events where transaction_id = pg_temp.txn('transfer')$$,
    $$values (null::text, 'completed'::text, 'service'::text, 'payments-svc'::text,
              pg_temp.uid('aline'))$$,
    'one transaction_events row: from null to completed, by the service'
);
select results_eq(
    $$select event_type, payload ->> 'status', payload ->> 'amount', payload ->> 'from_status',
             (payload ->> 'counterparty_id')::uuid
        from public.outbox_events where aggregate_id = pg_temp.txn('transfer')::text$$,
    $$values ('transaction.completed'::text, 'completed'::text, '700'::text, null::text,
              pg_temp.uid('bosco'))$$,
    'one outbox event transaction.completed'
);
select results_eq(
    $$select resource_type::text, action::text, new_data ->> 'status'
        from public.system_audit_logs
       where resource_type = 'public.transactions' and resource_id = pg_temp.txn('transfer')::text$$,
    $$values ('public.transactions'::text, 'insert'::text, 'completed'::text)$$,
    'one audit row for the transaction: its insert, completed'
);
select results_eq(
    $$select resource_id::uuid, (old_data ->> 'balance')::numeric, (new_data ->> 'balance')::numeric
        from public.system_audit_logs
       where resource_type = 'public.wallets' and action in ('insert', 'update')
         and resource_id in (pg_temp.uid('aline')::text, pg_temp.uid('bosco')::text)
         and (new_data ->> 'balance')::numeric in (9300, 700)
       order by resource_id$$,
    $$values (pg_temp.uid('aline'), 10000::numeric, 9300::numeric),
             (pg_temp.uid('bosco'), 0, 700)$$,
    'an audit row for each wallet moved (Bosco''s made at 0 first)'
);

-- Idempotency ------------------------------------------------------------------------------------

select is(
    (select t.id from public.transfer_funds(
        pg_temp.uid('aline'), pg_temp.uid('bosco'), 700, 'RWF', 'tf-1', '{"note": "rent"}'
    ) as t),
    pg_temp.txn('transfer'),
    'the same key with the same arguments returns the same transfer'
);
select is(
    concat_ws(
        ' ', pg_temp.balance('aline', 'RWF'), pg_temp.balance('bosco', 'RWF'),
        (
            select count(*) from public.transactions
            where idempotency_key = 'tf-1'
        ),
        (select count(*) from public.transaction_events)
        - pg_temp.seen('events'),
        (select count(*) from public.outbox_events) - pg_temp.seen('outbox')
    ),
    '9300 700 1 1 1',
    'the replay moves nothing again and writes no event'
);
create temp table ledger_before as select pg_temp.ledger() as ledger;
select throws_ok(
    pg_temp.transfer_sql(
        pg_temp.uid('aline'), pg_temp.uid('bosco'), 701, 'RWF', 'tf-1', '{"note": "rent"}'
    ),
    'PT409', null,
    'the same key with another amount is PT409'
);
select throws_ok(
    pg_temp.transfer_sql(
        pg_temp.uid('aline'), pg_temp.uid('claire'), 700, 'RWF', 'tf-1', '{"note": "rent"}'
    ),
    'PT409', null,
    'the same key to another user is PT409'
);
select is(
    (select t.status::text from public.create_transaction(
        pg_temp.uid('aline'), 'transfer', 5, 'RWF', 'tf-pending', '{}', pg_temp.uid('bosco')
    ) as t),
    'pending',
    'create_transaction makes a pending transfer under key tf-pending'
);
truncate ledger_before;
insert into ledger_before select pg_temp.ledger();
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 5, 'RWF', 'tf-pending'),
    'PT409', null,
    'a key create_transaction used is PT409 here, not replayed as completed'
);

-- Refusals ---------------------------------------------------------------------------------------

select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('claire'), pg_temp.uid('aline'), 1, 'RWF', 'tf-over'),
    'PT402', null,
    'Claire, with nothing, transferring 1 RWF is PT402'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 10000, 'RWF', 'tf-over2'),
    'PT402', null,
    'Aline transferring more than her 9300 is PT402'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 1, 'USD', 'tf-usd'),
    'PT402', null,
    'a currency Aline holds none of is PT402'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), null, 'RWF'),
    '22023', null, 'a null amount is 22023'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 0, 'RWF'),
    '22023', null, 'a zero amount is 22023'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), -5, 'RWF'),
    '22023', null, 'a negative amount is 22023'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 1.5, 'RWF'),
    '22023', null, 'more decimals than RWF has is 22023'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('aline'), 1, 'RWF'),
    '22023', null, 'the same user on both sides is 22023'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), null, 1, 'RWF'),
    '22023', null, 'a null recipient is 22023'
);
select throws_ok(
    pg_temp.transfer_sql(null, pg_temp.uid('bosco'), 1, 'RWF'),
    '22023', 'transfer_funds: p_from_user_id must be a user id',
    'a null sender is 22023, named by transfer_funds'' argument'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('nobody'), pg_temp.uid('bosco'), 1, 'RWF'),
    'PT404', 'transfer_funds: no user 99999999-9999-4999-8999-999999999999 (p_from_user_id)',
    'an unknown sender is PT404, named by transfer_funds'' argument'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('nobody'), 1, 'RWF'),
    'PT404', 'transfer_funds: no user 99999999-9999-4999-8999-999999999999 (p_to_user_id)',
    'an unknown recipient is PT404, named by transfer_funds'' argument'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 1, 'XYZ'),
    '22023',
    'transfer_funds: p_currency must be an ISO 4217 code the platform handles, in capitals '
    || '(got XYZ)',
    'an unknown currency is 22023, naming transfer_funds'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 1, 'rwf'),
    '22023', null, 'a currency not in capitals is 22023'
);
select throws_ok(
    pg_temp.transfer_sql(
        pg_temp.uid('aline'), pg_temp.uid('bosco'), 1, 'RWF', null,
        jsonb_build_object('m', repeat('x', 16384))
    ),
    '22023', null, 'metadata over 16 KB is 22023'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 1, 'RWF', null, '[]'),
    '22023', null, 'metadata that is not an object is 22023'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 1, 'RWF', ''),
    '22023', null, 'an empty idempotency key is 22023'
);
select throws_ok(
    pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 1, 'RWF', repeat('k', 256)),
    '22023', null, 'an idempotency key of 256 characters is 22023'
);
select is(
    pg_temp.ledger(), (select ledger from ledger_before),
    'no refusal changed a transaction, the directory, an event, the outbox, the audit or a wallet'
);

-- Who may call it: service_role only (above) ----------------------------------------------------

select throws_ok(
    format(
        'select tests.as_role(%L, %L)', 'anon',
        pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 1, 'RWF')
    ),
    '42501', 'permission denied for function transfer_funds',
    'anon may not call transfer_funds'
);
select throws_ok(
    format(
        'select tests.as_caller(%L, %L, %L)', 'authenticated', pg_temp.user_claims('aline'),
        pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('bosco'), 1, 'RWF')
    ),
    '42501', 'permission denied for function transfer_funds',
    'Aline, signed in, may not transfer from her own wallet through it'
);
select throws_ok(
    format(
        'select tests.as_caller(%L, %L, %L)', 'authenticated', pg_temp.user_claims('claire'),
        pg_temp.transfer_sql(pg_temp.uid('aline'), pg_temp.uid('claire'), 1, 'RWF')
    ),
    '42501', 'permission denied for function transfer_funds',
    'Claire, a stranger signed in, may not transfer from Aline''s wallet'
);
select is(
    pg_temp.ledger(), (select ledger from ledger_before),
    'the refused callers changed nothing'
);

select * from finish();
rollback;

-- Transactions and wallets (migration 20260401120000_transactions_payments.sql, functions in
-- supabase/functions-sql/70_transactions.sql, 71_wallets.sql and 73_payment_views.sql):
-- create_transaction for each type with its idempotency and every refusal,
-- update_transaction_status through the whole state machine, the wallet moves a completion or a
-- reversal makes, reconciliation and its job, who may read and call what, the audit rows, the
-- views and the partitions. Runs as postgres on a fresh clone in one transaction: now() is
-- constant, so every transaction here is created (and moved) at now().
begin;
select plan(221);

-- Helpers ----------------------------------------------------------------------------------------

-- Transactions as create_transaction returned them, by a note; counts and figures by a note; ids
-- an API caller could see. The API roles write these from inside tests.as_caller.
create temp table made (note text primary key, like public.transactions);
create temp table seen (note text primary key, n numeric);
create temp table visible (note text not null, id uuid);
grant select, insert on pg_temp.made, pg_temp.seen, pg_temp.visible
to anon, authenticated, service_role;

create function pg_temp.txn(p_note text)
returns uuid
language sql
as $$ select id from pg_temp.made where note = p_note $$;

create function pg_temp.ref(p_note text)
returns text
language sql
as $$ select reference from pg_temp.made where note = p_note $$;

create function pg_temp.seen(p_note text)
returns numeric
language sql
as $$ select n from pg_temp.seen where note = p_note $$;

-- Users: Aline makes most transactions, Bosco receives her transfers, Claire is a stranger with
-- nothing, Dan has money of his own (a payment, a TZS transfer from Aline he spends) and no UGX
-- wallet. 99999999-... is no user.
create function pg_temp.uid(p_name text)
returns uuid
language sql
as $$
    select v.id
    from (
        values
        ('aline', '11111111-1111-4111-8111-111111111111'::uuid),
        ('bosco', '22222222-2222-4222-8222-222222222222'),
        ('claire', '33333333-3333-4333-8333-333333333333'),
        ('dan', '44444444-4444-4444-8444-444444444444'),
        ('nobody', '99999999-9999-4999-8999-999999999999')
    ) as v (name, id)
    where v.name = p_name
$$;

-- The JWT claims of a signed-in user.
create function pg_temp.user_claims(p_name text)
returns text
language sql
as $$
    select jsonb_build_object('role', 'authenticated', 'sub', pg_temp.uid(p_name))::text
$$;

-- Creates a transaction as postgres and notes it; p_original is the note of a refund's original.
create function pg_temp.make(
    p_note text,
    p_user text,
    p_type text,
    p_amount numeric,
    p_currency text,
    p_counterparty text default null,
    p_original text default null
)
returns uuid
language sql
as $$
    insert into pg_temp.made
    select p_note, t.*
    from public.create_transaction(
        pg_temp.uid(p_user), p_type, p_amount, p_currency, null, '{}',
        pg_temp.uid(p_counterparty), pg_temp.txn(p_original)
    ) as t
    returning id
$$;

-- Moves a noted transaction through p_statuses in turn, as postgres; returns where it ends.
create function pg_temp.move(p_note text, variadic p_statuses text[])
returns text
language plpgsql
as $$
declare
    v_status text;
    v_next text;
begin
    foreach v_next in array p_statuses loop
        select t.status into v_status
        from public.update_transaction_status(pg_temp.txn(p_note), v_next) as t;
    end loop;
    return v_status;
end;
$$;

-- A balance, read through get_wallet_balance. Volatile, so that it sees what a move made earlier in
-- the same statement (get_wallet_balance, stable, would read the statement's snapshot).
create function pg_temp.balance(p_user text, p_currency text)
returns numeric
language plpgsql
volatile
as $$
begin
    return public.get_wallet_balance(pg_temp.uid(p_user), p_currency);
end;
$$;

-- The outbox payload of a move of the noted transaction from p_from to p_status.
create function pg_temp.payload(
    p_note text, p_from text, p_status text, p_reason text default null
)
returns jsonb
language sql
as $$
    select jsonb_build_object(
        'id', m.id,
        'reference', m.reference,
        'user_id', m.user_id,
        'counterparty_id', m.counterparty_id,
        'type', m.type,
        'amount', m.amount::text,
        'currency', m.currency,
        'from_status', p_from,
        'status', p_status,
        'reason', p_reason
    )
    from pg_temp.made as m
    where m.note = p_note
$$;

-- The create_transaction call a throws_ok runs.
create function pg_temp.create_sql(
    p_user uuid,
    p_type text,
    p_amount numeric,
    p_currency text,
    p_key text default null,
    p_metadata jsonb default '{}',
    p_counterparty uuid default null,
    p_original uuid default null
)
returns text
language sql
as $$
    select format(
        'select public.create_transaction(%L::uuid, %L, %L::numeric, %L, %L, %L::jsonb, '
        || '%L::uuid, %L::uuid)',
        p_user, p_type, p_amount, p_currency, p_key, p_metadata, p_counterparty, p_original
    )
$$;

-- What a refused call could have changed.
create function pg_temp.counts()
returns table (
    transactions bigint,
    directory bigint,
    events bigint,
    outbox bigint,
    wallets bigint,
    balances numeric
)
language sql
as $$
    select
        (select count(*) from public.transactions),
        (select count(*) from private.transaction_directory),
        (select count(*) from public.transaction_events),
        (select count(*) from public.outbox_events),
        (select count(*) from public.wallets),
        (select coalesce(sum(balance), 0) from public.wallets)
$$;

insert into public.users (id, phone_number, display_name) values
('11111111-1111-4111-8111-111111111111', '+250788500001', 'Aline'),
('22222222-2222-4222-8222-222222222222', '+250788500002', 'Bosco'),
('33333333-3333-4333-8333-333333333333', '+250788500003', 'Claire'),
('44444444-4444-4444-8444-444444444444', '+250788500004', 'Dan');

-- create_transaction: each type ------------------------------------------------------------------

select lives_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'service_role',
        '{"role": "service_role", "sub": "payments-svc"}',
        $sql$
        insert into pg_temp.made
        select v.note, t.*
        from (
            values
            ('debit', 'debit', 1000::numeric, null::uuid, 'k-debit', '{"order": 1}'::jsonb),
            ('credit', 'credit', 5000, null, 'k-credit', '{}'),
            ('transfer', 'transfer', 700, '22222222-2222-4222-8222-222222222222', 'k-transfer',
             '{"note": "rent"}'),
            ('payment', 'payment', 1500, null, 'k-payment', '{}'),
            ('fee', 'fee', 50, null, null, null),
            ('commission', 'commission', 30, null, null, '{}')
        ) as v (note, type, amount, counterparty, key, metadata)
        cross join lateral public.create_transaction(
            '11111111-1111-4111-8111-111111111111', v.type, v.amount, 'RWF', v.key, v.metadata,
            v.counterparty
        ) as t
        $sql$
    ),
    'service_role creates a debit, a credit, a transfer, a payment, a fee and a commission'
);
select results_eq(
    $$select note, user_id, type::text, amount, currency, status::text, counterparty_id,
             original_transaction_id, idempotency_key, metadata, error_message, correlation_id,
             created_at = now(), updated_at = now(), completed_at
        from pg_temp.made order by note$$,
    $$values
        ('commission', pg_temp.uid('aline'), 'commission', 30::numeric, 'RWF', 'pending',
         null::uuid, null::uuid, null::text, '{}'::jsonb, null::text, null::text, true, true,
         null::timestamptz),
        ('credit', pg_temp.uid('aline'), 'credit', 5000, 'RWF', 'pending', null, null,
         'k-credit', '{}', null, null, true, true, null),
        ('debit', pg_temp.uid('aline'), 'debit', 1000, 'RWF', 'pending', null, null, 'k-debit',
         '{"order": 1}', null, null, true, true, null),
        ('fee', pg_temp.uid('aline'), 'fee', 50, 'RWF', 'pending', null, null, null, '{}', null,
         null, true, true, null),
        ('payment', pg_temp.uid('aline'), 'payment', 1500, 'RWF', 'pending', null, null,
         'k-payment', '{}', null, null, true, true, null),
        ('transfer', pg_temp.uid('aline'), 'transfer', 700, 'RWF', 'pending',
         pg_temp.uid('bosco'), null, 'k-transfer', '{"note": "rent"}', null, null, true, true,
         null)$$,
    'each is returned pending with its type, amount, currency, counterparty, key and metadata '
    || '(a null metadata is {})'
);
select is_empty(
    $$select note, reference from pg_temp.made
       where reference !~ '^TXN-\d{8}-[0-9A-HJKMNP-TV-Z]{6}$'
          or substr(reference, 5, 8) <> to_char(now() at time zone 'UTC', 'YYYYMMDD')$$,
    'each reference is TXN-<UTC date>-<6 Crockford base32 characters>'
);
select is(
    (select count(distinct reference) from pg_temp.made), 6::bigint,
    'the references are distinct'
);
select is_empty(
    $$select id, reference, user_id, type, amount, currency, status, counterparty_id,
             original_transaction_id, idempotency_key, correlation_id, metadata, error_message,
             created_at, updated_at, completed_at
        from pg_temp.made
      except
      select id, reference, user_id, type, amount, currency, status, counterparty_id,
             original_transaction_id, idempotency_key, correlation_id, metadata, error_message,
             created_at, updated_at, completed_at
        from public.transactions$$,
    'what create_transaction returned is what public.transactions holds'
);
select results_eq(
    $$select m.note, d.reference = m.reference, d.idempotency_key, d.created_at = m.created_at,
             d.request
        from private.transaction_directory as d
        inner join pg_temp.made as m on d.id = m.id
       where m.note in ('debit', 'transfer')
       order by m.note$$,
    $$values
        ('debit', true, 'k-debit'::text, true,
         jsonb_build_object(
             'user_id', pg_temp.uid('aline'), 'type', 'debit', 'amount', 1000, 'currency', 'RWF',
             'metadata', '{"order": 1}'::jsonb, 'counterparty_id', null,
             'original_transaction_id', null
         )),
        ('transfer', true, 'k-transfer', true,
         jsonb_build_object(
             'user_id', pg_temp.uid('aline'), 'type', 'transfer', 'amount', 700,
             'currency', 'RWF', 'metadata', '{"note": "rent"}'::jsonb,
             'counterparty_id', pg_temp.uid('bosco'), 'original_transaction_id', null
         ))$$,
    'the directory holds each id with its reference, key, created_at and the request'
);
select results_eq(
    $$select m.note, e.user_id, e.from_status, e.to_status, e.actor_type, e.actor_id, e.reason,
             e.created_at = now()
        from public.transaction_events as e
        inner join pg_temp.made as m on e.transaction_id = m.id
       order by m.note$$,
    $$values
        ('commission', pg_temp.uid('aline'), null::text, 'pending', 'service', 'payments-svc'::text,
         null::text, true),
        ('credit', pg_temp.uid('aline'), null, 'pending', 'service', 'payments-svc', null, true),
        ('debit', pg_temp.uid('aline'), null, 'pending', 'service', 'payments-svc', null, true),
        ('fee', pg_temp.uid('aline'), null, 'pending', 'service', 'payments-svc', null, true),
        ('payment', pg_temp.uid('aline'), null, 'pending', 'service', 'payments-svc', null, true),
        ('transfer', pg_temp.uid('aline'), null, 'pending', 'service', 'payments-svc', null,
         true)$$,
    'each creation writes one transaction_events row: from null to pending, by the service '
    || 'named in the claims'
);
select results_eq(
    $$select m.note, o.aggregate_type, o.event_type,
             o.payload = pg_temp.payload(m.note, null, 'pending')
        from public.outbox_events as o
        inner join pg_temp.made as m on o.aggregate_id = m.id::text
       order by m.note$$,
    $$values
        ('commission', 'transaction'::text, 'transaction.created'::text, true),
        ('credit', 'transaction', 'transaction.created', true),
        ('debit', 'transaction', 'transaction.created', true),
        ('fee', 'transaction', 'transaction.created', true),
        ('payment', 'transaction', 'transaction.created', true),
        ('transfer', 'transaction', 'transaction.created', true)$$,
    'each creation emits one outbox event transaction.created with the transaction'
);
select results_eq(
    $$select m.note, o.payload -> 'amount', o.payload ->> 'counterparty_id'
        from public.outbox_events as o
        inner join pg_temp.made as m on o.aggregate_id = m.id::text
       order by m.note$$,
    $$values
        ('commission', '"30"'::jsonb, null::text),
        ('credit', '"5000"', null),
        ('debit', '"1000"', null),
        ('fee', '"50"', null),
        ('payment', '"1500"', null),
        ('transfer', '"700"', pg_temp.uid('bosco')::text)$$,
    'the event carries the amount as a JSON string, and the transfer''s counterparty'
);

-- A refund needs a completed payment: Aline's credit and payment complete (5000 - 1500 = 3500).
select is(
    pg_temp.move('credit', 'processing', 'completed') || ' ' || pg_temp.move(
        'payment', 'processing', 'completed'
    ),
    'completed completed',
    'the credit and the payment complete'
);
select lives_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'service_role',
        '{"role": "service_role", "sub": "payments-svc"}',
        format(
            'insert into pg_temp.made select %L, t.* from public.create_transaction('
            || '%L, %L, 500, %L, %L, %L, null, %L) as t',
            'refund', pg_temp.uid('aline'), 'refund', 'RWF', 'k-refund', '{"why": "late"}',
            pg_temp.txn('payment')
        )
    ),
    'service_role creates a refund of part of the payment'
);
select results_eq(
    $$select type::text, amount, currency, status::text, counterparty_id,
             original_transaction_id, idempotency_key, metadata, completed_at,
             reference ~ '^TXN-\d{8}-[0-9A-HJKMNP-TV-Z]{6}$'
        from pg_temp.made where note = 'refund'$$,
    $$values ('refund', 500::numeric, 'RWF', 'pending', null::uuid, pg_temp.txn('payment'),
              'k-refund'::text, '{"why": "late"}'::jsonb, null::timestamptz, true)$$,
    'the refund is pending and names its original'
);
select results_eq(
    $$select e.from_status, e.to_status, e.actor_type, e.actor_id, o.event_type,
             o.payload = pg_temp.payload('refund', null, 'pending')
        from public.transaction_events as e
        inner join public.outbox_events as o on o.aggregate_id = e.transaction_id::text
       where e.transaction_id = pg_temp.txn('refund')$$,
    $$values (null::text, 'pending'::text, 'service'::text, 'payments-svc'::text,
              'transaction.created'::text, true)$$,
    'the refund writes its event and its outbox event transaction.created'
);

-- Idempotency ------------------------------------------------------------------------------------

insert into pg_temp.seen (note, n)
select
    'before retries ' || c.key as note,
    c.value::numeric as n
from pg_temp.counts() as k, jsonb_each_text(to_jsonb(k)) as c;

select is(
    (select t.id from public.create_transaction(
        pg_temp.uid('aline'), 'debit', 1000, 'RWF', 'k-debit', '{"order": 1}'
    ) as t),
    pg_temp.txn('debit'),
    'the same key with the same arguments returns the first transaction'
);
select results_eq(
    $$select t.id, t.amount from public.create_transaction(
        pg_temp.uid('aline'), 'debit', 1000.00, 'RWF', 'k-debit', '{"order": 1}'
    ) as t$$,
    $$values (pg_temp.txn('debit'), 1000::numeric)$$,
    'an amount of 1000.00 is the same as 1000: the first transaction, as it was stored'
);
select is(
    (select t.id from public.create_transaction(
        pg_temp.uid('aline'), 'fee', 1, 'RWF', 'k-meta-default', null
    ) as t),
    (select t.id from public.create_transaction(
        pg_temp.uid('aline'), 'fee', 1, 'RWF', 'k-meta-default', '{}'
    ) as t),
    'a null metadata and {} are the same request'
);
select results_eq(
    $$select t.id, t.status::text from public.create_transaction(
        pg_temp.uid('aline'), 'credit', 5000, 'RWF', 'k-credit'
    ) as t$$,
    $$values (pg_temp.txn('credit'), 'completed'::text)$$,
    'a retry after the transaction moved on returns it as it is now'
);
select is(
    (select t.id from public.create_transaction(
        pg_temp.uid('aline'), 'refund', 500, 'RWF', 'k-refund', '{"why": "late"}', null,
        pg_temp.txn('payment')
    ) as t),
    pg_temp.txn('refund'),
    'a refund retried with its key is replayed'
);
select results_eq(
    $$select n.transactions, n.directory, n.events, n.outbox, n.wallets
        from pg_temp.counts() as n$$,
    $$select pg_temp.seen('before retries transactions')::bigint + 1,
             pg_temp.seen('before retries directory')::bigint + 1,
             pg_temp.seen('before retries events')::bigint + 1,
             pg_temp.seen('before retries outbox')::bigint + 1,
             pg_temp.seen('before retries wallets')::bigint$$,
    'the retries wrote nothing more (the one new transaction is k-meta-default''s first call)'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'debit', 1001, 'RWF', 'k-debit', '{"order": 1}'),
    'PT409',
    format(
        'create_transaction: idempotency key k-debit was used for another request (transaction %s)',
        pg_temp.ref('debit')
    ),
    'the same key with another amount is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'debit', 1000, 'RWF', 'k-debit', '{"order": 2}'),
    'PT409',
    format(
        'create_transaction: idempotency key k-debit was used for another request (transaction %s)',
        pg_temp.ref('debit')
    ),
    'the same key with other metadata is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('dan'), 'debit', 1000, 'RWF', 'k-debit', '{"order": 1}'),
    'PT409',
    format(
        'create_transaction: idempotency key k-debit was used for another request (transaction %s)',
        pg_temp.ref('debit')
    ),
    'the same key for another user is refused'
);

-- The correlation id: the request's x-correlation-id header, on the transaction, its event and its
-- outbox event.
insert into pg_temp.seen (note, n)
select
    'header on' as note,
    length(set_config('request.headers', '{"x-correlation-id": "corr-77"}', true)) as n;
select is(
    pg_temp.make('correlated', 'aline', 'commission', 7, 'RWF')::text,
    pg_temp.txn('correlated')::text,
    'a commission created under a request with x-correlation-id corr-77'
);
insert into pg_temp.seen (note, n)
select
    'header off' as note,
    length(set_config('request.headers', '', true)) as n;
select results_eq(
    $$select t.correlation_id, e.correlation_id, o.correlation_id
        from public.transactions as t
        inner join public.transaction_events as e on t.id = e.transaction_id
        inner join public.outbox_events as o on o.aggregate_id = t.id::text
       where t.id = pg_temp.txn('correlated')$$,
    $$values ('corr-77'::text, 'corr-77'::text, 'corr-77'::text)$$,
    'the transaction, its event and its outbox event carry the request''s correlation id'
);
-- A move under another request carries that request's id; one under none, the creating one's.
insert into pg_temp.seen (note, n)
select
    'header again' as note,
    length(set_config('request.headers', '{"x-correlation-id": "corr-88"}', true)) as n;
insert into pg_temp.seen (note, n)
select
    'moved under corr-88' as note,
    1 as n
from public.update_transaction_status(pg_temp.txn('correlated'), 'processing');
insert into pg_temp.seen (note, n)
select
    'header off again' as note,
    length(set_config('request.headers', '', true)) as n;
insert into pg_temp.seen (note, n)
select
    'moved under none' as note,
    1 as n
from public.update_transaction_status(pg_temp.txn('correlated'), 'failed');
select results_eq(
    $$select e.to_status, e.correlation_id, o.correlation_id
        from public.transaction_events as e
        inner join public.outbox_events as o
            on o.aggregate_id = e.transaction_id::text
            and o.event_type = 'transaction.' || e.to_status
       where e.transaction_id = pg_temp.txn('correlated') and e.from_status is not null
       order by e.id$$,
    $$values ('processing'::text, 'corr-88'::text, 'corr-88'::text),
             ('failed', 'corr-77', 'corr-77')$$,
    'a move''s event and outbox event carry the moving request''s correlation id, else the '
    || 'creating one''s'
);

-- create_transaction: what it accepts at the edges and what it refuses ---------------------------

select is(
    (select t.amount from public.create_transaction(
        pg_temp.uid('aline'), 'credit', 1.01, 'USD'
    ) as t),
    1.01,
    'USD takes 2 decimals'
);
select is(
    (select t.amount from public.create_transaction(
        pg_temp.uid('aline'), 'credit', 3.125, 'KWD'
    ) as t),
    3.125,
    'KWD takes 3 decimals'
);
select is(
    (select t.amount from public.create_transaction(
        pg_temp.uid('aline'), 'commission', 999999999999999, 'RWF'
    ) as t),
    999999999999999::numeric,
    'an amount just under 10^15 is accepted'
);
select is(
    (select char_length(t.idempotency_key) from public.create_transaction(
        pg_temp.uid('aline'), 'commission', 1, 'RWF', repeat('k', 255)
    ) as t),
    255,
    'an idempotency key of 255 characters is accepted'
);

-- What remains refundable of the payment (1500): the pending refund of 500 counts against it,
-- a failed and a cancelled refund do not.
select is(
    pg_temp.make('refund failed', 'aline', 'refund', 300, 'RWF', null, 'payment')::text
    || pg_temp.move('refund failed', 'failed')
    || pg_temp.make('refund cancelled', 'aline', 'refund', 200, 'RWF', null, 'payment')::text
    || pg_temp.move('refund cancelled', 'cancelled'),
    pg_temp.txn('refund failed') || 'failed' || pg_temp.txn('refund cancelled') || 'cancelled',
    'a refund of 300 fails and one of 200 is cancelled'
);
-- A completed credit (3500 already) and a pending payment of Aline's; Dan's completed payment.
select is(
    pg_temp.make('pending payment', 'aline', 'payment', 100, 'RWF')::text
    || pg_temp.make('dan credit', 'dan', 'credit', 1000, 'RWF')::text
    || pg_temp.move('dan credit', 'processing', 'completed')
    || pg_temp.make('dan payment', 'dan', 'payment', 400, 'RWF')::text
    || pg_temp.move('dan payment', 'processing', 'completed'),
    pg_temp.txn('pending payment')::text || pg_temp.txn('dan credit') || 'completed'
    || pg_temp.txn('dan payment') || 'completed',
    'Aline has a pending payment, Dan a completed one'
);

insert into pg_temp.seen (note, n)
select
    'before refusals ' || c.key as note,
    c.value::numeric as n
from pg_temp.counts() as k, jsonb_each_text(to_jsonb(k)) as c;

select throws_ok(
    pg_temp.create_sql(null, 'credit', 10, 'RWF'),
    '22023', 'create_transaction: p_user_id must be a user id',
    'a null user is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('nobody'), 'credit', 10, 'RWF'),
    'PT404', 'create_transaction: no user 99999999-9999-4999-8999-999999999999',
    'an unknown user is not found'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'withdrawal', 10, 'RWF'),
    '22023',
    'create_transaction: p_type must be debit, credit, transfer, payment, refund, fee or '
    || 'commission (got withdrawal)',
    'an unknown type is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'Credit', 10, 'RWF'),
    '22023',
    'create_transaction: p_type must be debit, credit, transfer, payment, refund, fee or '
    || 'commission (got Credit)',
    'a type in capitals is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), null, 10, 'RWF'),
    '22023',
    'create_transaction: p_type must be debit, credit, transfer, payment, refund, fee or '
    || 'commission (got null)',
    'a null type is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'XYZ'),
    '22023',
    'create_transaction: p_currency must be an ISO 4217 code the platform handles, in capitals '
    || '(got XYZ)',
    'an unknown currency is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'rwf'),
    '22023',
    'create_transaction: p_currency must be an ISO 4217 code the platform handles, in capitals '
    || '(got rwf)',
    'a currency in lower case is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, null),
    '22023',
    'create_transaction: p_currency must be an ISO 4217 code the platform handles, in capitals '
    || '(got null)',
    'a null currency is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 0, 'RWF'),
    '22023', 'create_transaction: p_amount must be more than 0 and less than 10^15 (got 0)',
    'an amount of 0 is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', -5, 'RWF'),
    '22023', 'create_transaction: p_amount must be more than 0 and less than 10^15 (got -5)',
    'a negative amount is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', null, 'RWF'),
    '22023', 'create_transaction: p_amount must be more than 0 and less than 10^15 (got null)',
    'a null amount is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 'NaN', 'RWF'),
    '22023', 'create_transaction: p_amount must be more than 0 and less than 10^15 (got NaN)',
    'an amount of NaN is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 'Infinity', 'RWF'),
    '22023', 'create_transaction: p_amount must be more than 0 and less than 10^15 (got Infinity)',
    'an amount of Infinity is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 1e15, 'RWF'),
    '22023',
    'create_transaction: p_amount must be more than 0 and less than 10^15 (got 1000000000000000)',
    'an amount of 10^15 is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10.5, 'RWF'),
    '22023', 'create_transaction: p_amount must have at most 0 decimals in RWF (got 10.5)',
    'RWF takes no decimals'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 1.001, 'USD'),
    '22023', 'create_transaction: p_amount must have at most 2 decimals in USD (got 1.001)',
    'USD takes no more than 2 decimals'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 3.1255, 'KWD'),
    '22023', 'create_transaction: p_amount must have at most 3 decimals in KWD (got 3.1255)',
    'KWD takes no more than 3 decimals'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'RWF', null, '[1, 2]'),
    '22023', 'create_transaction: p_metadata must be a JSON object',
    'metadata that is an array is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'RWF', null, 'null'),
    '22023', 'create_transaction: p_metadata must be a JSON object',
    'metadata that is JSON null is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'transfer', 10, 'RWF'),
    '22023', 'create_transaction: p_counterparty_id is required for a transfer and only for one',
    'a transfer without a counterparty is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'debit', 10, 'RWF', null, '{}', pg_temp.uid('bosco')),
    '22023', 'create_transaction: p_counterparty_id is required for a transfer and only for one',
    'a debit with a counterparty is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'transfer', 10, 'RWF', null, '{}', pg_temp.uid('aline')
    ),
    '22023', 'create_transaction: a transfer needs a counterparty other than the user',
    'a transfer to oneself is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'transfer', 10, 'RWF', null, '{}', pg_temp.uid('nobody')
    ),
    'PT404',
    'create_transaction: no user 99999999-9999-4999-8999-999999999999 (p_counterparty_id)',
    'a transfer to an unknown user is not found'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'refund', 10, 'RWF'),
    '22023',
    'create_transaction: p_original_transaction_id is required for a refund and only for one',
    'a refund without an original is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'credit', 10, 'RWF', null, '{}', null, pg_temp.txn('payment')
    ),
    '22023',
    'create_transaction: p_original_transaction_id is required for a refund and only for one',
    'a credit with an original is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 10, 'RWF', null, '{}', null, pg_temp.uid('nobody')
    ),
    'PT404',
    'create_transaction: no transaction 99999999-9999-4999-8999-999999999999 '
    || '(p_original_transaction_id)',
    'a refund of an unknown transaction is not found'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 10, 'RWF', null, '{}', null, pg_temp.txn('credit')
    ),
    '22023',
    format(
        'create_transaction: a refund gives back a debit, fee or payment of the same user in the '
        || 'same currency (%s is a credit of %s in RWF)',
        pg_temp.ref('credit'), pg_temp.uid('aline')
    ),
    'a refund of a credit is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 10, 'RWF', null, '{}', null, pg_temp.txn('dan payment')
    ),
    '22023',
    format(
        'create_transaction: a refund gives back a debit, fee or payment of the same user in the '
        || 'same currency (%s is a payment of %s in RWF)',
        pg_temp.ref('dan payment'), pg_temp.uid('dan')
    ),
    'a refund of another user''s payment is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 10, 'USD', null, '{}', null, pg_temp.txn('payment')
    ),
    '22023',
    format(
        'create_transaction: a refund gives back a debit, fee or payment of the same user in the '
        || 'same currency (%s is a payment of %s in RWF)',
        pg_temp.ref('payment'), pg_temp.uid('aline')
    ),
    'a refund in another currency is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 10, 'RWF', null, '{}', null,
        pg_temp.txn('pending payment')
    ),
    'PT409',
    format(
        'create_transaction: %s is pending, only a completed transaction can be refunded',
        pg_temp.ref('pending payment')
    ),
    'a refund of a payment not completed is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 1001, 'RWF', null, '{}', null, pg_temp.txn('payment')
    ),
    'PT409',
    format(
        'create_transaction: a refund of 1001 RWF exceeds the 1000 RWF still refundable of %s',
        pg_temp.ref('payment')
    ),
    'a refund over what remains (1500 less the pending 500; the failed and cancelled ones do '
    || 'not count) is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'RWF', repeat('k', 256)),
    '22023', 'create_transaction: p_idempotency_key must be 1 to 255 characters',
    'an idempotency key of 256 characters is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'RWF', ''),
    '22023', 'create_transaction: p_idempotency_key must be 1 to 255 characters',
    'an empty idempotency key is refused'
);
select results_eq(
    $$select * from pg_temp.counts()$$,
    $$select pg_temp.seen('before refusals transactions')::bigint,
             pg_temp.seen('before refusals directory')::bigint,
             pg_temp.seen('before refusals events')::bigint,
             pg_temp.seen('before refusals outbox')::bigint,
             pg_temp.seen('before refusals wallets')::bigint,
             pg_temp.seen('before refusals balances')$$,
    'the refused calls changed nothing: transactions, directory, events, outbox and wallets'
);

-- Exactly what remains is refundable, and then nothing.
select is(
    (select t.amount from public.create_transaction(
        pg_temp.uid('aline'), 'refund', 1000, 'RWF', null, '{}', null, pg_temp.txn('payment')
    ) as t),
    1000::numeric,
    'a refund of exactly what remains is accepted'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 1, 'RWF', null, '{}', null, pg_temp.txn('payment')
    ),
    'PT409',
    format(
        'create_transaction: a refund of 1 RWF exceeds the 0 RWF still refundable of %s',
        pg_temp.ref('payment')
    ),
    'after it nothing more is refundable'
);

-- update_transaction_status: the legal moves -----------------------------------------------------

-- EUR credits of Aline's, moved by a service named in the claims.
select is(
    pg_temp.make('sm completes', 'aline', 'credit', 10.00, 'EUR')::text
    || pg_temp.make('sm cancelled', 'aline', 'credit', 20.00, 'EUR')::text
    || pg_temp.make('sm declined', 'aline', 'credit', 30.00, 'EUR')::text
    || pg_temp.make('sm times out', 'aline', 'credit', 40.00, 'EUR')::text,
    pg_temp.txn('sm completes')::text || pg_temp.txn('sm cancelled')
    || pg_temp.txn('sm declined') || pg_temp.txn('sm times out'),
    'four pending EUR credits to move'
);

create temp table moved (step integer primary key, note text not null, like public.transactions);
grant select, insert on pg_temp.moved to service_role;

-- Each step: the transaction, the status, the error and the reason update_transaction_status is
-- called with, as service ops-1.
create temp table steps (
    step integer primary key,
    note text not null,
    new_status text not null,
    error_message text,
    reason text
);
insert into pg_temp.steps (step, note, new_status, error_message, reason) values
(1, 'sm completes', 'processing', null, 'picked up'),
(2, 'sm completes', 'completed', null, null),
(3, 'sm completes', 'reversed', null, 'chargeback'),
(4, 'sm cancelled', 'cancelled', null, 'customer cancelled'),
(5, 'sm declined', 'failed', 'card declined', null),
(6, 'sm times out', 'processing', 'slow start', null),
(7, 'sm times out', 'failed', 'timeout', 'provider timeout');

select
    lives_ok(
        format(
            'select tests.as_caller(%L, %L, %L)',
            'service_role',
            '{"role": "service_role", "sub": "ops-1"}',
            string_agg(
                format(
                    'insert into pg_temp.moved select %s, %L, t.* '
                    || 'from public.update_transaction_status(%L, %L, %L, %L) as t',
                    s.step, s.note, pg_temp.txn(s.note), s.new_status, s.error_message, s.reason
                ),
                '; ' order by s.step
            )
        ),
        'service_role moves the credits'
    )
from pg_temp.steps as s;
select results_eq(
    $$select step, status::text, error_message, completed_at, updated_at = now()
        from pg_temp.moved order by step$$,
    $$values
        (1, 'processing', null::text, null::timestamptz, true),
        (2, 'completed', null, now(), true),
        (3, 'reversed', null, now(), true),
        (4, 'cancelled', null, null, true),
        (5, 'failed', 'card declined', null, true),
        (6, 'processing', null, null, true),
        (7, 'failed', 'timeout', null, true)$$,
    'each move returns the transaction in its new status: completed sets completed_at (kept when '
    || 'reversed), a failure keeps its error message, another move does not'
);
select is_empty(
    $$select m.id, m.status, m.error_message, m.completed_at from pg_temp.moved as m
       where m.step in (3, 4, 5, 7)
      except
      select t.id, t.status, t.error_message, t.completed_at from public.transactions as t$$,
    'and public.transactions holds the final state of each'
);
select results_eq(
    $$select m.note, e.from_status, e.to_status, e.actor_type, e.actor_id, e.reason
        from public.transaction_events as e
        inner join pg_temp.made as m on e.transaction_id = m.id
       where m.note like 'sm %' and e.from_status is not null
       order by e.id$$,
    $$values
        ('sm completes', 'pending'::text, 'processing'::text, 'service'::text, 'ops-1'::text,
         'picked up'::text),
        ('sm completes', 'processing', 'completed', 'service', 'ops-1', null),
        ('sm completes', 'completed', 'reversed', 'service', 'ops-1', 'chargeback'),
        ('sm cancelled', 'pending', 'cancelled', 'service', 'ops-1', 'customer cancelled'),
        ('sm declined', 'pending', 'failed', 'service', 'ops-1', 'card declined'),
        ('sm times out', 'pending', 'processing', 'service', 'ops-1', 'slow start'),
        ('sm times out', 'processing', 'failed', 'service', 'ops-1', 'provider timeout')$$,
    'each move writes a transaction_events row: from, to, the service and the reason (else the '
    || 'error)'
);
select results_eq(
    $$select o.event_type, o.payload
        from public.outbox_events as o
       where o.aggregate_id in (
                 select m.id::text from pg_temp.made as m where m.note like 'sm %'
             )
         and o.event_type <> 'transaction.created'
       order by o.id$$,
    $$values
        ('transaction.processing'::text,
         pg_temp.payload('sm completes', 'pending', 'processing', 'picked up')),
        ('transaction.completed', pg_temp.payload('sm completes', 'processing', 'completed')),
        ('transaction.reversed',
         pg_temp.payload('sm completes', 'completed', 'reversed', 'chargeback')),
        ('transaction.cancelled',
         pg_temp.payload('sm cancelled', 'pending', 'cancelled', 'customer cancelled')),
        ('transaction.failed',
         pg_temp.payload('sm declined', 'pending', 'failed', 'card declined')),
        ('transaction.processing',
         pg_temp.payload('sm times out', 'pending', 'processing', 'slow start')),
        ('transaction.failed',
         pg_temp.payload('sm times out', 'processing', 'failed', 'provider timeout'))$$,
    'each move emits the outbox event transaction.<status>'
);
select is(
    public.get_wallet_balance(pg_temp.uid('aline'), 'EUR'), 0.00,
    'the EUR credit completed and reversed leaves the wallet at 0'
);

-- update_transaction_status: every other move ----------------------------------------------------

-- One EUR credit in each status.
select is(
    pg_temp.make('in pending', 'aline', 'credit', 1, 'EUR')::text
    || pg_temp.make('in processing', 'aline', 'credit', 2, 'EUR')::text
    || pg_temp.make('in completed', 'aline', 'credit', 3, 'EUR')::text
    || pg_temp.make('in failed', 'aline', 'credit', 4, 'EUR')::text
    || pg_temp.make('in cancelled', 'aline', 'credit', 5, 'EUR')::text
    || pg_temp.make('in reversed', 'aline', 'credit', 6, 'EUR')::text
    || pg_temp.move('in processing', 'processing')
    || pg_temp.move('in completed', 'processing', 'completed')
    || pg_temp.move('in failed', 'failed')
    || pg_temp.move('in cancelled', 'cancelled')
    || pg_temp.move('in reversed', 'processing', 'completed', 'reversed'),
    (
        select string_agg(pg_temp.txn('in ' || s)::text, '' order by n)
        from unnest(array[
            'pending', 'processing', 'completed', 'failed', 'cancelled', 'reversed'
        ]) with ordinality as a (s, n)
    )
    || 'processingcompletedfailedcancelledreversed',
    'six EUR credits, one in each status'
);

create temp table matrix_before as
select to_jsonb(t) as row_data
from public.transactions as t
where t.id in (
    select m.id from pg_temp.made as m
    where m.note like 'in %'
);
insert into pg_temp.seen (note, n)
select
    'matrix events' as note,
    count(*) as n
from public.transaction_events
where transaction_id in (
    select m.id from pg_temp.made as m
    where m.note like 'in %'
);
insert into pg_temp.seen (note, n)
select
    'matrix outbox' as note,
    count(*) as n
from public.outbox_events
where aggregate_id in (
    select m.id::text from pg_temp.made as m
    where m.note like 'in %'
);

-- The 24 moves outside the state machine, each refused with what the status may become.
select
    throws_ok(
        format(
            'select public.update_transaction_status(%L, %L)',
            pg_temp.txn('in ' || f.status),
            t.status
        ),
        'PT409',
        format(
            'update_transaction_status: %s is %s, it cannot become %s (%s)',
            pg_temp.ref('in ' || f.status), f.status, t.status, f.allowed
        ),
        format('%s cannot become %s', f.status, t.status)
    )
from (
    values
    (1, 'pending', 'it may become processing or cancelled or failed'),
    (2, 'processing', 'it may become completed or failed'),
    (3, 'completed', 'it may become reversed'),
    (4, 'failed', 'it is final'),
    (5, 'cancelled', 'it is final'),
    (6, 'reversed', 'it is final')
) as f (n, status, allowed)
cross join (
    values
    (1, 'pending'), (2, 'processing'), (3, 'completed'), (4, 'failed'), (5, 'cancelled'),
    (6, 'reversed')
) as t (n, status)
where
    f.status <> t.status
    and (f.status, t.status) not in (
        ('pending', 'processing'), ('pending', 'cancelled'), ('pending', 'failed'),
        ('processing', 'completed'), ('processing', 'failed'), ('completed', 'reversed')
    )
order by f.n, t.n;

-- The current status again: the transaction as it is.
select
    is(
        (select t.status::text from public.update_transaction_status(
            pg_temp.txn('in ' || s.status), s.status, 'ignored', 'ignored'
        ) as t),
        s.status,
        format('%s again is a no-op', s.status)
    )
from (
    values
    (1, 'pending'), (2, 'processing'), (3, 'completed'), (4, 'failed'), (5, 'cancelled'),
    (6, 'reversed')
) as s (n, status)
order by s.n;

select results_eq(
    $$select to_jsonb(t) from public.transactions as t
       where t.id in (select m.id from pg_temp.made as m where m.note like 'in %')
       order by t.id$$,
    $$select row_data from pg_temp.matrix_before order by (row_data ->> 'id')::uuid$$,
    'the refused moves and the no-ops left the six rows as they were'
);
select results_eq(
    $$select
        (select count(*) from public.transaction_events
          where transaction_id in (select m.id from pg_temp.made as m where m.note like 'in %')),
        (select count(*) from public.outbox_events
          where aggregate_id in (
                    select m.id::text from pg_temp.made as m where m.note like 'in %'
                ))$$,
    $$values (pg_temp.seen('matrix events')::bigint, pg_temp.seen('matrix outbox')::bigint)$$,
    'and wrote no event and no outbox event'
);
select is(
    public.get_wallet_balance(pg_temp.uid('aline'), 'EUR'), 3.00,
    'the EUR wallet holds only the completed credit of 3'
);
select throws_ok(
    format(
        'select public.update_transaction_status(%L, %L)', pg_temp.uid('nobody'), 'processing'
    ),
    'PT404', 'update_transaction_status: no transaction 99999999-9999-4999-8999-999999999999',
    'an unknown transaction is not found'
);
select throws_ok(
    format('select public.update_transaction_status(%L, %L)', pg_temp.txn('in pending'), 'done'),
    '22023',
    'update_transaction_status: p_new_status must be pending, processing, completed, failed, '
    || 'cancelled or reversed (got done)',
    'an unknown status is refused'
);
select throws_ok(
    format('select public.update_transaction_status(%L, null)', pg_temp.txn('in pending')),
    '22023',
    'update_transaction_status: p_new_status must be pending, processing, completed, failed, '
    || 'cancelled or reversed (got null)',
    'a null status is refused'
);
select throws_ok(
    $$select public.update_transaction_status(null, 'processing')$$,
    '22023', 'update_transaction_status: p_transaction_id must be a transaction id',
    'a null id is refused'
);
select throws_ok(
    format(
        'select public.update_transaction_status(%L, %L, %L)',
        pg_temp.txn('in pending'), 'failed', repeat('x', 2001)
    ),
    '22023',
    'update_transaction_status: p_error_message must be null or 0 to 2000 characters',
    'an error message over 2000 characters is refused'
);
select is(
    (
        select status::text from public.transactions
        where id = pg_temp.txn('in pending')
    ),
    'pending',
    'and the transaction stays pending'
);

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

-- Reconciliation ---------------------------------------------------------------------------------

select is_empty(
    $$select * from public.reconcile_wallet_balances()$$,
    'after completions, failures, refusals and reversals every wallet matches its transactions'
);
update public.wallets set balance = balance + 5
where user_id = pg_temp.uid('bosco') and currency = 'UGX';
select results_eq(
    $$select * from public.reconcile_wallet_balances()$$,
    $$values (pg_temp.uid('bosco'), 'UGX'::text, 5::numeric, 0::numeric, 5::numeric)$$,
    'a balance changed behind the RPCs'' back is found: balance, expected, difference'
);
insert into pg_temp.seen (note, n)
select
    'reconciled' as note,
    private.reconcile_wallets() as n;
select is(pg_temp.seen('reconciled'), 1::numeric, 'private.reconcile_wallets counts it');
select results_eq(
    $$select metric_type, value, unit from public.system_metrics
       where service_name = 'payments' and metric_name = 'wallet_reconciliation_differences'$$,
    $$values ('gauge'::text, 1::float8, 'count'::text)$$,
    'and records the metric payments/wallet_reconciliation_differences'
);
select results_eq(
    $$select aggregate_type, aggregate_id, payload from public.outbox_events
       where event_type = 'wallet.reconciliation_failed'$$,
    $$values ('wallet'::text, 'reconciliation'::text,
              jsonb_build_object('differences', jsonb_build_array(jsonb_build_object(
                  'user_id', pg_temp.uid('bosco'), 'currency', 'UGX', 'balance', 5,
                  'expected', 0, 'difference', 5
              ))))$$,
    'and emits wallet.reconciliation_failed with the differences'
);
update public.wallets set balance = 0
where user_id = pg_temp.uid('bosco') and currency = 'UGX';
-- A wallet gone: its expected balance is still owed.
delete from public.wallets
where user_id = pg_temp.uid('dan') and currency = 'RWF';
select results_eq(
    $$select * from public.reconcile_wallet_balances()$$,
    $$values (pg_temp.uid('dan'), 'RWF'::text, 0::numeric, 600::numeric, -600::numeric)$$,
    'a wallet missing while its transactions add up to 600 is found, at balance 0'
);
insert into public.wallets (user_id, currency, balance)
values (pg_temp.uid('dan'), 'RWF', 600);
insert into pg_temp.seen (note, n)
select
    'reconciled again' as note,
    private.reconcile_wallets() as n;
select results_eq(
    $$select pg_temp.seen('reconciled again'),
             (select count(*) from public.outbox_events
               where event_type = 'wallet.reconciliation_failed'),
             (select array_agg(value order by id) from public.system_metrics
               where metric_name = 'wallet_reconciliation_differences')$$,
    $$values (0::numeric, 1::bigint, array[1, 0]::float8 [])$$,
    'once repaired: 0, the metric 0, no new event'
);
select results_eq(
    $$select schedule, command from cron.job where jobname = 'reconcile-wallets'$$,
    $$values ('17 3 * * *'::text, 'select private.reconcile_wallets()'::text)$$,
    'pg_cron reconciles the wallets daily'
);

-- Who may read and call --------------------------------------------------------------------------

select throws_ok(
    $$select tests.as_role('anon', 'select count(*) from public.transactions')$$,
    '42501', 'permission denied for table transactions',
    'anon may not read transactions'
);
select throws_ok(
    $$select tests.as_role('anon', 'select count(*) from public.transaction_events')$$,
    '42501', 'permission denied for table transaction_events',
    'anon may not read transaction_events'
);
select throws_ok(
    $$select tests.as_role('anon', 'select count(*) from public.wallets')$$,
    '42501', 'permission denied for table wallets',
    'anon may not read wallets'
);
select throws_ok(
    $$select tests.as_role('anon', 'select count(*) from public.user_recent_transactions')$$,
    '42501', 'permission denied for view user_recent_transactions',
    'anon may not read user_recent_transactions'
);

create function pg_temp.rpc_calls()
returns table (name text, call text)
language sql
as $$
    values
    (
        'create_transaction',
        format(
            'select public.create_transaction(%L, %L, 1, %L)', pg_temp.uid('aline'), 'credit', 'RWF'
        )
    ),
    (
        'update_transaction_status',
        format(
            'select public.update_transaction_status(%L, %L)', pg_temp.txn('in pending'),
            'cancelled'
        )
    ),
    (
        'get_wallet_balance',
        format('select public.get_wallet_balance(%L, %L)', pg_temp.uid('aline'), 'RWF')
    ),
    ('reconcile_wallet_balances', 'select public.reconcile_wallet_balances()')
$$;

select
    throws_ok(
        format('select tests.as_role(%L, %L)', 'anon', c.call),
        '42501', 'permission denied for function ' || c.name,
        'anon may not call ' || c.name
    )
from pg_temp.rpc_calls() as c;
select
    throws_ok(
        format(
            'select tests.as_caller(%L, %L, %L)',
            'authenticated',
            pg_temp.user_claims('aline'),
            c.call
        ),
        '42501', 'permission denied for function ' || c.name,
        'an authenticated user may not call ' || c.name
    )
from pg_temp.rpc_calls() as c
where c.name <> 'get_wallet_balance';

-- What each user sees.
select
    lives_ok(
        format(
            'select tests.as_caller(%L, %L, %L)',
            'authenticated',
            pg_temp.user_claims(u.name),
            format(
                'insert into pg_temp.visible (note, id) '
                || 'select %L, id from public.transactions '
                || 'union all select %L, transaction_id from public.transaction_events '
                || 'union all select %L, user_id from public.wallets',
                u.name || ' transactions', u.name || ' events', u.name || ' wallets'
            )
        ),
        u.name || ' reads transactions, events and wallets'
    )
from (values ('aline'), ('bosco'), ('claire')) as u (name);
select results_eq(
    $$select id from pg_temp.visible where note = 'aline transactions' order by id$$,
    $$select id from public.transactions where user_id = pg_temp.uid('aline') order by id$$,
    'Aline sees her own transactions, all of them'
);
select results_eq(
    $$select id from pg_temp.visible where note = 'bosco transactions' order by id$$,
    $$select id from public.transactions where counterparty_id = pg_temp.uid('bosco') order by id$$,
    'Bosco sees the transfers he received, as counterparty'
);
select is(
    (
        select count(*) from pg_temp.visible
        where note = 'bosco transactions'
    ), 2::bigint,
    'two of them (RWF and UGX)'
);
select results_eq(
    $$select id, count(*) from pg_temp.visible where note = 'aline events' group by id
       order by id$$,
    $$select transaction_id, count(*) from public.transaction_events
       where user_id = pg_temp.uid('aline') group by transaction_id order by transaction_id$$,
    'Aline sees every event of her transactions'
);
select is(
    (
        select count(*) from pg_temp.visible
        where note = 'bosco events'
    ), 0::bigint,
    'the counterparty does not see the events of a transfer'
);
select results_eq(
    $$select id from pg_temp.visible where note = 'aline wallets' order by id$$,
    $$select user_id from public.wallets where user_id = pg_temp.uid('aline') order by user_id$$,
    'Aline sees her wallets, and only hers'
);
select is(
    (
        select count(*) from pg_temp.visible
        where note like 'claire %'
    ), 0::bigint,
    'Claire, who has nothing, sees no transaction, event or wallet'
);
select lives_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'authenticated',
        pg_temp.user_claims('aline'),
        format(
            'insert into pg_temp.seen (note, n) select %L, public.get_wallet_balance(%L, %L)',
            'aline own balance', pg_temp.uid('aline'), 'RWF'
        )
    ),
    'Aline reads her own balance'
);
select is(pg_temp.seen('aline own balance'), 3500::numeric, 'and gets it');
select throws_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'authenticated',
        pg_temp.user_claims('claire'),
        format('select public.get_wallet_balance(%L, %L)', pg_temp.uid('aline'), 'RWF')
    ),
    '42501', 'get_wallet_balance: a user may read only their own balance',
    'Claire may not read Aline''s balance'
);
select throws_ok(
    format(
        'select tests.as_role(%L, %L)',
        'authenticated',
        format('select public.get_wallet_balance(%L, %L)', pg_temp.uid('aline'), 'RWF')
    ),
    '42501', 'get_wallet_balance: a user may read only their own balance',
    'nor may a session as authenticated without claims'
);
select throws_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'authenticated',
        pg_temp.user_claims('aline'),
        'delete from public.wallets'
    ),
    '42501', 'permission denied for table wallets',
    'an authenticated user may not change wallets'
);

-- service_role: everything.
select lives_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'service_role',
        '{"role": "service_role"}',
        format(
            'insert into pg_temp.seen (note, n) values '
            || '(%L, (select count(*) from public.transactions)), '
            || '(%L, (select count(*) from public.transaction_events)), '
            || '(%L, (select count(*) from public.wallets)), '
            || '(%L, public.get_wallet_balance(%L, %L)), '
            || '(%L, (select count(*) from public.reconcile_wallet_balances()))',
            'service transactions', 'service events', 'service wallets',
            'service balance', pg_temp.uid('aline'), 'RWF',
            'service reconcile'
        )
    ),
    'service_role reads every table, reads any balance and reconciles'
);
select results_eq(
    $$select pg_temp.seen('service transactions'), pg_temp.seen('service events'),
             pg_temp.seen('service wallets'), pg_temp.seen('service balance'),
             pg_temp.seen('service reconcile')$$,
    $$select (select count(*) from public.transactions)::numeric,
             (select count(*) from public.transaction_events)::numeric,
             (select count(*) from public.wallets)::numeric,
             3500::numeric, 0::numeric$$,
    'service_role sees every row, Aline''s balance and no difference'
);
select lives_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'service_role',
        '{"role": "service_role"}',
        format(
            'insert into pg_temp.seen (note, n) '
            || 'select %L, count(*) from public.update_transaction_status(%L, %L)',
            'service update', pg_temp.txn('in pending'), 'cancelled'
        )
    ),
    'service_role moves a transaction'
);
select results_eq(
    $$select pg_temp.seen('service update'), t.status::text, e.actor_type, e.actor_id
        from public.transactions as t
        inner join public.transaction_events as e on t.id = e.transaction_id
       where t.id = pg_temp.txn('in pending') and e.to_status = 'cancelled'$$,
    $$values (1::numeric, 'cancelled'::text, 'service'::text, 'service_role'::text)$$,
    'the transaction is cancelled, by service_role (a service without a sub)'
);
select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.pronamespace = 'public'::regnamespace
         and p.proname in ('create_transaction', 'update_transaction_status',
                           'get_wallet_balance', 'reconcile_wallet_balances')
         and (coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
              or has_function_privilege('anon', p.oid, 'execute')
              or not has_function_privilege('service_role', p.oid, 'execute')
              -- Security definer, except get_wallet_balance, which signed-in users call: it is
              -- an invoker whose body, private.get_wallet_balance, is (test_database_lints).
              or p.prosecdef = (p.proname = 'get_wallet_balance')
              or not p.proconfig @> array['search_path=""'])$$,
    'every payments RPC has a comment, is security definer (get_wallet_balance invoker) with '
    || 'search_path pinned, is not '
    || 'executable by anon and is by service_role'
);
select results_eq(
    $$select p.proname::text collate "default" from pg_catalog.pg_proc as p
       where p.pronamespace = 'public'::regnamespace
         and p.proname in ('create_transaction', 'update_transaction_status',
                           'get_wallet_balance', 'reconcile_wallet_balances')
         and has_function_privilege('authenticated', p.oid, 'execute')$$,
    $$values ('get_wallet_balance'::text)$$,
    'of them authenticated may execute only get_wallet_balance'
);

-- Audit ------------------------------------------------------------------------------------------

select results_eq(
    $$select action::text, actor_type::text, actor_identifier, new_data ->> 'status'
        from public.system_audit_logs
       where resource_type = 'public.transactions' and resource_id = pg_temp.txn('debit')::text
       order by id$$,
    $$values ('insert'::text, 'service'::text, 'payments-svc'::text, 'pending'::text)$$,
    'system_audit_logs records the creation of a transaction, by the service'
);
select results_eq(
    $$select action::text, actor_type::text, old_data ->> 'status', new_data ->> 'status',
             changed_keys
        from public.system_audit_logs
       where resource_type = 'public.transactions' and resource_id = pg_temp.txn('b debit')::text
       order by id$$,
    $$values
        ('insert'::text, 'database'::text, null::text, 'pending'::text, null::text []),
        ('update', 'database', 'pending', 'processing', array['status']),
        ('update', 'database', 'processing', 'completed', array['completed_at', 'status']),
        ('update', 'database', 'completed', 'reversed', array['status'])$$,
    'and each move of it, with what changed'
);
select results_eq(
    $$select action::text, old_data ->> 'balance', new_data ->> 'balance', actor_type::text
        from public.system_audit_logs
       where resource_type = 'public.wallets' and resource_id = pg_temp.uid('bosco')::text
         and coalesce(new_data, old_data) ->> 'currency' = 'UGX'
       order by id$$,
    $$values
        ('insert'::text, null::text, '0'::text, 'database'::text),
        ('update', '0', '1400', 'database'),
        ('update', '1400', '0', 'database'),
        ('update', '0', '5', 'database'),
        ('update', '5', '0', 'database')$$,
    'system_audit_logs records every change of a wallet, the tampering too'
);

-- Views ------------------------------------------------------------------------------------------

-- KES, for the summary alone: credits of 100.50 and 300.25 pending and 50 failed; debits of
-- 200 failed and 10 pending.
select is(
    pg_temp.make('s credit 1', 'aline', 'credit', 100.50, 'KES')::text
    || pg_temp.make('s credit 2', 'aline', 'credit', 300.25, 'KES')::text
    || pg_temp.make('s credit 3', 'dan', 'credit', 50, 'KES')::text
    || pg_temp.move('s credit 3', 'failed')
    || pg_temp.make('s debit 1', 'dan', 'debit', 200, 'KES')::text
    || pg_temp.move('s debit 1', 'processing', 'failed')
    || pg_temp.make('s debit 2', 'aline', 'debit', 10, 'KES')::text,
    pg_temp.txn('s credit 1')::text || pg_temp.txn('s credit 2') || pg_temp.txn('s credit 3')
    || 'failed' || pg_temp.txn('s debit 1') || 'failed' || pg_temp.txn('s debit 2'),
    'five KES transactions'
);
select results_eq(
    $$select day, type::text, status::text, transaction_count, total_amount, avg_amount,
             failure_rate
        from monitoring.transaction_summary
       where currency = 'KES'
       order by type collate "C", status collate "C"$$,
    $$values
        ((now() at time zone 'UTC')::date, 'credit'::text, 'failed'::text, 1::bigint,
         50::numeric, 50.00::numeric, 0.3333::numeric),
        ((now() at time zone 'UTC')::date, 'credit', 'pending', 2, 400.75, 200.38, 0.3333),
        ((now() at time zone 'UTC')::date, 'debit', 'failed', 1, 200, 200.00, 0.5000),
        ((now() at time zone 'UTC')::date, 'debit', 'pending', 1, 10, 10.00, 0.5000)$$,
    'transaction_summary: per UTC day, type, status and currency, the count, total, average and '
    || 'the share of the day''s type and currency that failed'
);
select is(
    (
        select failure_rate from monitoring.transaction_summary
        where currency = 'UGX' and type = 'credit'
    ),
    0.0000,
    'a type without failures has failure_rate 0'
);
select is(
    (
        select array_agg(a.attname::text order by a.attnum)
        from pg_catalog.pg_attribute as a
        where a.attrelid = 'monitoring.transaction_summary'::regclass and a.attnum > 0
    ),
    array[
        'day', 'type', 'status', 'currency', 'transaction_count', 'total_amount', 'avg_amount',
        'failure_rate'
    ],
    'transaction_summary has no user id or reference'
);
select lives_ok(
    $$select tests.as_role('analyst', 'select * from monitoring.transaction_summary')$$,
    'analyst selects monitoring.transaction_summary'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'select * from monitoring.transaction_summary')$$,
    '42501', 'permission denied for schema monitoring',
    'an authenticated user may not'
);

select ok(
    (
        select c.reloptions @> array['security_invoker=true'] from pg_catalog.pg_class as c
        where c.oid = 'public.user_recent_transactions'::regclass
    ),
    'user_recent_transactions is security_invoker'
);
create temp table recent (
    seen_by text,
    user_id uuid,
    currency text,
    transaction_count bigint,
    credits numeric,
    debits numeric,
    transfers numeric,
    payments numeric,
    refunds numeric,
    fees numeric,
    commissions numeric,
    last_transaction_at timestamptz,
    last_reference text,
    last_status text
);
grant insert on pg_temp.recent to authenticated;
select
    lives_ok(
        format(
            'select tests.as_caller(%L, %L, %L)',
            'authenticated',
            pg_temp.user_claims(u.name),
            format(
                'insert into pg_temp.recent select %L, r.* '
                || 'from public.user_recent_transactions as r',
                u.name
            )
        ),
        u.name || ' reads user_recent_transactions'
    )
from (values ('aline'), ('bosco'), ('claire')) as u (name);
select results_eq(
    $$select user_id, currency, transaction_count, credits, debits, transfers, payments,
             refunds, fees, commissions
        from pg_temp.recent where seen_by = 'aline' order by currency collate "C"$$,
    $$select user_id, currency, transaction_count, credits, debits, transfers, payments,
             refunds, fees, commissions
        from public.user_recent_transactions
       where user_id = pg_temp.uid('aline') order by currency collate "C"$$,
    'Aline sees her own rows of user_recent_transactions, whole'
);
select results_eq(
    $$select currency, transaction_count, credits, debits, transfers, payments, refunds, fees,
             commissions
        from pg_temp.recent where seen_by = 'aline' and currency = 'UGX'$$,
    $$values ('UGX'::text, 13::bigint, 10000::numeric, 16001::numeric, 1400::numeric,
              2300::numeric, 2150::numeric, 100::numeric, 999::numeric)$$,
    'her UGX row sums each type of the last 30 days'
);
select results_eq(
    $$select user_id, currency, transaction_count, transfers, last_reference, last_status
        from pg_temp.recent where seen_by = 'bosco' order by currency collate "C"$$,
    $$values
        (pg_temp.uid('aline'), 'RWF'::text, 1::bigint, 700::numeric, pg_temp.ref('transfer'),
         'pending'::text),
        (pg_temp.uid('aline'), 'UGX', 1, 1400, pg_temp.ref('b transfer'), 'reversed')$$,
    'Bosco sees only the transfers he received, under the sender'
);
select is(
    (
        select count(*) from pg_temp.recent
        where seen_by = 'claire'
    ), 0::bigint,
    'Claire sees no row'
);

-- Partitions -------------------------------------------------------------------------------------

select results_eq(
    $$select premake_months, retention_months from private.partitioned_tables
       where schema_name = 'public' and table_name = 'transactions'$$,
    $$values (3, null::integer)$$,
    'public.transactions is partition-managed, three months ahead, kept for good'
);
select results_eq(
    $$select tableoid::regclass::text, count(*) from public.transactions group by tableoid$$,
    $$values ('partitions.' || tests.current_child('public.transactions'),
              (select count(*) from private.transaction_directory))$$,
    'every transaction is in this month''s child, none in the default partition'
);
select throws_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'authenticated',
        pg_temp.user_claims('aline'),
        format('select count(*) from partitions.%I', tests.current_child('public.transactions'))
    ),
    '42501', 'permission denied for schema partitions',
    'a user cannot read the child partition around the policy'
);

-- A reference drawn twice: the second create draws again, with or without a key. The stub
-- draws CLASH01 twice, then fresh ones.
create temp table reference_draws (n integer not null);
insert into pg_temp.reference_draws values (0);
create or replace function private.transaction_reference(p_at timestamptz)
returns text
language sql
volatile
set search_path = ''
as $$
    update pg_temp.reference_draws set n = n + 1
    returning case when n <= 2 then 'TXN-20260101-CLASH1' else 'TXN-20260101-FRESH' || n end
$$;
select is(
    (select t.reference from public.create_transaction(
        pg_temp.uid('aline'), 'credit', 5, 'RWF'
    ) as t),
    'TXN-20260101-CLASH1',
    'the stub hands out a reference'
);
select is(
    (select t.reference || ' ' || t.idempotency_key from public.create_transaction(
        pg_temp.uid('aline'), 'credit', 6, 'RWF', 'after-a-clash'
    ) as t),
    'TXN-20260101-FRESH3 after-a-clash',
    'a create with a key whose reference is taken draws a new one instead of failing'
);
select is(
    (select t.reference from public.create_transaction(
        pg_temp.uid('aline'), 'credit', 6, 'RWF', 'after-a-clash'
    ) as t),
    'TXN-20260101-FRESH3',
    'and its retry returns it'
);

select * from finish();
rollback;

-- create_transaction for each type (functions-sql's transactions file): what it returns and
-- stores, the directory, the events and outbox events it writes; its idempotency, and the
-- request's correlation id.
-- Runs as postgres on a fresh clone in one transaction: now() is constant, so every transaction
-- here is created (and moved) at now(). The users, notes and helpers are tests/sql/fixtures/
-- transactions.sql.
begin;
select plan(25);

call tests.fixture('transactions');

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

select * from finish();
rollback;

-- The payments views (functions-sql's payment views file): monitoring.transaction_summary and
-- user_recent_transactions, who may read them and what each user sees. Runs on the story of the
-- create and balances files.
-- Runs as postgres on a fresh clone in one transaction: now() is constant, so every transaction
-- here is created (and moved) at now(). The users, notes and helpers are tests/sql/fixtures/
-- transactions.sql.
begin;
select plan(14);

call tests.fixture('transactions');
call pg_temp.story_created();
call pg_temp.story_balances();

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

select * from finish();
rollback;

-- public.transactions as a partitioned table (its child of this month, out of users' reach),
-- and a reference drawn twice. Runs on the story of the create file.
-- Runs as postgres on a fresh clone in one transaction: now() is constant, so every transaction
-- here is created (and moved) at now(). The users, notes and helpers are tests/sql/fixtures/
-- transactions.sql.
begin;
select plan(6);

call tests.fixture('transactions');
call pg_temp.story_created();

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

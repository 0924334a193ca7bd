-- Who may read and call the payments tables and RPCs: anon, a signed-in owner, a counterparty,
-- a stranger and service_role, and each RPC's grants and settings. Runs on the story of the
-- create, refusals and balances files, and a pending EUR credit of Aline's.
-- Runs as postgres on a fresh clone in one transaction: now() is constant, so every transaction
-- here is created (and moved) at now(). The users, notes and helpers are tests/sql/fixtures/
-- transactions.sql.
begin;
select plan(32);

call tests.fixture('transactions');
call pg_temp.story_created();
call pg_temp.story_refunds();
call pg_temp.story_balances();
do $$
begin
    perform pg_temp.make('in pending', 'aline', 'credit', 1, 'EUR');
end;
$$;

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

select * from finish();
rollback;

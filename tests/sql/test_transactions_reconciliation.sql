-- Wallet reconciliation (functions-sql's wallets file): a tampered or missing wallet found, the
-- metric, the event and the daily job; then the audit rows of transactions and wallets, the
-- tampering too. Runs on the story of the create, refusals and balances files.
-- Runs as postgres on a fresh clone in one transaction: now() is constant, so every transaction
-- here is created (and moved) at now(). The users, notes and helpers are tests/sql/fixtures/
-- transactions.sql.
begin;
select plan(11);

call tests.fixture('transactions');
call pg_temp.story_created();
call pg_temp.story_refunds();
call pg_temp.story_balances();

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

select * from finish();
rollback;

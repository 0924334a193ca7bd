-- The service registry (migration 20261207130000_service_registry, functions in
-- supabase/functions-sql/*_service_registry.sql): registration, heartbeats, the record of status
-- changes, discovery, the sweep job, the overview, who may call what, and that a heartbeat is a
-- HOT update. Runs as postgres on a fresh clone in one transaction: now() is constant, so an
-- instance is aged by moving its heartbeat into the past by hand.
begin;
select plan(75);

create function pg_temp.changes()
returns table (service_name text, instance_id text, old_status text, new_status text, reason text)
language sql
as $$
    select c.service_name, c.instance_id, c.old_status, c.new_status, c.reason
    from private.service_status_changes as c
    order by c.id
$$;

create function pg_temp.events()
returns table (aggregate_id text, payload jsonb)
language sql
as $$
    select e.aggregate_id, e.payload
    from public.outbox_events as e
    where e.event_type = 'service.status_changed'
    order by e.id
$$;

create procedure pg_temp.age(p_service_name text, p_instance_id text, p_seconds integer)
language sql
as $$
    update public.service_registry
    set last_heartbeat_at = now() - make_interval(secs => p_seconds)
    where service_name = p_service_name and instance_id = p_instance_id
$$;

select has_table('public', 'service_registry', 'public.service_registry exists');
select has_table('private', 'service_status_changes', 'private.service_status_changes exists');
select has_view(
    'monitoring', 'service_health_overview', 'monitoring.service_health_overview exists'
);
select is(
    (select reloptions from pg_catalog.pg_class where oid = 'public.service_registry'::regclass),
    array['fillfactor=50'],
    'the registry leaves half of each page free for heartbeats'' new row versions'
);
select is_empty(
    $$select i.indexrelid::regclass
        from pg_catalog.pg_index as i
        join pg_catalog.pg_attribute as a
          on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
       where i.indrelid = 'public.service_registry'::regclass
         and a.attname in ('last_heartbeat_at', 'metrics', 'updated_at')$$,
    'no index covers a column a heartbeat writes'
);

-- Registration ------------------------------------------------------------------------------

select results_eq(
    $$select service_name::text, instance_id::text, service_type::text, version::text,
             endpoint::text, health_check_url::text, capabilities::jsonb, dependencies::text[],
             status::text, last_heartbeat_at = now(), metrics::jsonb,
             heartbeat_interval_seconds::integer, registered_at = now(), updated_at = now()
        from public.register_service(
            'payments', 'worker', '1.2.0', 'http://10.0.0.5:8080', 'http://10.0.0.5:8080/health',
            '["payouts", "refunds"]', array['ledger'], 'pay-1', 15
        )$$,
    $$values ('payments'::text, 'pay-1'::text, 'worker'::text, '1.2.0'::text,
              'http://10.0.0.5:8080'::text, 'http://10.0.0.5:8080/health'::text,
              '["payouts", "refunds"]'::jsonb, array['ledger'], 'starting'::text, true,
              '{}'::jsonb, 15, true, true)$$,
    'register_service inserts the instance, starting, and returns its row'
);
select results_eq(
    $$select instance_id::text, capabilities::jsonb, dependencies::text[],
             heartbeat_interval_seconds::integer
        from public.register_service('ledger', 'database', '15', null, null, null)$$,
    $$values ('default'::text, '[]'::jsonb, '{}'::text[], 10)$$,
    'defaults: instance ''default'', no capabilities, no dependencies, a 10 s interval'
);
select results_eq(
    'select * from pg_temp.changes()',
    $$values ('payments'::text, 'pay-1'::text, null::text, 'starting'::text, 'register'::text),
             ('ledger', 'default', null, 'starting', 'register')$$,
    'a first registration is recorded as a change from nothing to starting'
);
select results_eq(
    'select * from pg_temp.events()',
    $$values ('payments/pay-1'::text, '{"service_name": "payments", "instance_id": "pay-1",
              "old_status": null, "new_status": "starting", "reason": "register"}'::jsonb),
             ('ledger/default', '{"service_name": "ledger", "instance_id": "default",
              "old_status": null, "new_status": "starting", "reason": "register"}'::jsonb)$$,
    'each change emits service.status_changed to the outbox'
);

-- Heartbeats --------------------------------------------------------------------------------

call pg_temp.age('payments', 'pay-1', 5);
select lives_ok(
    $$select public.service_heartbeat('payments', 'healthy', '{"queue_depth": 3}', 'pay-1')$$,
    'a heartbeat with a new status'
);
select results_eq(
    $$select status::text, last_heartbeat_at = now(), metrics::jsonb from public.service_registry
       where service_name = 'payments' and instance_id = 'pay-1'$$,
    $$values ('healthy'::text, true, '{"queue_depth": 3}'::jsonb)$$,
    'it moves the status, the heartbeat time and the metrics'
);
select results_eq(
    'select * from pg_temp.changes() offset 2',
    $$values ('payments'::text, 'pay-1'::text, 'starting'::text, 'healthy'::text,
              'heartbeat'::text)$$,
    'the change of status is recorded'
);
select is(
    (select count(*) from pg_temp.events()), 3::bigint, 'and emitted to the outbox'
);

call pg_temp.age('payments', 'pay-1', 5);
update public.service_registry set updated_at = now() - interval '1 hour'
where service_name = 'payments' and instance_id = 'pay-1';
select lives_ok(
    $$select public.service_heartbeat('payments', p_instance_id => 'pay-1')$$,
    'a heartbeat with the same status and no metrics'
);
select results_eq(
    $$select status::text, last_heartbeat_at = now(), metrics::jsonb, now() - updated_at
        from public.service_registry where service_name = 'payments' and instance_id = 'pay-1'$$,
    $$values ('healthy'::text, true, '{"queue_depth": 3}'::jsonb, interval '1 hour')$$,
    'it moves the heartbeat time, keeps the last metrics, and leaves updated_at'
);
select is(
    (select count(*) from pg_temp.changes()), 3::bigint, 'an unchanged status records nothing'
);
select is(
    (select count(*) from pg_temp.events()), 3::bigint, 'and emits nothing'
);
select is(
    (select count(*) from public.system_audit_logs),
    0::bigint,
    'heartbeats write no audit row'
);

select lives_ok(
    $$select public.service_heartbeat('payments', 'unhealthy', null, 'pay-1')$$,
    'an instance reports itself unhealthy'
);
select lives_ok(
    $$select public.service_heartbeat('payments', 'unhealthy', null, 'pay-1')$$,
    'and again'
);
select results_eq(
    'select old_status, new_status from pg_temp.changes() offset 3',
    $$values ('healthy'::text, 'unhealthy'::text)$$,
    'one change, one row'
);

-- A restart re-registers: starting again, the new version, the old registration time.
update public.service_registry set registered_at = now() - interval '2 days'
where service_name = 'payments' and instance_id = 'pay-1';
select results_eq(
    $$select version::text, status::text, metrics::jsonb, now() - registered_at,
             updated_at = now()
        from public.register_service(
            'payments', 'worker', '1.3.0', 'http://10.0.0.5:8080', null, '["payouts"]',
            array['ledger'], 'pay-1', 15
        )$$,
    $$values ('1.3.0'::text, 'starting'::text, '{}'::jsonb, interval '2 days', true)$$,
    're-registering replaces the instance''s description and starts it again'
);
select results_eq(
    'select old_status, new_status, reason from pg_temp.changes() offset 4',
    $$values ('unhealthy'::text, 'starting'::text, 'register'::text)$$,
    'the restart is recorded'
);
select lives_ok(
    $$select public.register_service(
        'payments', 'worker', '1.3.0', null, null, '["payouts"]', null, 'pay-1', 15
    )$$,
    'registering a starting instance again'
);
select is((select count(*) from pg_temp.changes()), 5::bigint, 'records no change');
select is(
    (select count(*) from public.service_registry where service_name = 'payments'),
    1::bigint,
    'one row per instance'
);

-- Not found and bad input --------------------------------------------------------------------

select throws_ok(
    $$select public.service_heartbeat('payments', 'healthy', null, 'pay-9')$$,
    'PT404',
    'service_heartbeat: no instance pay-9 of service payments is registered',
    'a heartbeat of an unregistered instance is PT404'
);
select throws_ok(
    $$select public.service_heartbeat('nobody')$$,
    'PT404',
    null,
    'a heartbeat of an unregistered service is PT404'
);
select throws_ok(
    $$select public.service_heartbeat('payments', 'sleeping', null, 'pay-1')$$,
    '22023',
    'service_heartbeat: p_status must be healthy, unhealthy, starting, stopping or stopped',
    'an unknown status is 22023'
);
select throws_ok(
    $$select public.service_heartbeat('payments', null, null, 'pay-1')$$,
    '22023', null, 'a null status is 22023'
);
select throws_ok(
    $$select public.service_heartbeat('payments', 'healthy', '[1]', 'pay-1')$$,
    '22023', 'service_heartbeat: p_metrics must be a JSON object', 'metrics not an object: 22023'
);
select throws_ok(
    $$select public.service_heartbeat(null)$$,
    '22023', 'service_heartbeat: p_service_name must be 1 to 100 characters',
    'a null service name is 22023'
);
select throws_ok(
    $$select public.service_heartbeat('payments', 'healthy', null, '')$$,
    '22023', null, 'an empty instance id is 22023'
);
select throws_ok(
    $$select public.register_service('', 'worker', '1', null, null, '[]')$$,
    '22023', 'register_service: p_service_name must be 1 to 100 characters',
    'an empty service name is 22023'
);
select throws_ok(
    $$select public.register_service('s', null, '1', null, null, '[]')$$,
    '22023', 'register_service: p_service_type must be 1 to 50 characters',
    'a null service type is 22023'
);
select throws_ok(
    $$select public.register_service('s', 'worker', null, null, null, '[]')$$,
    '22023', 'register_service: p_version must be 1 to 50 characters', 'a null version is 22023'
);
select throws_ok(
    $$select public.register_service('s', 'worker', '1', '', null, '[]')$$,
    '22023', 'register_service: p_endpoint must be null or 1 to 2048 characters',
    'an empty endpoint is 22023'
);
select throws_ok(
    $$select public.register_service('s', 'worker', '1', null, '', '[]')$$,
    '22023', 'register_service: p_health_check_url must be null or 1 to 2048 characters',
    'an empty health check URL is 22023'
);
select throws_ok(
    $$select public.register_service('s', 'worker', '1', null, null, '"payouts"')$$,
    '22023', 'register_service: p_capabilities must be a JSON array or object',
    'capabilities neither array nor object: 22023'
);
select throws_ok(
    $$select public.register_service('s', 'worker', '1', null, null, '[]', array[null])$$,
    '22023',
    'register_service: p_dependencies must be at most 50 service names of 1 to 100 characters',
    'a null dependency is 22023'
);
select throws_ok(
    $$select public.register_service(
        's', 'worker', '1', null, null, '[]',
        array(select 'd' || n from generate_series(1, 51) as n)
    )$$,
    '22023', null, '51 dependencies: 22023'
);
select throws_ok(
    $$select public.register_service('s', 'worker', '1', null, null, '[]', null, null, 0)$$,
    '22023', 'register_service: p_heartbeat_interval_seconds must be 1 to 3600 (got 0)',
    'a zero interval is 22023'
);
select throws_ok(
    $$select public.register_service('s', 'worker', '1', null, null, '[]', null, null, 3601)$$,
    '22023', null, 'an interval over an hour is 22023'
);
select throws_ok(
    $$select public.register_service('s', 'worker', '1', null, null, '[]', null, null, null)$$,
    '22023', null, 'a null interval is 22023'
);
select throws_ok(
    $$select * from public.find_service_instances('')$$,
    '22023', 'find_service_instances: p_service_name must be null or 1 to 100 characters',
    'discovery by an empty name is 22023'
);
select throws_ok(
    $$select * from public.find_service_instances(null, '')$$,
    '22023', 'find_service_instances: p_capability must be null or 1 to 100 characters',
    'discovery by an empty capability is 22023'
);
select is(
    (select count(*) from public.service_registry where service_name = 's'),
    0::bigint,
    'bad input registered nothing'
);

-- Discovery ---------------------------------------------------------------------------------

select public.register_service(
    'payments', 'worker', '1.3.0', null, null, '{"payouts": {"max": 100}}', null, 'pay-2', 15
);
select public.service_heartbeat('payments', 'healthy', null, 'pay-1');
select public.service_heartbeat('payments', 'healthy', null, 'pay-2');
select public.service_heartbeat('ledger');
call pg_temp.age('payments', 'pay-2', 10);
select results_eq(
    $$select service_name, instance_id from public.find_service_instances()$$,
    $$values ('ledger'::text, 'default'::text), ('payments', 'pay-1'), ('payments', 'pay-2')$$,
    'every healthy instance, freshest first per service'
);
select results_eq(
    $$select instance_id from public.find_service_instances('payments', 'payouts')$$,
    $$values ('pay-1'::text), ('pay-2')$$,
    'a capability matches an array element or an object key'
);
select is_empty(
    $$select * from public.find_service_instances('payments', 'refunds')$$,
    'an instance without the capability is not found'
);
call pg_temp.age('payments', 'pay-2', 46);
select results_eq(
    $$select instance_id from public.find_service_instances('payments')$$,
    $$values ('pay-1'::text)$$,
    'an instance silent for three intervals is not handed out, even before the sweep'
);
select public.service_heartbeat('payments', 'stopping', null, 'pay-1');
select is_empty(
    $$select * from public.find_service_instances('payments')$$,
    'nor one that is stopping'
);

-- The overview ------------------------------------------------------------------------------

select public.service_heartbeat('payments', 'healthy', null, 'pay-1');
select public.register_service('gateway', 'edge', '2.0', null, null, '[]', array['payments', 'sms']);
select public.service_heartbeat('gateway');
select results_eq(
    $$select service_name, state, instances, live_instances, healthy, unhealthy, starting,
             stopping, stopped, newest_heartbeat_age_s, oldest_heartbeat_age_s, versions,
             unavailable_dependencies
        from monitoring.service_health_overview$$,
    $$values ('gateway'::text, 'degraded'::text, 1::bigint, 1::bigint, 1::bigint, 0::bigint,
              0::bigint, 0::bigint, 0::bigint, 0::numeric, 0::numeric, array['2.0'],
              array['sms']),
             ('ledger', 'healthy', 1, 1, 1, 0, 0, 0, 0, 0, 0, array['15'], '{}'),
             ('payments', 'healthy', 2, 1, 2, 0, 0, 0, 0, 0, 46, array['1.3.0'], array[]::text[])$$,
    'per service: state, instances by status, heartbeat ages, versions, unavailable dependencies'
);
select public.service_heartbeat('payments', 'unhealthy', null, 'pay-1');
select results_eq(
    $$select service_name, state, unavailable_dependencies from monitoring.service_health_overview
       where service_name in ('gateway', 'payments')$$,
    $$values ('gateway'::text, 'degraded'::text, array['payments', 'sms']),
             ('payments', 'down', '{}')$$,
    'a dependency with no live instance makes its dependents degraded; no live instance is down'
);
select lives_ok(
    $$select tests.as_role('analyst', 'select * from monitoring.service_health_overview')$$,
    'analyst reads the overview'
);

-- The sweep ---------------------------------------------------------------------------------

select public.service_heartbeat('payments', 'healthy', null, 'pay-1');
select public.register_service('sms', 'worker', '1', null, null, '[]', null, 'sms-1', 20);
select public.register_service('sms', 'worker', '1', null, null, '[]', null, 'sms-2', 20);
select public.register_service('sms', 'worker', '1', null, null, '[]', null, 'sms-3', 20);
select public.register_service('sms', 'worker', '1', null, null, '[]', null, 'sms-4', 20);
select public.service_heartbeat('sms', 'stopped', null, 'sms-3');
call pg_temp.age('sms', 'sms-1', 59);   -- under three intervals: kept healthy
select public.service_heartbeat('sms', 'healthy', null, 'sms-2');
call pg_temp.age('sms', 'sms-2', 61);   -- three intervals missed
update public.service_registry set updated_at = now() - interval '25 hours'
where service_name = 'sms' and instance_id = 'sms-3';  -- stopped for a day
call pg_temp.age('sms', 'sms-4', 90000);  -- silent for a day
insert into private.service_status_changes (
    service_name, instance_id, old_status, new_status, reason, changed_at
) values ('old', 'default', 'healthy', 'unhealthy', 'heartbeat', now() - interval '31 days');
select is(
    private.sweep_service_registry(),
    '{"marked_unhealthy": 2, "removed": 2, "history_purged": 1}'::jsonb,
    'the sweep marks pay-2 and sms-2 unhealthy, removes sms-3 and sms-4, purges the old change'
);
select results_eq(
    $$select service_name::text, instance_id::text, status::text from public.service_registry
       where service_name in ('sms', 'payments') order by 1, 2$$,
    $$values ('payments'::text, 'pay-1'::text, 'healthy'::text),
             ('payments', 'pay-2', 'unhealthy'),
             ('sms', 'sms-1', 'starting'),
             ('sms', 'sms-2', 'unhealthy')$$,
    'what the sweep left'
);
select results_eq(
    $$select service_name, instance_id, old_status, new_status, reason from pg_temp.changes()
       where reason = 'missed_heartbeats'$$,
    $$values ('payments'::text, 'pay-2'::text, 'healthy'::text, 'unhealthy'::text,
              'missed_heartbeats'::text),
             ('sms', 'sms-2', 'healthy', 'unhealthy', 'missed_heartbeats')$$,
    'each instance the sweep marks is a recorded change'
);
select is(
    (
        select count(*) from pg_temp.events()
        where payload ->> 'reason' = 'missed_heartbeats'
    ),
    2::bigint,
    'and an outbox event'
);
select is(private.sweep_service_registry(),
    '{"marked_unhealthy": 0, "removed": 0, "history_purged": 0}'::jsonb,
    'a second sweep finds nothing more'
);
select lives_ok(
    $$select public.service_heartbeat('payments', 'healthy', null, 'pay-2')$$,
    'an unhealthy instance that heartbeats again'
);
select is(
    (select status::text from public.service_registry where instance_id = 'pay-2'),
    'healthy',
    'is healthy again'
);
select is(
    (select schedule from cron.job where jobname = 'sweep-service-registry'),
    '* * * * *',
    'the sweep runs every minute'
);

-- HOT -------------------------------------------------------------------------------------------

-- The statistics of this transaction's own updates: n_tup_hot_upd counts them once committed,
-- pg_stat_xact_user_tables before.
create temporary table before_hot as
select n_tup_upd, n_tup_hot_upd from pg_catalog.pg_stat_xact_user_tables
where relid = 'public.service_registry'::regclass;
select public.service_heartbeat('payments', 'healthy', jsonb_build_object('n', n), 'pay-1')
from generate_series(1, 20) as n;
select results_eq(
    $$select x.n_tup_upd - b.n_tup_upd, x.n_tup_hot_upd - b.n_tup_hot_upd
        from pg_catalog.pg_stat_xact_user_tables as x, before_hot as b
       where x.relid = 'public.service_registry'::regclass$$,
    $$values (20::bigint, 20::bigint)$$,
    'twenty heartbeats are twenty updates, each a HOT update'
);

-- Who may call what -----------------------------------------------------------------------------

select throws_ok(
    $$select tests.as_role('anon', 'select public.register_service(''x'', ''t'', ''1'', null, null, ''[]'')')$$,
    '42501', null, 'anon may not register'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'select public.register_service(''x'', ''t'', ''1'', null, null, ''[]'')')$$,
    '42501', null, 'authenticated may not register'
);
select throws_ok(
    $$select tests.as_role('anon', 'select public.service_heartbeat(''payments'')')$$,
    '42501', null, 'anon may not heartbeat'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'select public.service_heartbeat(''payments'')')$$,
    '42501', null, 'authenticated may not heartbeat'
);
select throws_ok(
    $$select tests.as_role('anon', 'select public.find_service_instances()')$$,
    '42501', null, 'anon may not discover'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'select public.find_service_instances()')$$,
    '42501', null, 'authenticated may not discover'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'select * from public.service_registry')$$,
    '42501', null, 'authenticated may not read the registry'
);
select throws_ok(
    $$select tests.as_role('anon', 'select * from public.service_registry')$$,
    '42501', null, 'nor may anon'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'select public.register_service(''svc'', ''t'', ''1'', null, null, ''[]'');'
        || 'select public.service_heartbeat(''svc'');'
        || 'select public.find_service_instances(''svc'')'
    )$$,
    'service_role registers, heartbeats and discovers'
);
select is(
    (select status::text from public.service_registry where service_name = 'svc'),
    'healthy',
    'as service_role'
);
select throws_ok(
    $$select tests.as_role('service_role', 'select * from private.service_status_changes')$$,
    '42501', null, 'the history is not read through the API'
);

select * from finish();
rollback;

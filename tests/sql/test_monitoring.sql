-- The monitoring views (supabase/functions-sql/*_monitoring.sql), what the analyst role may and
-- may not read, its search_path setting, and the pg_cron helpers of *_cron.sql. Runs as postgres
-- on a fresh clone of the migrated template.
begin;
select plan(54);

-- Partition names and month bounds are UTC; so are the expectations computed here.
set local timezone = 'UTC';

-- The views ---------------------------------------------------------------------------------------

select has_view('monitoring', 'recent_metrics_by_service', 'monitoring.recent_metrics_by_service');
select has_view('monitoring', 'partition_health', 'monitoring.partition_health');
select has_view('monitoring', 'partition_children', 'monitoring.partition_children');
select has_view('monitoring', 'partition_maintenance', 'monitoring.partition_maintenance');
select has_view('monitoring', 'cron_job_health', 'monitoring.cron_job_health');
select has_view('monitoring', 'whatsapp_queue_stats', 'monitoring.whatsapp_queue_stats');
select has_view('monitoring', 'message_queue_stats', 'monitoring.message_queue_stats');
select has_view('monitoring', 'background_job_stats', 'monitoring.background_job_stats');
-- Exact, so a table or an uncommented view added to monitoring is noticed here.
select results_eq(
    $$select
            c.relname::text collate "default",
            c.relkind::text,
            coalesce(obj_description(c.oid, 'pg_class'), '') <> ''
        from pg_catalog.pg_class as c
       where c.relnamespace = 'monitoring'::regnamespace
       order by c.relname::text collate "C"$$,
    $$values ('background_job_stats', 'v', true),
             ('cache_stats', 'v', true),
             ('cron_job_health', 'v', true),
             ('event_store_stats', 'v', true),
             ('event_subscription_lag', 'v', true),
             ('feature_flag_answers', 'v', true),
             ('feature_flag_evaluations_by_hour', 'v', true),
             ('feature_flag_overview', 'v', true),
             ('message_queue_stats', 'v', true),
             ('partition_children', 'v', true),
             ('partition_health', 'v', true),
             ('partition_maintenance', 'v', true),
             ('recent_metrics_by_service', 'v', true),
             ('route_cache_stats', 'v', true),
             ('service_health_overview', 'v', true),
             ('transaction_summary', 'v', true),
             ('whatsapp_dead_letters', 'v', true),
             ('whatsapp_queue_stats', 'v', true),
             ('whatsapp_sender_health', 'v', true),
             ('whatsapp_senders', 'v', true),
             ('whatsapp_session_stats', 'v', true)$$,
    'monitoring holds exactly the twenty-one views, each with a comment'
);

-- What analyst may read ---------------------------------------------------------------------------

select results_eq(
    $$select c.relname::text collate "default", a.privilege_type::text
        from pg_catalog.pg_class as c, aclexplode(c.relacl) as a
       where c.relnamespace = 'monitoring'::regnamespace and a.grantee = 'analyst'::regrole
       order by c.relname::text collate "C", a.privilege_type::text collate "C"$$,
    $$values ('background_job_stats', 'SELECT'),
             ('cache_stats', 'SELECT'),
             ('cron_job_health', 'SELECT'),
             ('event_store_stats', 'SELECT'),
             ('event_subscription_lag', 'SELECT'),
             ('feature_flag_answers', 'SELECT'),
             ('feature_flag_evaluations_by_hour', 'SELECT'),
             ('feature_flag_overview', 'SELECT'),
             ('message_queue_stats', 'SELECT'),
             ('partition_children', 'SELECT'),
             ('partition_health', 'SELECT'),
             ('partition_maintenance', 'SELECT'),
             ('recent_metrics_by_service', 'SELECT'),
             ('route_cache_stats', 'SELECT'),
             ('service_health_overview', 'SELECT'),
             ('transaction_summary', 'SELECT'),
             ('whatsapp_dead_letters', 'SELECT'),
             ('whatsapp_queue_stats', 'SELECT'),
             ('whatsapp_sender_health', 'SELECT'),
             ('whatsapp_senders', 'SELECT'),
             ('whatsapp_session_stats', 'SELECT')$$,
    'analyst holds SELECT, and only SELECT, on each monitoring view'
);

select lives_ok(
    $$select tests.as_role('analyst', 'select * from monitoring.recent_metrics_by_service')$$,
    'analyst selects monitoring.recent_metrics_by_service'
);
select lives_ok(
    $$select tests.as_role('analyst', 'select * from monitoring.partition_health')$$,
    'analyst selects monitoring.partition_health'
);
select lives_ok(
    $$select tests.as_role('analyst', 'select * from monitoring.partition_children')$$,
    'analyst selects monitoring.partition_children'
);
select lives_ok(
    $$select tests.as_role('analyst', 'select * from monitoring.partition_maintenance')$$,
    'analyst selects monitoring.partition_maintenance'
);
select lives_ok(
    $$select tests.as_role('analyst', 'select * from monitoring.cron_job_health')$$,
    'analyst selects monitoring.cron_job_health'
);

-- And nothing behind them -------------------------------------------------------------------------

select throws_ok(
    $$select tests.as_role('analyst', 'select * from public.system_metrics')$$,
    '42501',
    'permission denied for table system_metrics',
    'analyst cannot read public.system_metrics'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select * from public.system_audit_logs')$$,
    '42501',
    'permission denied for table system_audit_logs',
    'analyst cannot read public.system_audit_logs'
);
-- The schema refuses before the name is looked up, so first make sure the child is real.
select has_table(
    'partitions'::name,
    ('system_audit_logs_p' || to_char(now(), 'YYYY_MM'))::name,
    'this month''s child of system_audit_logs exists in schema partitions'
);
select throws_ok(
    format(
        $$select tests.as_role('analyst', %L)$$,
        format('select * from partitions.%I', 'system_audit_logs_p' || to_char(now(), 'YYYY_MM'))
    ),
    '42501',
    'permission denied for schema partitions',
    'analyst cannot read a child partition directly'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select * from private.partitioned_tables')$$,
    '42501',
    'permission denied for schema private',
    'analyst cannot read private.partitioned_tables'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select * from private.partition_maintenance_log')$$,
    '42501',
    'permission denied for schema private',
    'analyst cannot read private.partition_maintenance_log'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select * from cron.job')$$,
    '42501',
    'permission denied for schema cron',
    'analyst cannot read cron.job'
);

-- What the refused calls below could have changed, to compare with afterwards.
create temp table before_refusals as
select
    (select count(*) from public.system_metrics) as metrics,
    (select count(*) from public.system_audit_logs) as audit_rows,
    (select count(*) from private.partition_maintenance_log) as maintenance_rows,
    (select count(*) from pg_catalog.pg_inherits) as children,
    (
        select count(*) from pg_catalog.pg_trigger
        where not tgisinternal
    ) as triggers;

select throws_ok(
    $$select tests.as_role(
        'analyst', 'select public.record_metric(''api'', ''latency'', ''probe'', 1, ''ms'', null)'
    )$$,
    '42501',
    'permission denied for function record_metric',
    'analyst cannot call record_metric'
);
select throws_ok(
    $$select tests.as_role(
        'analyst',
        'select public.record_metrics(''[{"service_name": "api", "metric_type": "latency",'
        ' "metric_name": "probe", "value": 1}]'')'
    )$$,
    '42501',
    'permission denied for function record_metrics',
    'analyst cannot call record_metrics'
);
select throws_ok(
    $$select tests.as_role(
        'analyst', 'select public.log_audit_event(''system'', null, ''probe'', ''monitoring'')'
    )$$,
    '42501',
    'permission denied for function log_audit_event',
    'analyst cannot call log_audit_event'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select * from private.maintain_partitions()')$$,
    '42501',
    'permission denied for schema private',
    'analyst cannot call private.maintain_partitions'
);
select throws_ok(
    $$select tests.as_role(
        'analyst', 'select private.enable_audit(''public.system_metrics'')'
    )$$,
    '42501',
    'permission denied for schema private',
    'analyst cannot call private.enable_audit'
);
-- partition_maintenance is a simple view, hence updatable by whoever holds the privilege.
select throws_ok(
    $$select tests.as_role('analyst', 'delete from monitoring.partition_maintenance')$$,
    '42501',
    'permission denied for view partition_maintenance',
    'analyst cannot delete through monitoring.partition_maintenance'
);
select results_eq(
    $$select
        (select count(*) from public.system_metrics),
        (select count(*) from public.system_audit_logs),
        (select count(*) from private.partition_maintenance_log),
        (select count(*) from pg_catalog.pg_inherits),
        (select count(*) from pg_catalog.pg_trigger where not tgisinternal)$$,
    $$select metrics, audit_rows, maintenance_rows, children, triggers from before_refusals$$,
    'the refused calls wrote no metric, audit row, maintenance entry, partition or trigger'
);

-- Schema USAGE is what stops analyst above; these hold even if a grant on a schema slips in.
select is_empty(
    $$select c.oid::regclass::text
        from pg_catalog.pg_class as c
        inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid
       where n.nspname in ('public', 'private', 'partitions', 'counters')
         and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
         and (has_table_privilege('analyst', c.oid, 'select')
              or (c.relkind <> 'S' and has_any_column_privilege('analyst', c.oid, 'select')))$$,
    'analyst may select no table, view or sequence (nor any column) in public, private, '
    || 'partitions, counters'
);
select results_eq(
    $$select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        inner join pg_catalog.pg_namespace as n on p.pronamespace = n.oid
       where n.nspname in ('public', 'private', 'monitoring', 'partitions')
         and has_function_privilege('analyst', p.oid, 'execute')
       order by p.oid::regprocedure::text collate "C"$$,
    $$values ('private.counted_since(text,timestamp with time zone)'),
             ('private.counter_increase(bigint,bigint)'), ('private.counter_value(text)'),
             ('private.counter_value_at(text,timestamp with time zone)'),
             ('private.event_consumer(text,text,integer)'), ('private.partition_children(regclass)'),
             ('private.partition_health()'), ('private.route_profiles()'),
             ('private.settled_position()')$$,
    'analyst may execute only the read-only functions the partition, event store and counter '
    || '(feature flag, cache and route cache) views call'
);

-- Partitions --------------------------------------------------------------------------------------

select results_eq(
    $$select table_name, premake_months, retention_months, default_rows, current_month_ready,
             months_ahead >= 3
        from monitoring.partition_health
       order by table_name collate "C"$$,
    $$values ('public.event_store', 3, null::integer, 0::bigint, true, true),
             ('public.system_audit_logs', 3, null::integer, 0::bigint, true, true),
             ('public.system_metrics', 3, 3, 0::bigint, true, true),
             ('public.transactions', 3, null::integer, 0::bigint, true, true)$$,
    'partition_health: the four managed tables, this month ready, three months ahead, default '
    || 'empty'
);
select results_eq(
    $$select table_name, partitions::bigint
        from monitoring.partition_health
       order by table_name collate "C"$$,
    $$select ('public.' || p.relname) collate "default", count(*)
        from pg_catalog.pg_inherits as i
        inner join pg_catalog.pg_class as p on i.inhparent = p.oid
        inner join pg_catalog.pg_class as c on i.inhrelid = c.oid
       where i.inhparent in ('public.event_store'::regclass,
                             'public.system_audit_logs'::regclass,
                             'public.system_metrics'::regclass,
                             'public.transactions'::regclass)
         and pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
       group by p.relname
       order by p.relname collate "C"$$,
    'partition_health counts each table''s monthly children (the default not among them)'
);
select results_eq(
    $$select table_name collate "default", partition_name::text collate "default", is_default,
             range_from, range_to
        from monitoring.partition_children
       where is_default or range_from = date_trunc('month', now())
       order by table_name collate "C", is_default, partition_name::text collate "C"$$,
    $$values
        ('public.event_store', 'event_store_p' || to_char(now(), 'YYYY_MM'), false,
         date_trunc('month', now()), date_trunc('month', now()) + interval '1 month'),
        ('public.event_store', 'event_store_default', true,
         null::timestamptz, null::timestamptz),
        ('public.system_audit_logs', 'system_audit_logs_p' || to_char(now(), 'YYYY_MM'), false,
         date_trunc('month', now()), date_trunc('month', now()) + interval '1 month'),
        ('public.system_audit_logs', 'system_audit_logs_default', true,
         null::timestamptz, null::timestamptz),
        ('public.system_metrics', 'system_metrics_p' || to_char(now(), 'YYYY_MM'), false,
         date_trunc('month', now()), date_trunc('month', now()) + interval '1 month'),
        ('public.system_metrics', 'system_metrics_default', true,
         null::timestamptz, null::timestamptz),
        ('public.transactions', 'transactions_p' || to_char(now(), 'YYYY_MM'), false,
         date_trunc('month', now()), date_trunc('month', now()) + interval '1 month'),
        ('public.transactions', 'transactions_default', true,
         null::timestamptz, null::timestamptz)$$,
    'partition_children: this month''s child with its bounds, and the unbounded default'
);
-- The migration's own run of the partition manager made this month's children.
select results_eq(
    $$select table_name collate "default", partition_name::text collate "default"
        from monitoring.partition_maintenance
       where action = 'created' and partition_name like '%_p' || to_char(now(), 'YYYY_MM')
       order by table_name collate "C"$$,
    $$values ('public.event_store', 'event_store_p' || to_char(now(), 'YYYY_MM')),
             ('public.system_audit_logs', 'system_audit_logs_p' || to_char(now(), 'YYYY_MM')),
             ('public.system_metrics', 'system_metrics_p' || to_char(now(), 'YYYY_MM')),
             ('public.transactions', 'transactions_p' || to_char(now(), 'YYYY_MM'))$$,
    'partition_maintenance shows the creation of this month''s children'
);

-- Far-future rows have no child and stay in the default partition: what default_rows is for.
insert into public.system_metrics (service_name, metric_type, metric_name, value, created_at)
values
('mon-test-stray', 'gauge', 'far_future', 1, '2100-01-15 00:00+00'),
('mon-test-stray', 'gauge', 'far_future', 2, '2100-02-15 00:00+00'),
-- Last month has no child either; the partition manager will make one and move this row.
('mon-test-stray', 'gauge', 'last_month', 3, date_trunc('month', now()) - interval '15 days');

select results_eq(
    $$select table_name, default_rows from monitoring.partition_health
       order by table_name collate "C"$$,
    $$values ('public.event_store', 0::bigint), ('public.system_audit_logs', 0::bigint),
             ('public.system_metrics', 3::bigint), ('public.transactions', 0::bigint)$$,
    'partition_health counts the rows stuck in each default partition'
);

do $$
begin
    perform private.maintain_partitions();
end;
$$;

select results_eq(
    $$select action, row_count
        from monitoring.partition_maintenance
       where partition_name::text
           = 'system_metrics_p' || to_char(now() - interval '1 month', 'YYYY_MM')
         and action = 'moved'$$,
    $$values ('moved', 1::bigint)$$,
    'partition_maintenance shows last month''s stray moved out of the default partition'
);
select results_eq(
    $$select table_name, default_rows from monitoring.partition_health
       order by table_name collate "C"$$,
    $$values ('public.event_store', 0::bigint), ('public.system_audit_logs', 0::bigint),
             ('public.system_metrics', 2::bigint), ('public.transactions', 0::bigint)$$,
    'after maintenance only the far-future strays remain in the default partition'
);

-- Take away this month's child and the one two months on: the health columns must notice.
do $$
begin
    execute format(
        'alter table public.system_audit_logs detach partition partitions.%I',
        'system_audit_logs_p' || to_char(now(), 'YYYY_MM')
    );
    execute format(
        'alter table public.system_audit_logs detach partition partitions.%I',
        'system_audit_logs_p' || to_char(now() + interval '2 months', 'YYYY_MM')
    );
end;
$$;

select results_eq(
    $$select current_month_ready, months_ahead from monitoring.partition_health
       where table_name = 'public.system_audit_logs'$$,
    $$values (false, 1)$$,
    'partition_health: no child for this month is not ready; a gap two months on leaves 1 ahead'
);

-- recent_metrics_by_service -----------------------------------------------------------------------

-- 1..100 ms over the last 50 minutes, the last at exactly now() (inside the window), then rows
-- that must stay out: at exactly now() - 1 hour, just before it, in the near and far future.
insert into public.system_metrics (
    service_name, metric_type, metric_name, value, unit, created_at
)
select
    'mon-test-api' as service_name,
    'latency' as metric_type,
    'http_request' as metric_name,
    v as value, -- noqa: RF04
    'ms' as unit,
    now() - make_interval(mins => (100 - v) / 2) as created_at
from generate_series(1, 100) as v;
insert into public.system_metrics (
    service_name, metric_type, metric_name, value, unit, created_at
)
values
('mon-test-api', 'latency', 'http_request', 1000, 'ms', now() - interval '1 hour'),
('mon-test-api', 'latency', 'http_request', 2000, 'ms', now() - interval '61 minutes'),
('mon-test-api', 'latency', 'http_request', 3000, 'ms', now() + interval '1 minute'),
('mon-test-api', 'latency', 'http_request', 4000, 'ms', '2100-03-01 00:00+00'),
-- The same metric in another unit is another series.
('mon-test-api', 'latency', 'http_request', 0.5, 's', now() - interval '10 minutes'),
('mon-test-api', 'latency', 'http_request', 1.5, 's', now() - interval '20 minutes'),
-- A null unit is a group of its own.
('mon-test-api', 'counter', 'jobs', 7, null, now() - interval '5 minutes'),
('mon-test-worker', 'memory', 'rss', 400, 'bytes', now() - interval '1 minute'),
('mon-test-worker', 'memory', 'rss', 100, 'bytes', now() - interval '2 minutes'),
('mon-test-worker', 'memory', 'rss', 300, 'bytes', now() - interval '3 minutes'),
('mon-test-worker', 'memory', 'rss', 200, 'bytes', now() - interval '4 minutes'),
-- Only old samples: no row at all.
('mon-test-stale', 'cpu', 'load', 99, 'percent', now() - interval '2 hours');

select results_eq(
    $$select service_name, metric_type, metric_name, unit, sample_count,
             avg_value, min_value, max_value, p50, p95, p99
        from monitoring.recent_metrics_by_service
       where service_name like 'mon-test-%'
       order by service_name collate "C", metric_type collate "C", metric_name collate "C",
                unit collate "C" nulls first$$,
    $$values
        ('mon-test-api', 'counter', 'jobs', null, 1::bigint,
         7::float8, 7::float8, 7::float8, 7::float8, 7::float8, 7::float8),
        ('mon-test-api', 'latency', 'http_request', 'ms', 100::bigint,
         50.5::float8, 1::float8, 100::float8, 50.5::float8, 95.05::float8, 99.01::float8),
        ('mon-test-api', 'latency', 'http_request', 's', 2::bigint,
         1::float8, 0.5::float8, 1.5::float8, 1::float8, 1.45::float8, 1.49::float8),
        ('mon-test-worker', 'memory', 'rss', 'bytes', 4::bigint,
         250::float8, 100::float8, 400::float8, 250::float8, 385::float8, 397::float8)$$,
    'recent_metrics_by_service: count, avg, min, max and continuous percentiles per series'
);
select results_eq(
    $$select first_at, last_at
        from monitoring.recent_metrics_by_service
       where service_name = 'mon-test-api' and unit = 'ms'$$,
    $$values (now() - interval '49 minutes', now())$$,
    'the window is (now() - 1 hour, now()]: rows at its bounds and beyond it are left out'
);
select is_empty(
    $$select * from monitoring.recent_metrics_by_service
       where service_name in ('mon-test-stale', 'mon-test-stray')$$,
    'a series without samples in the last hour has no row'
);

-- analyst's search_path ---------------------------------------------------------------------------

select is(
    (
        select setconfig from pg_catalog.pg_db_role_setting
        where setrole = 'analyst'::regrole and setdatabase = 0
    ),
    array['search_path=monitoring, public'],
    'analyst has search_path monitoring, public in every database'
);

-- pgTAP cannot run as analyst: note what analyst sees through the unqualified name, with the
-- search_path its role setting holds, then compare as postgres.
create temp table seen_by_analyst (
    resolved_as regclass,
    service_name text,
    metric_name text,
    unit text,
    sample_count bigint,
    p95 double precision
);
grant insert on seen_by_analyst to analyst;

do $$
begin
    perform set_config('search_path', substring(c.setting from '^search_path=(.*)$'), true)
    from pg_catalog.pg_db_role_setting as s, unnest(s.setconfig) as c (setting)
    where s.setrole = 'analyst'::regrole and s.setdatabase = 0 and c.setting like 'search_path=%';
end;
$$;
set local role analyst;
insert into seen_by_analyst
select
    to_regclass('recent_metrics_by_service') as resolved_as,
    r.service_name,
    r.metric_name,
    r.unit,
    r.sample_count,
    r.p95
from recent_metrics_by_service as r
where r.service_name like 'mon-test-%';
reset role;
reset search_path;

select results_eq(
    $$select resolved_as, service_name, metric_name, unit, sample_count, p95
        from seen_by_analyst
       order by service_name collate "C", metric_name collate "C", unit collate "C" nulls first$$,
    $$values
        ('monitoring.recent_metrics_by_service'::regclass, 'mon-test-api', 'http_request', 'ms',
         100::bigint, 95.05::float8),
        ('monitoring.recent_metrics_by_service'::regclass, 'mon-test-api', 'http_request', 's',
         2::bigint, 1.45::float8),
        ('monitoring.recent_metrics_by_service'::regclass, 'mon-test-api', 'jobs', null,
         1::bigint, 7::float8),
        ('monitoring.recent_metrics_by_service'::regclass, 'mon-test-worker', 'rss', 'bytes',
         4::bigint, 385::float8)$$,
    'as analyst with its search_path, unqualified recent_metrics_by_service is the monitoring view'
);

-- pg_cron jobs ------------------------------------------------------------------------------------

select results_eq(
    $$select jobname::text collate "default", schedule, command, active, last_run_at,
             runs_24h, failures_24h
        from monitoring.cron_job_health
       where jobname in ('maintain-partitions', 'purge-cron-history')
       order by jobname collate "C"$$,
    $$values
        ('maintain-partitions', '7 * * * *', 'select private.maintain_partitions()', true,
         null::timestamptz, 0::bigint, 0::bigint),
        ('purge-cron-history', '23 3 * * *', 'select private.purge_cron_history()', true,
         null::timestamptz, 0::bigint, 0::bigint)$$,
    'cron_job_health lists both jobs with their schedules, not yet run'
);

-- Runs as pg_cron records them; this clone's jobs are never run by the scheduler.
insert into cron.job_run_details (
    jobid, database, username, command, status, return_message, start_time, end_time
)
select
    j.jobid,
    j.database,
    j.username,
    j.command,
    r.status,
    r.message,
    now() - r.started_ago as start_time,
    now() - r.started_ago + r.took as end_time
from cron.job as j
inner join (
    values
    ('maintain-partitions', 'failed', 'ERROR:  two days ago', interval '2 days', interval '1 s'),
    ('maintain-partitions', 'failed', 'ERROR:  yesterday', interval '25 hours', interval '1 s'),
    ('maintain-partitions', 'failed', 'ERROR:  first', interval '3 hours', interval '2 s'),
    ('maintain-partitions', 'succeeded', 'SELECT 4', interval '2 hours', interval '3 s'),
    ('maintain-partitions', 'failed', 'ERROR:  latest', interval '1 hour', interval '5 s'),
    ('purge-cron-history', 'succeeded', '3 days ago', interval '3 days', interval '1 s'),
    ('purge-cron-history', 'succeeded', 'SELECT 1', interval '10 hours', interval '1 s')
) as r (jobname, status, message, started_ago, took) on j.jobname = r.jobname;

select results_eq(
    $$select jobname::text collate "default", last_status, last_message, last_run_at, last_duration,
             runs_24h, failures_24h
        from monitoring.cron_job_health
       where jobname in ('maintain-partitions', 'purge-cron-history')
       order by jobname collate "C"$$,
    $$values
        ('maintain-partitions', 'failed', 'ERROR:  latest', now() - interval '1 hour',
         interval '5 s', 3::bigint, 2::bigint),
        ('purge-cron-history', 'succeeded', 'SELECT 1', now() - interval '10 hours',
         interval '1 s', 1::bigint, 0::bigint)$$,
    'cron_job_health: the latest run''s status and message, runs and failures of the last 24 h'
);

-- purge_cron_history ------------------------------------------------------------------------------

select is(
    private.purge_cron_history(),
    0::bigint,
    'purge_cron_history keeps 14 days by default: nothing here is that old'
);
select is(
    private.purge_cron_history('1 day'),
    3::bigint,
    'purge_cron_history(1 day) deletes the three runs older than a day and says so'
);
select results_eq(
    $$select return_message from cron.job_run_details order by start_time$$,
    $$values ('SELECT 1'), ('ERROR:  first'), ('SELECT 4'), ('ERROR:  latest')$$,
    'purge_cron_history left every run of the last day'
);
-- pg_cron leaves end_time null on a run a server restart cut short; its start dates it.
insert into cron.job_run_details (jobid, status, return_message, start_time)
select
    jobid,
    'failed' as status,
    'server restarted' as return_message,
    now() - interval '30 days' as start_time
from cron.job
where jobname = 'maintain-partitions';
select is(
    private.purge_cron_history('1 day'),
    1::bigint,
    'purge_cron_history also deletes an old run that never ended'
);

-- schedule_cron -----------------------------------------------------------------------------------

create temp table scheduled as
select
    1 as attempt,
    private.schedule_cron('mon-test-job', '0 1 * * *', 'select 1') as jobid;
insert into scheduled
select
    2 as attempt,
    private.schedule_cron('mon-test-job', '0 2 * * *', 'select 2') as jobid;

select results_eq(
    $$select count(*), count(distinct jobid), count(jobid) from scheduled$$,
    $$values (2::bigint, 1::bigint, 2::bigint)$$,
    'schedule_cron returns the same job id when called again with the same name'
);
select results_eq(
    $$select jobid, schedule, command from cron.job where jobname = 'mon-test-job'$$,
    $$select jobid, '0 2 * * *', 'select 2' from scheduled where attempt = 2$$,
    'schedule_cron leaves one job of that name, with the new schedule and command'
);
select is(
    private.schedule_cron(
        'maintain-partitions', '7 * * * *', 'select private.maintain_partitions()'
    ),
    (
        select jobid from cron.job
        where jobname = 'maintain-partitions'
    ),
    're-applying a file''s schedule_cron keeps the job''s id'
);
select results_eq(
    $$select jobname::text collate "default", count(*) from cron.job
       where jobname in ('maintain-partitions', 'mon-test-job', 'purge-cron-history')
       group by jobname order by jobname collate "C"$$,
    $$values ('maintain-partitions', 1::bigint), ('mon-test-job', 1::bigint),
             ('purge-cron-history', 1::bigint)$$,
    'after the repeated calls each job name appears once'
);

select * from finish();
rollback;

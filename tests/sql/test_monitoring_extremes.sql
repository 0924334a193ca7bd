-- Every view in schema monitoring still answers when the tables it reads hold the most extreme
-- times a timestamptz column can: infinity, -infinity, year 9999, year 1 and the type's own
-- limits, each against now() and against each other. The RPCs refuse such times
-- (private.require_plausible_time), but the owner, a migration or a bug can still write one, and
-- a single row must not take the on-call's view down ("cannot subtract infinite timestamps").
-- Runs as postgres (the owner), past the RPCs and their checks.
begin;
select plan(
    (
        select count(*)::integer from information_schema.views
        where table_schema = 'monitoring'
    ) + 1
);

set local timezone = 'UTC';

create temporary table extremes (at timestamptz not null);
insert into extremes (at) values
('infinity'),
('-infinity'),
('9999-12-31 23:59:59+00'),
('0001-01-01 00:00:00+00'),
('294276-12-31 23:59:59+00'),
('4713-01-01 00:00:00+00 BC'),
(now());

-- Every pair: a row's earlier times (scheduled, enqueued, started) from the first, its later ones
-- (sent, completed, finished) from the second, so each subtraction a view may make meets each
-- extreme on either side, against a finite time and against another extreme.
create temporary table pairs as
select
    row_number() over () as n,
    s.at as started,
    e.at as ended
from extremes as s cross join extremes as e;

-- The tables the views read. A view reading a new table fails the completeness check below
-- until that table gets its rows here (one insert).
create temporary table filled (table_name text primary key);

insert into public.users (id, phone_number) values
('7d8e9f00-0000-4000-8000-000000000001', '+250788000001');

insert into public.whatsapp_message_queue (
    recipient_phone, message_type, payload, status, attempts, visible_at, scheduled_at,
    enqueued_at, claimed_at, sent_at, finished_at
)
select
    '+250788000001', 'text', '{"body": "x"}', s.status, 1, p.ended, p.started, p.started,
    p.started, p.ended, p.ended
from pairs as p
cross join (
    values ('pending'), ('sent'), ('failed'), ('dead'), ('unconfirmed'), ('cancelled')
) as s (status);
insert into filled values ('public.whatsapp_message_queue');

insert into private.whatsapp_senders (
    worker_id, host, pid, provider, stale_after_s, started_at, last_heartbeat_at, last_claim_at,
    last_sent_at, stopped_at
)
select
    'extremes:' || p.n, 'host', 1, 'meta', 40, p.started, p.ended, p.started, p.ended,
    case when p.n % 2 = 0 then p.ended end
from pairs as p;
insert into filled values ('private.whatsapp_senders');

insert into public.service_registry (
    service_name, instance_id, service_type, version, status, dependencies, last_heartbeat_at,
    registered_at, updated_at
)
select
    'extremes-' || (p.n % 3), 'i' || p.n, 'worker', 'v' || (p.n % 2), s.status,
    array['extremes-' || ((p.n + 1) % 3), 'absent'], p.ended, p.started, p.ended
from pairs as p
cross join (values ('healthy'), ('stopped')) as s (status)
on conflict do nothing;
insert into filled values ('public.service_registry');

insert into private.whatsapp_dead_letters (
    provider, kind, reason, detail, raw, fingerprint, received_at, last_seen_at, resolution,
    resolved_at
)
select
    'meta', 'message', 'invalid_payload', 'extremes', '{}', sha256(convert_to(p.n || coalesce(r.resolution, ''), 'UTF8')),
    p.started, p.ended, r.resolution, case when r.resolution is not null then p.ended end
from pairs as p
cross join (values (null), ('discarded')) as r (resolution);
insert into filled values ('private.whatsapp_dead_letters');

insert into public.feature_flag_evaluations (flag_key, environment, subject, enabled, since,
    first_evaluated_at)
select 'extremes', 'production', 'subject-' || p.n, p.n % 2 = 0, p.ended, p.started
from pairs as p;
insert into filled values ('public.feature_flag_evaluations');

insert into public.feature_flags (key, name, created_at, updated_at)
select 'extremes-' || p.n, 'x', p.started, p.ended
from pairs as p;
insert into filled values ('public.feature_flags');

insert into public.cache_entries (key, value, cache_type, expires_at, created_at, updated_at)
select 'extremes:' || p.n, '{}', 'extremes-' || (p.n % 3), p.ended, p.started, p.ended
from pairs as p;
insert into filled values ('public.cache_entries');

insert into private.cache_types (cache_type, counter, created_at)
select 'extremes-' || g, private.cache_counter('extremes-' || g), e.at
from generate_series(0, 2) as g
inner join (select row_number() over () - 1 as g, at from extremes) as e using (g);
insert into filled values ('private.cache_types');

insert into public.message_queue (
    queue_name, message_type, status, attempts, visible_at, scheduled_at, enqueued_at,
    claimed_at, dead_at
)
select 'extremes', 'x', s.status, 1, p.ended, p.started, p.started, p.started, p.ended
from pairs as p
cross join (values ('pending'), ('dead')) as s (status);
insert into filled values ('public.message_queue');

insert into public.message_queue_completed (
    id, queue_name, message_type, priority, attempts, enqueued_at, scheduled_at, claimed_at,
    completed_at
)
select -p.n, 'extremes', 'x', 5, 1, p.started, p.started, p.started, p.ended
from pairs as p;
insert into filled values ('public.message_queue_completed');

insert into public.background_jobs (
    job_type, status, attempts, scheduled_at, run_at, started_at, timeout_at, completed_at,
    created_at, updated_at
)
select 'extremes', s.status, 1, p.started, p.started, p.started, p.ended, p.ended, p.started,
    p.ended
from pairs as p
cross join (
    values ('pending'), ('running'), ('completed'), ('failed'), ('cancelled'), ('timeout')
) as s (status);
insert into filled values ('public.background_jobs');

-- Partitioned by created_at: infinite and far times land in the default partition.
insert into public.system_metrics (service_name, metric_type, metric_name, value, created_at)
select 'extremes', 'gauge', 'x', 1, e.at from extremes as e;
insert into filled values ('public.system_metrics');

insert into public.transactions (
    reference, user_id, type, amount, currency, status, created_at, updated_at, completed_at
)
select
    'TXN-EXTREME-' || p.n, '7d8e9f00-0000-4000-8000-000000000001', 'credit', 1, 'RWF',
    s.status, p.started, p.ended, case when s.status = 'completed' then p.ended end
from pairs as p
cross join (values ('pending'), ('completed'), ('failed')) as s (status);
insert into filled values ('public.transactions');

insert into private.partition_maintenance_log (
    schema_name, table_name, partition_name, action, created_at
)
select 'public', 'system_metrics', 'system_metrics_default', 'moved', e.at from extremes as e;
insert into filled values ('private.partition_maintenance_log');

-- Partitioned by created_at like system_metrics; at positions of a long-ended transaction, so the
-- lag view counts them as settled and unread.
insert into public.event_store (
    event_id, aggregate_type, aggregate_id, event_type, version, global_position, payload, actor,
    created_at
)
select
    gen_random_uuid(), 'extremes', 'aggregate-' || e.n, 'extremes.happened', 1,
    private.event_position('3', e.n), '{}', 'database:postgres', e.at
from (select row_number() over () as n, x.at from extremes as x) as e;
insert into filled values ('public.event_store');

insert into public.event_subscriptions (
    name, consumer_index, consumer_count, position, created_at, updated_at
)
select 'extremes-' || p.n || '-' || c.size, c.consumer, c.size, 0, p.started, p.ended
from pairs as p
cross join (values (0, 1), (0, 2), (1, 2)) as c (consumer, size);
insert into filled values ('public.event_subscriptions');

insert into public.whatsapp_sessions (
    phone_number, status, last_message_at, message_count, error_count, last_heartbeat_at,
    created_at, updated_at
)
select
    '+25078' || s.prefix || lpad(p.n::text, 5, '0'), s.status, p.started, 3, 1, p.ended,
    p.started, p.ended
from pairs as p
cross join (values ('active', '2'), ('inactive', '3')) as s (status, prefix);
insert into filled values ('public.whatsapp_sessions');

-- A route expires after it was made (the table's check): only the pairs in that order.
insert into public.routes (
    profile, origin, destination, encoded_polyline, distance_meters, duration_seconds,
    created_at, expires_at
)
select
    'driving', 'SRID=4326;POINT(30.06 -1.95)', 'SRID=4326;POINT(30.07 -1.96)',
    'nz{J_bnvDf^g^f^g^', 1850, 420, p.started, p.ended
from pairs as p
where p.ended > p.started;
insert into filled values ('public.routes');

-- Every counter's samples at every time (the flags', the cache types' and the profiles'), and a
-- sample above the counter's value (read back as a negative count).
insert into private.counter_samples (counter, sampled_at, value)
select c.counter, s.at, 5
from (
    select 'feature_flag_' || f.id || '_evaluations' as counter from public.feature_flags as f
    union all
    select 'feature_flag_' || f.id || '_evaluations_on' from public.feature_flags as f
    union all
    select 'cache_hits_' || t.counter from private.cache_types as t
    union all
    select 'cache_misses_' || t.counter from private.cache_types as t
    union all
    select 'route_cache_' || p.profile || '_hits' from unnest(private.route_profiles()) as p (profile)
    union all
    select 'route_cache_' || p.profile || '_misses'
    from unnest(private.route_profiles()) as p (profile)
) as c
cross join (
    select p.started as at from pairs as p
    union
    select p.ended from pairs as p
) as s;
insert into filled values ('private.counter_samples');

insert into cron.job_run_details (jobid, runid, status, start_time, end_time)
select (select min(j.jobid) from cron.job as j), -p.n, 'failed', p.started, p.ended
from pairs as p;
insert into filled values ('cron.job_run_details');
-- Read, not given times: cron.job has none; the pause row and the partition manager's own rows
-- hold one time each, set to each extreme in turn below; monitoring.whatsapp_senders is a view
-- over the senders filled above.
insert into filled values ('cron.job'), ('private.partitioned_tables'),
('private.whatsapp_sender_pause'), ('monitoring.whatsapp_senders');
insert into private.whatsapp_sender_pause (reason) values ('extremes');

select is(
    array(
        select distinct u.table_schema || '.' || u.table_name
        from information_schema.view_table_usage as u
        where u.view_schema = 'monitoring'
        except
        select f.table_name from filled as f
        order by 1
    ),
    '{}'::text [],
    'every table a monitoring view reads is given extreme times here'
);

-- The first error selecting every column of p_view, with the one-time rows at each extreme in
-- turn; null when it answers every time.
create function pg_temp.first_failure(p_view text)
returns text
language plpgsql
as $$
declare
    v_at timestamptz;
begin
    for v_at in select e.at from extremes as e loop
        update private.partitioned_tables set last_maintained_at = v_at;
        update private.whatsapp_sender_pause set paused_at = v_at;
        begin
            execute format('select count(pg_catalog.to_jsonb(v)) from %s as v', p_view);
        exception when others then
            return format('with %s: %s %s', v_at, sqlstate, sqlerrm);
        end;
    end loop;
    return null;
end;
$$;

select is(
    pg_temp.first_failure(format('%I.%I', v.table_schema, v.table_name)),
    null,
    format('monitoring.%s answers with extreme times in its tables', v.table_name)
)
from information_schema.views as v
where v.table_schema = 'monitoring'
order by v.table_name;

select * from finish();
rollback;

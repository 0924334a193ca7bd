-- The service registry: every running instance of a service says what it is, where it answers
-- and that it is alive, so discovery and on-call read one table. Heartbeats are frequent and
-- must stay cheap: the table leaves room on each page (fillfactor) and no index covers a column
-- a heartbeat writes (last_heartbeat_at, metrics), so a heartbeat is a HOT update. Functions,
-- policies, the sweep job and the monitoring view are in
-- supabase/functions-sql/80_service_registry.sql.

-- The bounds are domains, not table checks: Postgres evaluates every check constraint of a
-- table on every update (and reads each one's expression again for every statement), which
-- more than halved the heartbeat's rate; a domain is checked only where a value is assigned, so
-- a heartbeat checks the metrics it writes and nothing else.
create domain public.service_registry_name as text
check (char_length(value) between 1 and 100);
comment on domain public.service_registry_name is
'A service''s name in the service registry: 1 to 100 characters.';
create domain public.service_registry_instance as text
check (char_length(value) between 1 and 200);
comment on domain public.service_registry_instance is
'An instance id in the service registry: 1 to 200 characters.';
create domain public.service_registry_label as text
check (char_length(value) between 1 and 50);
comment on domain public.service_registry_label is
'A service type or version in the service registry: 1 to 50 characters.';
create domain public.service_registry_url as text
check (char_length(value) between 1 and 2048);
comment on domain public.service_registry_url is
'An endpoint or health check URL in the service registry: 1 to 2048 characters.';
-- The RPCs bound JSON as text (8192 bytes); the domains bound its stored size, which costs
-- nothing to read, where rendering the text would cost every heartbeat.
create domain public.service_registry_capabilities as jsonb
check (jsonb_typeof(value) in ('array', 'object') and pg_column_size(value) <= 16384);
comment on domain public.service_registry_capabilities is
'Capability names: a JSON array of strings, or an object whose keys are the names; at most 16 '
'KiB stored.';
create domain public.service_registry_dependencies as text[]
check (cardinality(value) <= 50 and array_position(value, null) is null);
comment on domain public.service_registry_dependencies is
'Names of the services a service needs: at most 50, none null.';
create domain public.service_registry_status as text
check (value in ('healthy', 'unhealthy', 'starting', 'stopping', 'stopped'));
comment on domain public.service_registry_status is
'An instance''s status: healthy, unhealthy, starting, stopping or stopped.';
create domain public.service_registry_metrics as jsonb
check (jsonb_typeof(value) = 'object' and pg_column_size(value) <= 16384);
comment on domain public.service_registry_metrics is
'What an instance reported with its last heartbeat: a JSON object, at most 16 KiB stored.';
create domain public.service_registry_interval as integer
check (value between 1 and 3600);
comment on domain public.service_registry_interval is
'How often an instance promises to heartbeat, in seconds: 1 to 3600.';

create table public.service_registry (
    service_name public.service_registry_name not null,
    instance_id public.service_registry_instance not null default 'default',
    service_type public.service_registry_label not null,
    version public.service_registry_label not null, -- noqa: RF04
    endpoint public.service_registry_url,
    health_check_url public.service_registry_url,
    capabilities public.service_registry_capabilities not null default '[]',
    -- They need not be registered (the overview says so).
    dependencies public.service_registry_dependencies not null default '{}', -- noqa: RF04
    status public.service_registry_status not null default 'starting', -- noqa: RF04
    -- Every time is the database's clock, never the instance's.
    last_heartbeat_at timestamptz not null default now(),
    metrics public.service_registry_metrics not null default '{}',
    heartbeat_interval_seconds public.service_registry_interval not null default 10,
    registered_at timestamptz not null default now(),
    -- When the registration or the status last changed; a heartbeat alone leaves it.
    updated_at timestamptz not null default now(),
    constraint service_registry_pkey primary key (service_name, instance_id)
)
-- Half of each page free: a heartbeat's new row version fits beside the old one (HOT), and
-- the table is a few hundred rows, so the space costs nothing.
with (fillfactor = 50);
comment on table public.service_registry is
'One row per running service instance (service_name, instance_id): what it is (type, version, '
'capabilities, dependencies), where it answers (endpoint, health_check_url), its status and '
'its last heartbeat with the metrics it reported. Written by register_service and '
'service_heartbeat (service_role) and by the sweep job; no API role reads it directly.';
comment on column public.service_registry.heartbeat_interval_seconds is
'The instance''s promise: it heartbeats at least this often. Three intervals missed and the '
'sweep job marks it unhealthy; silent for a day and it is removed.';

-- Each status change, for "when did it go unhealthy, and why". Rows outlive the instance.
create table private.service_status_changes (
    id bigint generated always as identity primary key,
    service_name text not null,
    instance_id text not null,
    -- Null when the change is the instance's first registration.
    old_status text,
    new_status text not null,
    reason text not null, -- noqa: RF04
    changed_at timestamptz not null default now(),
    constraint service_status_changes_reason_known check (
        reason in ('register', 'heartbeat', 'missed_heartbeats')
    )
);
comment on table private.service_status_changes is
'Every status change of a registered instance: from, to, why (register, heartbeat or '
'missed_heartbeats) and when. Written by private.record_service_status_change only; kept 30 '
'days.';
create index service_status_changes_instance_idx
on private.service_status_changes (service_name, instance_id, changed_at);
create index service_status_changes_changed_at_idx
on private.service_status_changes (changed_at);
alter table private.service_status_changes enable row level security;
revoke all on private.service_status_changes from public, anon, authenticated, service_role;

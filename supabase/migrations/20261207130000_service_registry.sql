-- The service registry: every running instance of a service says what it is, where it answers
-- and that it is alive, so discovery and on-call read one table. Heartbeats are frequent and
-- must stay cheap: the table leaves room on each page (fillfactor) and no index covers a column
-- a heartbeat writes (last_heartbeat_at, metrics), so a heartbeat is a HOT update. Functions,
-- policies, the sweep job and the monitoring view are in
-- supabase/functions-sql/80_service_registry.sql.

create table public.service_registry (
    service_name text not null,
    instance_id text not null default 'default',
    service_type text not null,
    version text not null, -- noqa: RF04
    endpoint text,
    health_check_url text,
    -- Capability names: an array of strings, or an object whose keys are the names.
    capabilities jsonb not null default '[]',
    -- Names of the services this one needs; they need not be registered (the overview says so).
    dependencies text[] not null default '{}', -- noqa: RF04
    status text not null default 'starting', -- noqa: RF04
    -- Every time is the database's clock, never the instance's.
    last_heartbeat_at timestamptz not null default now(),
    metrics jsonb not null default '{}',
    heartbeat_interval_seconds integer not null default 10,
    registered_at timestamptz not null default now(),
    -- When the registration or the status last changed; a heartbeat alone leaves it.
    updated_at timestamptz not null default now(),
    constraint service_registry_pkey primary key (service_name, instance_id),
    constraint service_registry_service_name_length check (
        char_length(service_name) between 1 and 100
    ),
    constraint service_registry_instance_id_length check (
        char_length(instance_id) between 1 and 200
    ),
    constraint service_registry_service_type_length check (
        char_length(service_type) between 1 and 50
    ),
    constraint service_registry_version_length check (char_length(version) between 1 and 50),
    constraint service_registry_endpoint_length check (char_length(endpoint) between 1 and 2048),
    constraint service_registry_health_check_url_length check (
        char_length(health_check_url) between 1 and 2048
    ),
    constraint service_registry_capabilities_shape check (
        jsonb_typeof(capabilities) in ('array', 'object')
        and octet_length(capabilities::text) <= 8192
    ),
    constraint service_registry_dependencies_size check (
        cardinality(dependencies) <= 50 and array_position(dependencies, null) is null
    ),
    constraint service_registry_status_known check (
        status in ('healthy', 'unhealthy', 'starting', 'stopping', 'stopped')
    ),
    constraint service_registry_metrics_shape check (
        jsonb_typeof(metrics) = 'object' and octet_length(metrics::text) <= 8192
    ),
    constraint service_registry_heartbeat_interval_range check (
        heartbeat_interval_seconds between 1 and 3600
    )
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

-- System observability: the partition manager's registry, system_metrics and system_audit_logs.
-- Functions, policies, triggers, views and cron jobs for them are in supabase/functions-sql/.

-- The partition manager ---------------------------------------------------------------------------

-- Names rather than a regclass column: pg_upgrade refuses user tables that hold reg* types.
create table private.partitioned_tables (
    schema_name name not null,
    table_name name not null,
    premake_months integer not null default 3,
    retention_months integer,
    last_maintained_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (schema_name, table_name),
    constraint partitioned_tables_premake_range check (premake_months between 0 and 36),
    -- Room for the children's _pYYYY_MM within Postgres' 63-character names.
    constraint partitioned_tables_table_name_length check (char_length(table_name) <= 55),
    constraint partitioned_tables_retention_positive check (retention_months > 0)
);
comment on table private.partitioned_tables is
'Tables partitioned monthly on created_at (UTC) that private.maintain_partitions() looks after: '
'premake_months children are made ahead of the current month; children whose month ended more '
'than retention_months ago are dropped (null keeps every month).';

create table private.partition_maintenance_log (
    id bigint generated always as identity primary key,
    schema_name name not null,
    table_name name not null,
    partition_name name,
    action text not null, -- noqa: RF04
    row_count bigint,
    detail text,
    created_at timestamptz not null default now(),
    constraint partition_maintenance_log_action_known
    check (action in ('created', 'moved', 'dropped', 'purged', 'failed')),
    constraint partition_maintenance_log_partition_named check (
        (partition_name is null) = (action = 'failed')
    )
);
comment on table private.partition_maintenance_log is
'What private.maintain_partitions() did: children created (row_count: the rows they start with), '
'stray rows moved out of the default partition into their month, children dropped past '
'retention (row_count: the planner''s estimate), strays past retention purged, and a table it '
'failed to maintain (detail: the error; the other tables are maintained all the same).';

-- Transactions of the partition manager that are moving rows between partitions, so that the
-- audit and append-only triggers let those moves through. A table, not a setting: only the
-- owner can write it, while any role can set a setting.
create table private.partition_moves (
    txid bigint primary key
);
comment on table private.partition_moves is
'Transactions in which private.maintain_partitions() is moving rows between partitions; a row '
'lives only inside its own transaction.';
create index partition_maintenance_log_created_at on private.partition_maintenance_log
using brin (created_at);

-- system_metrics ---------------------------------------------------------------------------------

create table public.system_metrics (
    id bigint generated always as identity,
    service_name text not null,
    metric_type text not null,
    metric_name text not null,
    value double precision not null, -- noqa: RF04
    unit text,
    tags jsonb not null default '{}',
    created_at timestamptz not null default now(),
    primary key (id, created_at),
    constraint system_metrics_metric_type_known check (
        metric_type in (
            'latency', 'error_rate', 'throughput', 'memory', 'cpu', 'counter', 'gauge'
        )
    ),
    constraint system_metrics_service_name_length check (
        char_length(service_name) between 1 and 100
    ),
    constraint system_metrics_metric_name_length check (
        char_length(metric_name) between 1 and 200
    ),
    constraint system_metrics_value_finite check (
        value not in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)
    ),
    constraint system_metrics_unit_length check (char_length(unit) between 1 and 32),
    constraint system_metrics_tags_object check (jsonb_typeof(tags) = 'object')
) partition by range (created_at);
comment on table public.system_metrics is
'Time series from every service: one sample per row, written through record_metric(s). '
'Partitioned monthly on created_at (children in schema partitions); read by analysts through '
'monitoring.recent_metrics_by_service.';

-- Metrics arrive in time order, so a BRIN index finds a time range for a fraction of a btree's
-- cost on insert; the btree serves one service's series.
create index system_metrics_created_at on public.system_metrics using brin (created_at);
create index system_metrics_service_metric on public.system_metrics (
    service_name, metric_name, created_at
);

create table partitions.system_metrics_default partition of public.system_metrics default;
comment on table partitions.system_metrics_default is
'Rows whose month has no child yet; private.maintain_partitions() moves them out.';

alter table public.system_metrics enable row level security;
alter table partitions.system_metrics_default enable row level security;
revoke all on public.system_metrics from anon, authenticated, service_role;
grant select, insert on public.system_metrics to service_role;

-- system_audit_logs ------------------------------------------------------------------------------

create table public.system_audit_logs (
    id bigint generated always as identity,
    actor_type text not null,
    actor_identifier text,
    action text not null, -- noqa: RF04
    resource_type text not null,
    resource_id text,
    old_data jsonb,
    new_data jsonb,
    changed_keys text[],
    metadata jsonb not null default '{}',
    correlation_id text,
    txid bigint not null default txid_current(),
    created_at timestamptz not null default now(),
    primary key (id, created_at),
    constraint system_audit_logs_actor_type_known check (
        actor_type in ('user', 'service', 'system', 'admin', 'anonymous', 'database')
    ),
    constraint system_audit_logs_action_length check (char_length(action) between 1 and 100),
    constraint system_audit_logs_resource_type_length check (
        char_length(resource_type) between 1 and 100
    ),
    constraint system_audit_logs_metadata_object check (jsonb_typeof(metadata) = 'object')
) partition by range (created_at);
comment on table public.system_audit_logs is
'Append-only audit trail: events services log through log_audit_event and row changes recorded '
'by private.audit_row() on tables that opted in with private.enable_audit(). Partitioned '
'monthly on created_at; no role may update or delete a row.';
comment on column public.system_audit_logs.actor_identifier is
'The user id (auth.uid()) when actor_type is user; else a service, operator or database role.';
comment on column public.system_audit_logs.changed_keys is
'For updates, the columns whose value changed (redacted ones included); null otherwise.';
comment on column public.system_audit_logs.txid is
'The writing transaction (txid_current()): rows of one transaction share it.';

create index system_audit_logs_created_at on public.system_audit_logs using brin (created_at);
create index system_audit_logs_resource on public.system_audit_logs (
    resource_type, resource_id, created_at
);
-- What the authenticated policy filters on: a user's own events.
create index system_audit_logs_actor on public.system_audit_logs (
    actor_identifier, created_at
) where actor_type = 'user';
create index system_audit_logs_correlation on public.system_audit_logs (correlation_id)
where correlation_id is not null;

create table partitions.system_audit_logs_default partition of public.system_audit_logs default;
comment on table partitions.system_audit_logs_default is
'Rows whose month has no child yet; private.maintain_partitions() moves them out.';

alter table public.system_audit_logs enable row level security;
alter table partitions.system_audit_logs_default enable row level security;
-- Append-only: not even service_role may update, delete or truncate (a trigger refuses the owner).
revoke all on public.system_audit_logs from anon, authenticated, service_role;
grant select, insert on public.system_audit_logs to service_role;
grant select on public.system_audit_logs to authenticated;

-- Both tables under the partition manager: metrics for three months, audit for good.
insert into private.partitioned_tables (schema_name, table_name, premake_months, retention_months)
values
('public', 'system_metrics', 3, 3),
('public', 'system_audit_logs', 3, null);

-- Monitoring first, so the seed's unqualified view names work for a session of this role; an
-- analyst's own login role needs the same setting (members do not inherit it; see README).
alter role analyst set search_path to monitoring, public;

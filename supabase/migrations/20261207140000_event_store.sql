-- The event store (seed migration 5): events of trips, orders, wallets and users, appended
-- per aggregate with optimistic concurrency and read back per aggregate or in one global order
-- that no reader can skip. Functions, views and grants are in functions-sql's event store file.

create table public.event_store (
    event_id uuid not null,
    aggregate_type text not null,
    aggregate_id text not null,
    event_type text not null,
    version bigint not null, -- noqa: RF04
    -- The writing transaction's id times 2^20 plus the event's rank in it: positions below the
    -- oldest transaction still running are final (see private.settled_position).
    global_position bigint not null,
    payload jsonb not null,
    metadata jsonb not null default '{}',
    correlation_id text,
    causation_id text,
    actor text not null,
    created_at timestamptz not null default now(),
    -- A position is unique by itself; the key needs the partition column.
    primary key (global_position, created_at),
    constraint event_store_aggregate_type_length check (
        char_length(aggregate_type) between 1 and 200
    ),
    constraint event_store_aggregate_id_length check (char_length(aggregate_id) between 1 and 200),
    constraint event_store_event_type_length check (char_length(event_type) between 1 and 200),
    constraint event_store_version_positive check (version > 0),
    constraint event_store_payload_object check (jsonb_typeof(payload) = 'object'),
    constraint event_store_metadata_object check (jsonb_typeof(metadata) = 'object')
) partition by range (created_at);
comment on table public.event_store is
'Every event of every aggregate, appended by append_event and append_events and never changed: '
'version counts 1, 2, 3... per aggregate (unique through private.event_streams), '
'global_position orders all events so that a reader polling after the last position it saw '
'misses none (read_all_events). Partitioned monthly on created_at, kept for good. Only '
'service_role reads it; analysts see monitoring.event_store_stats.';
comment on column public.event_store.actor is
'Who appended it, from the JWT claims as the audit log names actors: user:<sub>, '
'service:<sub or service_role>, anonymous: or database:<role>.';

-- Per partition (the global order reads the primary key's); the aggregate's stream row bounds
-- created_at, so a read visits only the months the aggregate has events in.
create index event_store_aggregate on public.event_store (aggregate_type, aggregate_id, version);

create table partitions.event_store_default partition of public.event_store default;
comment on table partitions.event_store_default is
'Rows whose month has no child yet; private.maintain_partitions() moves them out.';

alter table public.event_store enable row level security;
alter table partitions.event_store_default enable row level security;
revoke all on public.event_store from anon, authenticated, service_role;
revoke all on partitions.event_store_default from public, anon, authenticated, service_role;
grant select on public.event_store to service_role;

insert into private.partitioned_tables (schema_name, table_name, premake_months, retention_months)
values ('public', 'event_store', 3, null);

-- One row per aggregate, unpartitioned: its version and last position, moved only by the
-- holder of the aggregate's append lock, and the first and last created_at that find the
-- partitions its events are in.
create table private.event_streams (
    aggregate_type text not null,
    aggregate_id text not null,
    version bigint not null, -- noqa: RF04
    last_position bigint not null,
    first_event_at timestamptz not null,
    last_event_at timestamptz not null,
    primary key (aggregate_type, aggregate_id),
    constraint event_streams_version_positive check (version > 0)
) with (fillfactor = 70);
comment on table private.event_streams is
'Each aggregate''s current version, the global_position of its last event and the created_at '
'of its first and last events. Only the holder of the aggregate''s append lock (an advisory '
'lock, see private.append_to_stream) moves them, so versions are unique and positions rise with '
'them.';

-- Every event id, unpartitioned, so that an id is unique across months and a retried append
-- finds the answer it was given.
create table private.event_ids (
    event_id uuid primary key,
    aggregate_type text not null,
    aggregate_id text not null,
    -- With created_at, finds the event (and its version) in its partition.
    global_position bigint not null,
    -- md5 of the aggregate, event type and payload: the same id with other content is refused.
    digest uuid not null,
    created_at timestamptz not null
);
comment on table private.event_ids is
'Every event''s id with its aggregate, position, a digest of what was appended and its '
'created_at (its partition). Unique across partitions where public.event_store cannot be.';

create table public.event_snapshots (
    aggregate_type text not null,
    aggregate_id text not null,
    version bigint not null, -- noqa: RF04
    state jsonb not null,
    created_at timestamptz not null default now(),
    primary key (aggregate_type, aggregate_id),
    constraint event_snapshots_version_positive check (version > 0),
    constraint event_snapshots_state_object check (jsonb_typeof(state) = 'object')
);
comment on table public.event_snapshots is
'The latest snapshot of an aggregate''s state, as of version, saved by save_snapshot; '
'load_aggregate returns it with the events after it.';
alter table public.event_snapshots enable row level security;
revoke all on public.event_snapshots from anon, authenticated, service_role;
grant select on public.event_snapshots to service_role;

create table public.event_subscriptions (
    name text not null, -- noqa: RF04
    consumer_index integer not null default 0,
    consumer_count integer not null default 1,
    position bigint not null default 0, -- noqa: RF04
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (name, consumer_index),
    constraint event_subscriptions_name_length check (char_length(name) between 1 and 200),
    constraint event_subscriptions_consumer check (
        consumer_count between 1 and 1000 and consumer_index between 0 and consumer_count - 1
    ),
    constraint event_subscriptions_position_not_negative check (position >= 0)
);
comment on table public.event_subscriptions is
'Where each subscription (and each consumer of a consumer group) has read up to: the '
'global_position it acknowledged last, moved forward only by ack_subscription.';
alter table public.event_subscriptions enable row level security;
revoke all on public.event_subscriptions from anon, authenticated, service_role;
grant select on public.event_subscriptions to service_role;

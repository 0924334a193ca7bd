-- The general cache (seed migration 6): key-value entries with a time to live and tags, for
-- answers that are expensive to compute or paid per call. Functions, the cleanup and sampling
-- jobs and the monitoring view are in supabase/functions-sql/91_cache.sql.

-- UNLOGGED: a cache may be lost, and is lost only on a crash (or a failover: unlogged tables are
-- not replicated), after which every get_cache is a miss until callers set the entries again.
-- What it buys, measured by bench/cache.py (fsync and synchronous_commit on): set_cache writes
-- no WAL and its commit waits for no flush. An entry is never returned past its expiry or after
-- its tag's invalidation either way: get_cache compares expires_at with the clock on every read
-- and invalidation deletes in one statement; losing the table only loses entries.
create unlogged table public.cache_entries (
    key text primary key, -- noqa: RF04
    value jsonb not null, -- noqa: RF04
    cache_type text not null default 'general',
    tags text[] not null default '{}',
    expires_at timestamptz not null,
    -- The type's hit counter (a sequence), kept with the entry so that a hit names it without
    -- a lookup; null for an entry not written by set_cache (its hits are counted by name).
    hit_counter regclass,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint cache_entries_key_length check (char_length(key) between 1 and 512),
    constraint cache_entries_cache_type_length check (char_length(cache_type) between 1 and 100),
    constraint cache_entries_tags_bounded check (
        cardinality(tags) <= 20 and array_position(tags, null) is null
    )
);
comment on table public.cache_entries is
'The general cache: one entry per key, its JSON value, its cache type (for monitoring), its tags '
'(invalidate_cache_by_tag deletes every entry with one) and when it expires. UNLOGGED: emptied '
'by a crash, which a cache may be. Written by set_cache, read by get_cache (never past '
'expires_at), emptied of expired entries by cleanup_expired_cache every 5 minutes. No API role '
'reads it directly.';
comment on column public.cache_entries.expires_at is
'After this the entry is never returned, whether or not the cleanup has deleted it yet.';
comment on column public.cache_entries.tags is
'Labels shared by entries that go stale together (a user, a route, a price list): at most 20, '
'each 1 to 100 characters as set_cache takes them.';
comment on column public.cache_entries.updated_at is
'When set_cache last wrote the entry (no trigger keeps it: the table''s only writer sets it).';

create index cache_entries_tags on public.cache_entries using gin (tags);
-- The cleanup's batches: each reads only expired entries, however large the cache.
create index cache_entries_expires_at on public.cache_entries (expires_at);

alter table public.cache_entries enable row level security;
revoke all on public.cache_entries from public, anon, authenticated, service_role;

-- Hits and misses are counted on two sequences per cache type (nextval writes no row and takes
-- no row lock, so readers never wait on each other); set_cache makes them with the type's first
-- entry and records the type here. The sampling job copies the counters into
-- private.cache_counter_samples every 5 minutes; an hour's count is the difference of two.
create table private.cache_types (
    cache_type text primary key,
    -- The counters' names end with it: private.cache_hits_<counter> and
    -- private.cache_misses_<counter>.
    counter text not null unique,
    created_at timestamptz not null default now(),
    constraint cache_types_cache_type_length check (char_length(cache_type) between 1 and 100)
);
comment on table private.cache_types is
'Every cache type set_cache has stored an entry of, and the suffix of its two counter sequences '
'(private.cache_hits_<counter>, private.cache_misses_<counter>).';

create table private.cache_counter_samples (
    cache_type text not null,
    sampled_at timestamptz not null default now(),
    hits bigint not null,
    misses bigint not null,
    primary key (cache_type, sampled_at),
    constraint cache_counter_samples_positive check (hits >= 0 and misses >= 0)
);
comment on table private.cache_counter_samples is
'Samples of each cache type''s hit and miss counters (cumulative since the type''s first entry), '
'every 5 minutes by the sample-cache-counts job; kept 2 days.';

alter table private.cache_types enable row level security;
alter table private.cache_counter_samples enable row level security;
revoke all on private.cache_types from public, anon, authenticated, service_role;
revoke all on private.cache_counter_samples from public, anon, authenticated, service_role;

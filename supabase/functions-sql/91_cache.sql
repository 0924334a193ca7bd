-- The general cache: set_cache, get_cache, invalidate_cache_by_tag and cleanup_expired_cache
-- (service_role only), the counters of hits and misses per cache type, the cleanup and sampling
-- jobs, and monitoring.cache_stats.

-- Counters ----------------------------------------------------------------------------------------

create or replace function private.cache_counter(p_cache_type text)
returns text
language sql
immutable
set search_path = ''
-- Cache types are free text; sequence names are at most 63 bytes: the type's md5 names them.
return pg_catalog.left(pg_catalog.md5(p_cache_type), 16);
comment on function private.cache_counter(text) is
'The suffix of cache type p_cache_type''s counters (counters.cache_hits_<suffix>, '
'counters.cache_misses_<suffix>): the first 16 hex digits of its md5.';

create or replace function private.make_cache_counters(p_cache_type text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
-- A type's first entry makes its counters. Two transactions making the same type at once: the
-- second waits on the type's row and finds it made. No conflict target: with cache_type alone,
-- two that both passed the check before either inserted met again on the counter's unique key,
-- which raised instead (tests/py/test_cache_races.py, 1 run in 3). Named hits and misses, so
-- the sampler (descending names) reads the misses first: a sample then never has more hits in
-- an hour than were counted.
declare
    v_counter text := private.cache_counter(p_cache_type);
begin
    insert into private.cache_types (cache_type, counter)
    values (p_cache_type, v_counter)
    on conflict do nothing;
    if found then
        perform private.make_counter(
            'cache_hits_' || v_counter,
            pg_catalog.format('get_cache hits of cache type %s.', p_cache_type)
        );
        perform private.make_counter(
            'cache_misses_' || v_counter,
            pg_catalog.format('get_cache misses of cache type %s.', p_cache_type)
        );
    end if;
end;
$$;
comment on function private.make_cache_counters(text) is
'Records cache type p_cache_type and makes its hit and miss counters, unless made.';

select private.make_cache_counters('general');

-- The RPCs ----------------------------------------------------------------------------------------

create or replace function private.require_cache_tags(p_tags text[], p_function text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    if pg_catalog.array_ndims(p_tags) > 1 or pg_catalog.cardinality(p_tags) > 20 or exists (
        select from pg_catalog.unnest(p_tags) as t (tag)
        where t.tag is null or pg_catalog.char_length(t.tag) not between 1 and 100
    ) then
        raise exception '%: p_tags must be a list of at most 20 tags of 1 to 100 characters',
            p_function
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_cache_tags(text[], text) is
'22023 naming p_function unless p_tags (null: none) is a list (one dimension) of at most 20 '
'tags of 1 to 100 characters.';

create or replace function public.set_cache(
    p_key text,
    p_value jsonb,
    p_ttl_seconds integer default 3600,
    p_cache_type text default 'general',
    p_tags text[] default '{}'
)
returns timestamptz
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_tags text[] := coalesce(p_tags, '{}');
    v_hit_counter regclass;
    v_expires_at timestamptz;
begin
    -- The checks below in one expression where they pass (every write runs them); the helpers
    -- word the refusal when one does not.
    if p_key is null or pg_catalog.char_length(p_key) not between 1 and 512
        or p_value is null or pg_catalog.octet_length(p_value::text) > 1048576
        or p_ttl_seconds is null or p_ttl_seconds not between 1 and 2592000
        or p_cache_type is null or pg_catalog.char_length(p_cache_type) not between 1 and 100
        -- Tags, without a query: none null or empty, and at most 100 characters in all (so each
        -- is); more in all is checked tag by tag below.
        or pg_catalog.cardinality(v_tags) > 20
        or (
            pg_catalog.cardinality(v_tags) > 0
            and (
                -- A list from 1, as array_position searches only those; others are refused or
                -- renumbered below.
                pg_catalog.array_ndims(v_tags) > 1
                or pg_catalog.array_lower(v_tags, 1) <> 1
                or pg_catalog.array_position(v_tags, null) is not null
                or pg_catalog.array_position(v_tags, '') is not null
                or pg_catalog.char_length(pg_catalog.array_to_string(v_tags, '')) > 100
            )
        ) then
        perform private.require_length(p_key, 1, 512, 'set_cache', 'p_key');
        if p_value is null then
            raise exception 'set_cache: p_value must not be null' using errcode = '22023';
        end if;
        perform private.require_json_size(p_value, 1048576, 'set_cache', 'p_value');
        perform private.require_between(p_ttl_seconds, 1, 2592000, 'set_cache', 'p_ttl_seconds');
        perform private.require_length(p_cache_type, 1, 100, 'set_cache', 'p_cache_type');
        perform private.require_cache_tags(v_tags, 'set_cache');
        v_tags := array(select t.tag from pg_catalog.unnest(v_tags) as t (tag));
    end if;
    -- private.cache_counter spelt out: a SQL function with a SET clause is not inlined, and its
    -- call cost a quarter of this function's rate.
    v_hit_counter := pg_catalog.to_regclass(
        'counters.cache_hits_' || pg_catalog.left(pg_catalog.md5(p_cache_type), 16)
    );
    if v_hit_counter is null then
        perform private.make_cache_counters(p_cache_type);
        v_hit_counter := ('counters.cache_hits_' || private.cache_counter(p_cache_type))::regclass;
    end if;
    -- Expiry from the transaction's start: an entry never lives longer than asked.
    insert into public.cache_entries as e (key, value, cache_type, tags, expires_at, hit_counter)
    values (
        p_key, p_value, p_cache_type, v_tags,
        pg_catalog.now() + pg_catalog.make_interval(secs => p_ttl_seconds), v_hit_counter
    )
    on conflict (key) do update
        set
            value = excluded.value,
            cache_type = excluded.cache_type,
            tags = excluded.tags,
            expires_at = excluded.expires_at,
            hit_counter = excluded.hit_counter,
            updated_at = pg_catalog.now()
    returning e.expires_at into v_expires_at;
    return v_expires_at;
end;
$$;
comment on function public.set_cache(text, jsonb, integer, text, text[]) is
'Stores p_value (JSON, not null, at most 1 MiB as text) under p_key (1 to 512 characters) for '
'p_ttl_seconds (1 to 2592000, 30 days; default 3600), replacing any entry of the key, with '
'p_cache_type (1 to 100 characters, default general: the monitoring groups by it) and p_tags (at '
'most 20 of 1 to 100 characters; null: none). Returns when the entry expires. A bad argument is '
'22023 naming it. service_role only.';
revoke all on function public.set_cache(text, jsonb, integer, text, text[])
from public, anon, authenticated;
grant execute on function public.set_cache(text, jsonb, integer, text, text[]) to service_role;

create or replace function public.get_cache(p_key text, p_cache_type text default 'general')
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_value jsonb;
    v_cache_type text;
    -- Not null when the entry is fresh: its hit, counted.
    v_hit bigint;
    v_miss bigint;
begin
    if p_key is null or pg_catalog.char_length(p_key) not between 1 and 512
        or pg_catalog.char_length(p_cache_type) not between 1 and 100 then
        perform private.require_length(p_key, 1, 512, 'get_cache', 'p_key');
        perform private.require_nullable_length(p_cache_type, 1, 100, 'get_cache',
            'p_cache_type');
    end if;
    -- The clock, not the transaction's start: an entry that expires while a long transaction
    -- runs is not returned to it either. A hit is counted in the same statement, on the
    -- sequence its entry names (by name for an entry not written by set_cache; 0 when its type
    -- has no counters).
    select
        e.value,
        e.cache_type,
        case
            when e.expires_at > pg_catalog.clock_timestamp()
                then coalesce(pg_catalog.nextval(coalesce(e.hit_counter, pg_catalog.to_regclass(
                    'counters.cache_hits_' || private.cache_counter(e.cache_type)
                ))), 0)
        end
    into v_value, v_cache_type, v_hit
    from public.cache_entries as e
    where e.key = p_key;
    if v_hit is not null then
        return v_value;
    end if;
    -- A miss (the caller computes the value anyway) on the counter its type names: the expired
    -- entry's, else p_cache_type's; none for a type never set.
    v_miss := pg_catalog.nextval(pg_catalog.to_regclass(
        'counters.cache_misses_'
        || pg_catalog.left(pg_catalog.md5(coalesce(v_cache_type, p_cache_type)), 16)
    ));
    return null;
end;
$$;
comment on function public.get_cache(text, text) is
'The value stored under p_key (1 to 512 characters), or null when there is none or it has '
'expired (an expired entry is never returned, cleaned up or not). Counts a hit or a miss for the '
'entry''s cache type; a miss of a key with no entry counts for p_cache_type (default general), '
'so callers of other types pass theirs. A bad argument is 22023 naming it. service_role only.';
revoke all on function public.get_cache(text, text) from public, anon, authenticated;
grant execute on function public.get_cache(text, text) to service_role;

create or replace function public.invalidate_cache_by_tag(p_tag text)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_deleted integer;
begin
    perform private.require_length(p_tag, 1, 100, 'invalidate_cache_by_tag', 'p_tag');
    -- One statement, by the tags' index: once it commits, no entry with the tag is left.
    delete from public.cache_entries as e
    where e.tags @> array[p_tag];
    get diagnostics v_deleted = row_count;
    return v_deleted;
end;
$$;
comment on function public.invalidate_cache_by_tag(text) is
'Deletes every cache entry tagged p_tag (1 to 100 characters) in one statement; returns how many. '
'A bad argument is 22023. service_role only.';
revoke all on function public.invalidate_cache_by_tag(text) from public, anon, authenticated;
grant execute on function public.invalidate_cache_by_tag(text) to service_role;

create or replace function public.cleanup_expired_cache(
    p_batch_size integer default 10000,
    p_max_batches integer default 100
)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Expired entries are already never returned: this only frees their space, a batch per
-- statement by the expiry index, skipping entries a writer holds (set_cache is renewing them).
-- What is left after p_max_batches waits for the next run.
declare
    v_deleted integer;
    v_total integer := 0;
begin
    perform private.require_between(p_batch_size, 1, 100000, 'cleanup_expired_cache',
        'p_batch_size');
    perform private.require_between(p_max_batches, 1, 10000, 'cleanup_expired_cache',
        'p_max_batches');
    for i in 1 .. p_max_batches loop
        delete from public.cache_entries as e
        where e.ctid = any(array(
            select x.ctid
            from public.cache_entries as x
            where x.expires_at <= pg_catalog.clock_timestamp()
            order by x.expires_at
            limit p_batch_size
            for update skip locked
        ))
        -- A writer may have renewed it between the batch's read and its delete.
        and e.expires_at <= pg_catalog.clock_timestamp();
        get diagnostics v_deleted = row_count;
        v_total := v_total + v_deleted;
        exit when v_deleted < p_batch_size;
    end loop;
    return v_total;
end;
$$;
comment on function public.cleanup_expired_cache(integer, integer) is
'Deletes expired cache entries, p_batch_size (1 to 100000, default 10000) per statement, at most '
'p_max_batches (1 to 10000, default 100) batches; returns how many went. Runs every 5 minutes '
'(pg_cron job cleanup-expired-cache). service_role only.';
revoke all on function public.cleanup_expired_cache(integer, integer)
from public, anon, authenticated;
grant execute on function public.cleanup_expired_cache(integer, integer) to service_role;

select private.schedule_cron(
    'cleanup-expired-cache', '*/5 * * * *', 'select public.cleanup_expired_cache()'
);

-- Monitoring --------------------------------------------------------------------------------------

create or replace view monitoring.cache_stats as
with entries as (
    select
        e.cache_type,
        pg_catalog.count(*) as entries,
        pg_catalog.count(*) filter (where e.expires_at <= pg_catalog.now()) as expired,
        pg_catalog.sum(
            pg_catalog.pg_column_size(e.key) + pg_catalog.pg_column_size(e.value)
            + pg_catalog.pg_column_size(e.tags)
        ) as size_bytes
    from public.cache_entries as e
    group by e.cache_type
),

counts as (
    -- The counters now less as they were an hour ago (none sampled that long ago: the type is
    -- younger, counted from zero); misses read first, as the sampler reads them.
    select
        t.cache_type,
        private.counted_since(
            'cache_misses_' || t.counter, pg_catalog.now() - interval '1 hour'
        ) as misses,
        private.counted_since(
            'cache_hits_' || t.counter, pg_catalog.now() - interval '1 hour'
        ) as hits
    from private.cache_types as t
)

select
    coalesce(e.cache_type, c.cache_type) as cache_type,
    coalesce(e.entries, 0) as entries,
    coalesce(e.expired, 0) as expired_awaiting_cleanup,
    coalesce(e.size_bytes, 0) as size_bytes,
    coalesce(c.hits, 0) as hits_last_hour,
    coalesce(c.misses, 0) as misses_last_hour,
    round(c.hits::numeric / nullif(c.hits + c.misses, 0), 4) as hit_ratio_last_hour
from entries as e
full join counts as c on e.cache_type = c.cache_type;
comment on view monitoring.cache_stats is
'Per cache type: entries, expired entries awaiting cleanup (never returned), their size in bytes '
'(key, value and tags as stored), hits and misses over the last hour and the hit ratio (from '
'the counters, sampled every 5 minutes). Also the seed''s cache_stats (the analyst''s '
'search_path reads monitoring first).';
grant select on monitoring.cache_stats to analyst;

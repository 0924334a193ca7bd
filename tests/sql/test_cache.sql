-- The general cache (migration 20261207150000_cache_entries, functions in
-- supabase/functions-sql/*_cache.sql): set_cache, get_cache (never an expired entry),
-- invalidate_cache_by_tag, cleanup_expired_cache in batches, the hit and miss counters,
-- monitoring.cache_stats, every bad argument, and who may call what. Runs as postgres on a fresh
-- clone in one transaction: now() is constant, so an entry is expired by writing its expires_at
-- into the past as the owner.
begin;
select plan(90);

create function pg_temp.counted(p_cache_type text)
returns table (hits bigint, misses bigint)
language sql
as $$
    select
        private.counter_value('cache_hits_' || private.cache_counter(p_cache_type)),
        private.counter_value('cache_misses_' || private.cache_counter(p_cache_type))
$$;

select has_table('public', 'cache_entries', 'public.cache_entries exists');
select is(
    (select relpersistence from pg_catalog.pg_class where oid = 'public.cache_entries'::regclass),
    'u'::"char",
    'the cache is UNLOGGED'
);
select has_index('public', 'cache_entries', 'cache_entries_tags', 'the tags have an index');
select is(
    (select am.amname::text from pg_catalog.pg_class as c
       join pg_catalog.pg_am as am on am.oid = c.relam
      where c.oid = 'public.cache_entries_tags'::regclass),
    'gin',
    'a GIN index'
);
select has_view('monitoring', 'cache_stats', 'monitoring.cache_stats exists');

-- Setting and getting -----------------------------------------------------------------------------

select is(
    public.set_cache('fare:kimironko:nyabugogo', '{"fare": 1500, "currency": "RWF"}'),
    now() + interval '1 hour',
    'set_cache stores an entry for an hour by default and returns when it expires'
);
select results_eq(
    $$select value, cache_type, tags, expires_at, created_at, updated_at
        from public.cache_entries where key = 'fare:kimironko:nyabugogo'$$,
    $$values ('{"fare": 1500, "currency": "RWF"}'::jsonb, 'general'::text, '{}'::text[],
              now() + interval '1 hour', now(), now())$$,
    'the row: the value, type general, no tags, the expiry'
);
select is(
    public.get_cache('fare:kimironko:nyabugogo'),
    '{"fare": 1500, "currency": "RWF"}'::jsonb,
    'get_cache returns the value'
);
select is(
    public.set_cache('fare:kimironko:nyabugogo', '[1, 2]', 60, 'fares', array['zone:kigali']),
    now() + interval '60 seconds',
    'set_cache of the same key replaces it, for its own ttl'
);
select results_eq(
    $$select value, cache_type, tags, expires_at from public.cache_entries$$,
    $$values ('[1, 2]'::jsonb, 'fares'::text, array['zone:kigali'], now() + interval '1 minute')$$,
    'one row, with the new value, type, tags and expiry'
);
select is(public.get_cache('fare:kimironko:nyabugogo'), '[1, 2]'::jsonb, 'the new value is read');
select is(public.set_cache('scalar', '"text"', 1), now() + interval '1 second', 'any JSON value');
select is(public.get_cache('scalar'), '"text"'::jsonb, 'a JSON string comes back');
select is(
    public.set_cache('json-null', 'null'::jsonb, 30), now() + interval '30 seconds',
    'JSON null is a value'
);
select is(public.get_cache('nobody'), null, 'a key with no entry is null');
select lives_ok(
    $$select public.set_cache('tagless', '{}', 10, 'general', null)$$, 'null tags are no tags'
);
select is(
    (select tags from public.cache_entries where key = 'tagless'), '{}'::text[], 'stored as none'
);
select lives_ok(
    $$select public.set_cache(repeat('k', 512), jsonb_build_object('v', repeat('x', 1048566)),
        2592000, repeat('t', 100),
        (select array_agg(repeat('g', 99) || n) from generate_series(0, 9) as n)
        || (select array_agg(repeat('h', 99) || n) from generate_series(0, 9) as n))$$,
    'the bounds themselves: a 512-character key, 1 MiB of JSON, 30 days, a 100-character type, '
    '20 tags of 100 characters'
);

-- Expiry ------------------------------------------------------------------------------------------

insert into public.cache_entries (key, value, cache_type, tags, expires_at) values
('expired', '{"stale": true}', 'fares', '{}', clock_timestamp() - interval '1 second'),
('expiring', '{"stale": true}', 'fares', '{}', clock_timestamp() + interval '200 milliseconds');
select is(public.get_cache('expired'), null, 'an entry past its expiry is null before cleanup');
select is(public.get_cache('expiring'), '{"stale": true}'::jsonb, 'it is read until it expires');
do $$ begin perform pg_sleep(0.3); end $$;
select is(
    public.get_cache('expiring'), null,
    'and not after, even within the transaction that read it (the clock, not now())'
);
select is(
    public.set_cache('expired', '{"fresh": true}', 60), now() + interval '1 minute',
    'set_cache over an expired entry'
);
select is(public.get_cache('expired'), '{"fresh": true}'::jsonb, 'renews it');

-- Counting ----------------------------------------------------------------------------------------

select results_eq(
    $$select cache_type, counter from private.cache_types order by cache_type$$,
    $$select t, private.cache_counter(t) from unnest(array['fares', 'general', repeat('t', 100)])
        as t order by t$$,
    'each type set gets a row and counters (general from the start)'
);
select ok(
    to_regclass('counters.cache_hits_' || private.cache_counter('fares')) is not null
    and to_regclass('counters.cache_misses_' || private.cache_counter('fares')) is not null,
    'two counters per type, in schema counters'
);
create temp table before_counts as
select t.cache_type, c.hits, c.misses
from unnest(array['fares', 'general']) as t (cache_type)
cross join lateral pg_temp.counted(t.cache_type) as c;
do $$ begin perform public.get_cache('fare:kimironko:nyabugogo'); end $$;
do $$ begin perform public.get_cache('fare:kimironko:nyabugogo'); end $$;
do $$ begin perform public.get_cache('expiring'); end $$;
do $$ begin perform public.get_cache('absent'); end $$;
do $$ begin perform public.get_cache('absent', 'fares'); end $$;
do $$ begin perform public.get_cache('absent', 'a type never set'); end $$;
select results_eq(
    $$select b.cache_type, c.hits - b.hits, c.misses - b.misses
        from before_counts as b cross join lateral pg_temp.counted(b.cache_type) as c
       order by 1$$,
    $$values ('fares'::text, 2::bigint, 2::bigint), ('general', 0, 1)$$,
    'hits count for the entry''s type; an expired entry''s miss too; an absent key''s for '
    'p_cache_type (default general); a type never set counts nowhere'
);
select cmp_ok(
    private.sample_counters(), '>=', 6, 'the sampling job samples every type''s two counters'
);
select results_eq(
    $$select t, h.value, m.value from unnest(array['fares', 'general', repeat('t', 100)]) as t
        inner join private.counter_samples as h
            on h.counter = 'cache_hits_' || private.cache_counter(t)
        inner join private.counter_samples as m
            on m.counter = 'cache_misses_' || private.cache_counter(t)
       order by 1$$,
    $$select t, c.hits, c.misses from unnest(array['fares', 'general', repeat('t', 100)]) as t
        cross join lateral pg_temp.counted(t) as c order by 1$$,
    'a sample is the counters as they were'
);

-- Tags --------------------------------------------------------------------------------------------

do $$
begin
    perform public.set_cache(
        'route:1', '{"km": 4}', 600, 'routes', array['driver:7', 'zone:kigali']
    );
    perform public.set_cache('route:2', '{"km": 9}', 600, 'routes', array['driver:8']);
    perform public.set_cache('route:3', '{"km": 2}', 600, 'routes', array['driver:7']);
end
$$;
select is(public.invalidate_cache_by_tag('driver:7'), 2, 'invalidation deletes each tagged entry');
select results_eq(
    $$select key from public.cache_entries where key like 'route:%' order by key$$,
    $$values ('route:2'::text)$$,
    'and only those'
);
select is(public.get_cache('route:1'), null, 'an invalidated entry is a miss');
select is(public.invalidate_cache_by_tag('driver:7'), 0, 'again: nothing left to delete');
select is(public.invalidate_cache_by_tag('zone:kigali'), 1, 'another tag of the same entries');
select is(public.get_cache('fare:kimironko:nyabugogo'), null, 'gone too');

-- Cleanup -----------------------------------------------------------------------------------------

insert into public.cache_entries (key, value, expires_at)
select 'old:' || n, '{}', clock_timestamp() - make_interval(secs => n)
from generate_series(1, 25) as n;
select is(public.cleanup_expired_cache(10, 2), 20, 'cleanup deletes at most its batches');
select results_eq(
    $$select key from public.cache_entries where key like 'old:%' order by key$$,
    $$values ('old:1'::text), ('old:2'), ('old:3'), ('old:4'), ('old:5')$$,
    'the oldest first, the rest left for the next run'
);
select is(
    public.cleanup_expired_cache(), 6,
    'the next run deletes the rest (and the entry that expired in the expiry tests)'
);
select ok(
    (select count(*) from public.cache_entries) > 0
    and not exists (select from public.cache_entries where expires_at <= clock_timestamp()),
    'and no entry that has not expired'
);
select is(public.cleanup_expired_cache(), 0, 'nothing expired: nothing deleted');
select ok(
    exists (
        select from cron.job where jobname = 'cleanup-expired-cache'
            and schedule = '*/5 * * * *' and command = 'select public.cleanup_expired_cache()'
    ),
    'cleanup runs every 5 minutes'
);
select ok(
    exists (
        select from cron.job where jobname = 'sample-counters' and schedule = '*/5 * * * *'
    ),
    'the counters are sampled every 5 minutes (with every other counter)'
);

-- Bad arguments -----------------------------------------------------------------------------------

create temp table refusals (call text, message text);
insert into refusals values
($$select public.set_cache(null, '{}')$$, 'set_cache: p_key must be 1 to 512 characters'),
($$select public.set_cache('', '{}')$$, 'set_cache: p_key must be 1 to 512 characters'),
($$select public.set_cache(repeat('k', 513), '{}')$$,
 'set_cache: p_key must be 1 to 512 characters'),
($$select public.set_cache('k', null)$$, 'set_cache: p_value must not be null'),
($$select public.set_cache('k', jsonb_build_object('v', repeat('x', 1048571)))$$,
 'set_cache: p_value must be at most 1048576 bytes of JSON (got 1048580)'),
($$select public.set_cache('k', '{}', 0)$$,
 'set_cache: p_ttl_seconds must be 1 to 2592000 (got 0)'),
($$select public.set_cache('k', '{}', 2592001)$$,
 'set_cache: p_ttl_seconds must be 1 to 2592000 (got 2592001)'),
($$select public.set_cache('k', '{}', null)$$,
 'set_cache: p_ttl_seconds must be 1 to 2592000 (got null)'),
($$select public.set_cache('k', '{}', 60, '')$$,
 'set_cache: p_cache_type must be 1 to 100 characters'),
($$select public.set_cache('k', '{}', 60, repeat('t', 101))$$,
 'set_cache: p_cache_type must be 1 to 100 characters'),
($$select public.set_cache('k', '{}', 60, null)$$,
 'set_cache: p_cache_type must be 1 to 100 characters'),
($$select public.set_cache('k', '{}', 60, 'general',
    (select array_agg('t' || n) from generate_series(1, 21) as n))$$,
 'set_cache: p_tags must be a list of at most 20 tags of 1 to 100 characters'),
($$select public.set_cache('k', '{}', 60, 'general', array[''])$$,
 'set_cache: p_tags must be a list of at most 20 tags of 1 to 100 characters'),
($$select public.set_cache('k', '{}', 60, 'general', array[repeat('t', 101)])$$,
 'set_cache: p_tags must be a list of at most 20 tags of 1 to 100 characters'),
($$select public.set_cache('k', '{}', 60, 'general', array['a', null])$$,
 'set_cache: p_tags must be a list of at most 20 tags of 1 to 100 characters'),
($$select public.set_cache('k', '{}', 60, 'general', '{{a,b},{c,d}}')$$,
 'set_cache: p_tags must be a list of at most 20 tags of 1 to 100 characters'),
($$select public.get_cache(null)$$, 'get_cache: p_key must be 1 to 512 characters'),
($$select public.get_cache('')$$, 'get_cache: p_key must be 1 to 512 characters'),
($$select public.get_cache(repeat('k', 513))$$, 'get_cache: p_key must be 1 to 512 characters'),
($$select public.get_cache('k', '')$$,
 'get_cache: p_cache_type must be null or 1 to 100 characters'),
($$select public.get_cache('k', repeat('t', 101))$$,
 'get_cache: p_cache_type must be null or 1 to 100 characters'),
($$select public.invalidate_cache_by_tag(null)$$,
 'invalidate_cache_by_tag: p_tag must be 1 to 100 characters'),
($$select public.invalidate_cache_by_tag(repeat('t', 101))$$,
 'invalidate_cache_by_tag: p_tag must be 1 to 100 characters'),
($$select public.cleanup_expired_cache(0)$$,
 'cleanup_expired_cache: p_batch_size must be 1 to 100000 (got 0)'),
($$select public.cleanup_expired_cache(10, 0)$$,
 'cleanup_expired_cache: p_max_batches must be 1 to 10000 (got 0)');
create temp table entries_before as select * from public.cache_entries;
select throws_ok(r.call, '22023', r.message, r.message) from refusals as r;
select set_eq(
    'select key, value, expires_at from public.cache_entries',
    'select key, value, expires_at from entries_before',
    'the refused calls changed nothing'
);
select lives_ok(
    $$select public.set_cache('numbered', '{}', 60, 'general', '[5:6]={a,b}')$$,
    'tags numbered from 5 are taken'
);
select results_eq(
    $$select e.tags, pg_catalog.array_lower(e.tags, 1) from public.cache_entries as e
        where e.key = 'numbered'$$,
    $$values ('{a,b}'::text[], 1)$$,
    'tags numbered from 5 are stored as a list from 1, which invalidation searches'
);

-- Who may call ------------------------------------------------------------------------------------

select lives_ok(
    $$select tests.as_role('service_role',
        'select public.set_cache(''svc'', ''{"ok": true}'', 60, ''svc'', array[''t''])')$$,
    'service_role sets'
);
create temp table read_back (value jsonb);
grant insert on pg_temp.read_back to service_role;
select lives_ok(
    $$select tests.as_role('service_role',
        'insert into pg_temp.read_back select public.get_cache(''svc'')')$$,
    'service_role gets'
);
select is((select value from read_back), '{"ok": true}'::jsonb, 'its value');
select lives_ok(
    $$select tests.as_role('service_role',
        'select public.invalidate_cache_by_tag(''t''), public.cleanup_expired_cache()')$$,
    'service_role invalidates and cleans up'
);
select is(
    (select count(*) from public.cache_entries where key = 'svc'), 0::bigint, 'invalidated'
);
select throws_ok(
    format($$select tests.as_role(%L, %L)$$, r.role_name, c.call),
    '42501',
    'permission denied for function ' || c.fn,
    r.role_name || ' may not call ' || c.fn
)
from (values ('anon'), ('authenticated')) as r (role_name)
cross join (
    values
    ('set_cache', $$select public.set_cache('k', '{}')$$),
    ('get_cache', $$select public.get_cache('k')$$),
    ('invalidate_cache_by_tag', $$select public.invalidate_cache_by_tag('t')$$),
    ('cleanup_expired_cache', $$select public.cleanup_expired_cache()$$)
) as c (fn, call);
select throws_ok(
    $$select tests.as_role('service_role', 'select count(*) from public.cache_entries')$$,
    '42501', 'permission denied for table cache_entries',
    'no API role reads the table directly, service_role included'
);

-- Monitoring, as the analyst ----------------------------------------------------------------------

do $$ begin perform public.set_cache('stat:1', '{"a": 1}', 60, 'stats'); end $$;
do $$ begin perform public.set_cache('stat:2', '{"a": 2}', 60, 'stats'); end $$;
insert into public.cache_entries (key, value, cache_type, expires_at)
values ('stat:old', '{}', 'stats', clock_timestamp() - interval '1 minute');
do $$ begin perform public.get_cache('stat:1'); end $$;
do $$ begin perform public.get_cache('stat:old'); end $$;
do $$ begin perform public.get_cache('stat:none', 'stats'); end $$;
-- An hour ago the type had counted nothing (as sampled); what it counts since is the last hour.
insert into private.counter_samples (counter, sampled_at, value)
select c.prefix || private.cache_counter('stats'), s.at, 0
from (values ('cache_hits_'), ('cache_misses_')) as c (prefix)
cross join (values (now() - interval '61 minutes'), (now() - interval '2 hours')) as s (at);
create temp table analyst_read (row_data jsonb);
grant insert on pg_temp.analyst_read to analyst;
-- SET ROLE does not apply a role's settings: the analyst's search_path, as a login of it gets
-- (and pgTAP's schema).
select is(
    (select s.setconfig from pg_catalog.pg_db_role_setting as s
      where s.setrole = 'analyst'::regrole and s.setdatabase = 0),
    array['search_path=monitoring, public'],
    'the analyst''s search_path starts with monitoring'
);
set local search_path = monitoring, public, extensions;
select lives_ok(
    $$select tests.as_role('analyst',
        'insert into pg_temp.analyst_read select to_jsonb(v) from cache_stats as v')$$,
    'so the analyst reads the seed''s bare name cache_stats'
);
reset search_path;
select columns_are(
    'monitoring', 'cache_stats',
    array[
        'cache_type', 'entries', 'expired_awaiting_cleanup', 'size_bytes', 'hits_last_hour',
        'misses_last_hour', 'hit_ratio_last_hour'
    ],
    'cache_stats has counts, sizes and ratios, never keys or values'
);
select results_eq(
    $$select (r.row_data ->> 'entries')::bigint,
             (r.row_data ->> 'expired_awaiting_cleanup')::bigint,
             (r.row_data ->> 'size_bytes')::bigint > 0, (r.row_data ->> 'hits_last_hour')::bigint,
             (r.row_data ->> 'misses_last_hour')::bigint,
             (r.row_data ->> 'hit_ratio_last_hour')::numeric
        from analyst_read as r where r.row_data ->> 'cache_type' = 'stats'$$,
    $$values (3::bigint, 1::bigint, true, 1::bigint, 2::bigint, 0.3333::numeric)$$,
    'per type: entries, expired, size, hits, misses and the hit ratio of the last hour'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select count(*) from public.cache_entries')$$,
    '42501', 'permission denied for table cache_entries',
    'analyst cannot read the entries'
);

-- Comments ----------------------------------------------------------------------------------------

select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.oid in (
           'public.set_cache(text, jsonb, integer, text, text[])'::regprocedure,
           'public.get_cache(text, text)'::regprocedure,
           'public.invalidate_cache_by_tag(text)'::regprocedure,
           'public.cleanup_expired_cache(integer, integer)'::regprocedure,
           'private.cache_counter(text)'::regprocedure,
           'private.make_cache_counters(text)'::regprocedure,
           'private.require_cache_tags(text[], text)'::regprocedure
       ) and obj_description(p.oid, 'pg_proc') is null$$,
    'every function has a comment'
);
select is_empty(
    $$select c.oid::regclass::text from pg_catalog.pg_class as c
       where c.oid in (
           'public.cache_entries'::regclass, 'private.cache_types'::regclass,
           'monitoring.cache_stats'::regclass
       ) and obj_description(c.oid, 'pg_class') is null$$,
    'every table and the view have a comment'
);

select * from finish();
rollback;

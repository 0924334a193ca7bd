-- Counters: one place for the event counters that feature flags, the general cache and the route
-- cache each kept on their own (sequences in private, a samples table and a sampler per domain).
-- A counter is a sequence in schema counters (nextval writes no row and takes no row lock, so
-- counting never makes callers wait on each other); every counter is sampled into one table.
-- The reader, the sampler and the helpers that make and drop counters are in
-- supabase/functions-sql/15_counters.sql; the three monitoring views that read the samples are
-- dropped here and made again by their domains' functions-sql files.

create schema if not exists counters;
comment on schema counters is
'Counter sequences (one per counted event), read through private.counter_value and sampled into '
'private.counter_samples; no API role has usage.';
revoke all on schema counters from public;

-- The views read the old sample tables: they go with them and are made again over the new one.
drop view if exists monitoring.feature_flag_overview;
drop view if exists monitoring.feature_flag_evaluations_by_hour;
drop view if exists monitoring.cache_stats;
drop view if exists monitoring.route_cache_stats;

-- The existing counters move with their values (a sequence keeps its oid, so a cache entry's
-- hit_counter still names its type's). A flag's enabled counter becomes evaluations_on: the
-- sampler reads counters in descending name order, and a flag's answers that were on must be
-- read before its evaluations (they are counted after them) for a sample never to have more on
-- than evaluated.
do $$
declare
    v_sequence record;
begin
    for v_sequence in
        select c.relname::text as name
        from pg_catalog.pg_class as c
        where c.relnamespace = 'private'::regnamespace
            and c.relkind = 'S'
            and c.relname ~ (
                '^(route_cache_[a-z]+_(hits|misses)|cache_(hits|misses)_[0-9a-f]{16}'
                || '|feature_flag_[0-9]+_(evaluations|enabled))$'
            )
        order by c.relname
    loop
        execute pg_catalog.format('alter sequence private.%I set schema counters', v_sequence.name);
        if v_sequence.name ~ '^feature_flag_[0-9]+_enabled$' then
            execute pg_catalog.format(
                'alter sequence counters.%I rename to %I',
                v_sequence.name,
                pg_catalog.regexp_replace(v_sequence.name, '_enabled$', '_evaluations_on')
            );
        end if;
    end loop;
end
$$;
revoke all on all sequences in schema counters from public, anon, authenticated, service_role;
comment on table private.cache_types is
'Every cache type set_cache has stored an entry of, and the suffix of its two counters '
'(counters.cache_hits_<counter>, counters.cache_misses_<counter>).';

create table private.counter_samples (
    counter text not null,
    sampled_at timestamptz not null default now(),
    value bigint not null, -- noqa: RF04
    primary key (counter, sampled_at),
    constraint counter_samples_counter_length check (char_length(counter) between 1 and 63),
    constraint counter_samples_value_positive check (value >= 0)
);
comment on table private.counter_samples is
'Every counter''s value (cumulative since its sequence was made), sampled every 5 minutes by the '
'sample-counters cron job and kept 30 days; a count over a window is the counter now less the '
'newest sample at or before the window''s start (none: counted from zero).';
comment on column private.counter_samples.counter is
'The counter''s sequence name in schema counters.';
comment on column private.counter_samples.value is
'The sequence''s last value when sampled (0 before its first nextval).';

alter table private.counter_samples enable row level security;
revoke all on private.counter_samples from public, anon, authenticated, service_role;

-- The samples kept so far, under the counters' new names.
insert into private.counter_samples (counter, sampled_at, value)
select
    'feature_flag_' || c.flag_id || v.suffix as counter,
    c.sampled_at,
    v.value
from public.feature_flag_evaluation_counts as c
cross join
    lateral (
        values ('_evaluations', c.evaluations), ('_evaluations_on', c.enabled)
    ) as v (suffix, value)
union all
select
    v.prefix || t.counter as counter,
    s.sampled_at,
    v.value
from private.cache_counter_samples as s
inner join private.cache_types as t on s.cache_type = t.cache_type
cross join
    lateral (
        values ('cache_hits_', s.hits), ('cache_misses_', s.misses)
    ) as v (prefix, value)
union all
select
    'route_cache_' || r.profile || v.suffix as counter,
    r.sampled_at,
    v.value
from public.route_cache_counts as r
cross join lateral (values ('_hits', r.hits), ('_misses', r.misses)) as v (suffix, value)
on conflict do nothing;

drop table public.feature_flag_evaluation_counts;
drop table private.cache_counter_samples;
drop table public.route_cache_counts;

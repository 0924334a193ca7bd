-- Counters: events counted on sequences in schema counters (nextval writes no row and takes no
-- row lock, so no caller waits on another to count). Unlogged: a logged sequence writes WAL
-- every 32 values, which gives a reading transaction an id and makes its commit wait for a
-- flush (a quarter of get_cache's rate, measured by bench/cache.py); an unlogged one costs
-- nothing measurable, and starts again from zero after a crash, which counted_since reads as a
-- restart. They are sampled every 5 minutes into
-- private.counter_samples, and read by the monitoring views as "now less the newest sample at or
-- before the window's start". Feature flags, the general cache and the route cache count this
-- way. Their hot paths call nextval on a name they compute inline (counters.<name>): a call of a
-- helper there would cost them a share of their rate.

create or replace function private.require_counter_name(p_counter text, p_function text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
-- A counter's name is its sequence's: unquoted, so that the hot paths can write it into a
-- regclass cast as it is, and within Postgres's 63 bytes, so that it is never truncated.
begin
    if p_counter is null or p_counter !~ '^[a-z][a-z0-9_]{0,62}$' then
        raise exception '%: p_counter must be 1 to 63 lower-case letters, digits and _, starting '
            'with a letter (got %)', p_function, private.quoted_for_error(p_counter, 63)
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_counter_name(text, text) is
'Nothing when p_counter can name a counter (1 to 63 of [a-z0-9_], a letter first); else 22023 '
'naming p_function.';

create or replace function private.make_counter(p_counter text, p_about text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
    perform private.require_counter_name(p_counter, 'make_counter');
    perform private.require_length(p_about, 1, 500, 'make_counter', 'p_about');
    execute pg_catalog.format('create unlogged sequence if not exists counters.%I', p_counter);
    execute pg_catalog.format('comment on sequence counters.%I is %L', p_counter, p_about);
end;
$$;
comment on function private.make_counter(text, text) is
'Makes counter p_counter (an unlogged sequence in schema counters, described by p_about) unless '
'it exists; '
'22023 for a name that cannot be one.';

create or replace function private.drop_counter(p_counter text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
-- Its samples go with it: a counter made again under the name counts from zero, and an old
-- sample above zero would make its windows negative.
begin
    perform private.require_counter_name(p_counter, 'drop_counter');
    execute pg_catalog.format('drop sequence if exists counters.%I', p_counter);
    delete from private.counter_samples as s where s.counter = p_counter;
end;
$$;
comment on function private.drop_counter(text) is
'Drops counter p_counter and its samples (nothing when there is none).';

create or replace function private.counter_value(p_counter text)
returns bigint
language sql
stable
security definer
set search_path = ''
-- A definer: the analyst reading the monitoring views may read no sequence. Only a sequence in
-- schema counters is read, whatever the name (quoted, so "private.x" is a name, not a path).
-- The parameters are not columns of the one table here (sqlfluff's RF03 takes them for some).
-- noqa: disable=RF03
return coalesce((
    select pg_catalog.pg_sequence_last_value(c.oid)
    from pg_catalog.pg_class as c
    where
        c.oid = pg_catalog.to_regclass('counters.' || pg_catalog.quote_ident(p_counter))
        and c.relkind = 'S'
        -- A name longer than 63 bytes would be truncated to another counter's.
        and c.relname::text = p_counter
), 0);
-- noqa: enable=RF03
comment on function private.counter_value(text) is
'Counter p_counter''s value (how many it has counted since it was made); 0 before its first '
'count and for anything that is not a counter (a sequence in schema counters).';
revoke all on function private.counter_value(text) from public, anon, authenticated;
grant execute on function private.counter_value(text) to analyst;

create or replace function private.counter_value_at(p_counter text, p_at timestamptz)
returns bigint
language sql
stable
security definer
set search_path = ''
-- A definer, as counter_value: the analyst may not read the samples table.
-- noqa: disable=RF03
return coalesce((
    select s.value
    from private.counter_samples as s
    where s.counter = p_counter and s.sampled_at <= p_at
    order by s.sampled_at desc
    limit 1
), 0);
-- noqa: enable=RF03
comment on function private.counter_value_at(text, timestamptz) is
'Counter p_counter''s value at p_at: its newest sample taken at or before then; 0 when there is '
'none that old (the counter started since, or its samples have aged out). A window''s count is '
'counter_value less this at the window''s start.';
revoke all on function private.counter_value_at(text, timestamptz)
from public, anon, authenticated;
grant execute on function private.counter_value_at(text, timestamptz) to analyst;

create or replace function private.counter_increase(p_value bigint, p_before bigint)
returns bigint
language sql
immutable
set search_path = ''
-- Less than before: the counter started again (unlogged, after a crash) and has counted p_value
-- since; the counts before the crash are not known, and never negative.
return case when p_value >= p_before then p_value - p_before else p_value end;
comment on function private.counter_increase(bigint, bigint) is
'How much a counter counted from p_before to p_value: the difference, or p_value when it is '
'less than p_before (the counter started again from zero).';
grant execute on function private.counter_increase(bigint, bigint) to analyst;

create or replace function private.counted_since(p_counter text, p_at timestamptz)
returns bigint
language sql
stable
set search_path = ''
return private.counter_increase(
    private.counter_value(p_counter), private.counter_value_at(p_counter, p_at)
);
comment on function private.counted_since(text, timestamptz) is
'How many counter p_counter counted since p_at (its value now less its sample at p_at; since it '
'started again when it did after a crash). A window''s count in the monitoring views.';
revoke all on function private.counted_since(text, timestamptz) from public, anon, authenticated;
grant execute on function private.counted_since(text, timestamptz) to analyst;

create or replace function private.sample_counters()
returns integer
language plpgsql
volatile
set search_path = ''
as $$
-- Every counter in one statement, read in descending name order (C collation): a volatile call
-- in an ordered select is evaluated after the sort. Where one counter must be read before
-- another (the one counted second: a cache type's misses before its hits, a flag's answers that
-- were on before its evaluations), their names say so, and a sample never has more hits than
-- lookups or more on than evaluations. Kept 30 days, the longest any view reads
-- (monitoring.feature_flag_evaluations_by_hour shows them all).
declare
    v_sampled integer;
begin
    insert into private.counter_samples (counter, value)
    select
        c.relname::text,
        coalesce(pg_catalog.pg_sequence_last_value(c.oid), 0)
    from pg_catalog.pg_class as c
    where c.relnamespace = 'counters'::regnamespace and c.relkind = 'S'
    order by c.relname::text collate "C" desc
    on conflict do nothing;
    get diagnostics v_sampled = row_count;
    delete from private.counter_samples as s
    where s.sampled_at < pg_catalog.now() - interval '30 days';
    return v_sampled;
end;
$$;
comment on function private.sample_counters() is
'Samples every counter (each sequence in schema counters, misses before hits and on before '
'evaluated) into private.counter_samples, once per transaction, and deletes samples older than '
'30 days; returns how many counters were sampled.';

select private.schedule_cron('sample-counters', '*/5 * * * *', 'select private.sample_counters()');

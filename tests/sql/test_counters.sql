-- The counters (migration 20261207160000_counters, functions in
-- supabase/functions-sql/*_counters.sql): counters made and dropped, the reader that reads only
-- schema counters, the value at a time that the views' windows subtract, the sampler and its
-- retention, its cron job, and who may read what. Runs as postgres on a fresh clone in one
-- transaction: now() is constant, so samples are dated by writing them as the owner.
begin;
select plan(73);

-- The schema and the samples table ---------------------------------------------------------------

select has_schema('counters', 'schema counters exists');
select is(
    (select count(*)::integer from pg_catalog.pg_namespace as n, aclexplode(n.nspacl) as a
      where n.nspname = 'counters' and a.grantee <> n.nspowner),
    0,
    'nobody but its owner has a privilege on schema counters'
);
select ok(
    not has_schema_privilege(r.rolname, 'counters', 'usage'),
    r.rolname || ' has no usage on schema counters'
)
from (values ('anon'), ('authenticated'), ('service_role'), ('analyst')) as r (rolname);
select has_table('private', 'counter_samples', 'private.counter_samples exists');
select is(
    (select relrowsecurity from pg_catalog.pg_class
      where oid = 'private.counter_samples'::regclass),
    true,
    'row level security is on for the samples'
);
select ok(
    not has_table_privilege(r.rolname, 'private.counter_samples', 'select, insert, update, delete'),
    r.rolname || ' has no privilege on the samples'
)
from (values ('anon'), ('authenticated'), ('service_role'), ('analyst')) as r (rolname);
select is_empty(
    $$select relname from pg_catalog.pg_class
       where relname in ('feature_flag_evaluation_counts', 'cache_counter_samples',
                         'route_cache_counts')$$,
    'the three samples tables of before are gone'
);
select is_empty(
    $$select c.relname from pg_catalog.pg_class as c
       where c.relnamespace = 'private'::regnamespace and c.relkind = 'S'
         and c.relname ~ '^(route_cache_|cache_(hits|misses)_|feature_flag_[0-9])'$$,
    'no counter is left in private'
);

-- Making and dropping ------------------------------------------------------------------------------

select lives_ok(
    $$select private.make_counter('probe_events', 'Probe events of this test.')$$,
    'make_counter makes a counter'
);
select is(
    (select c.relkind from pg_catalog.pg_class as c
      where c.oid = to_regclass('counters.probe_events')),
    'S'::"char",
    'a sequence in schema counters'
);
select is(
    obj_description('counters.probe_events'::regclass, 'pg_class'),
    'Probe events of this test.',
    'described'
);
select is(private.counter_value('probe_events'), 0::bigint, 'a new counter reads 0');
select is(
    (select nextval('counters.probe_events') + nextval('counters.probe_events')
        + nextval('counters.probe_events')),
    6::bigint,
    'counting is nextval'
);
select is(private.counter_value('probe_events'), 3::bigint, 'the reader reads how many');
select lives_ok(
    $$select private.make_counter('probe_events', 'Probe events of this test, again.')$$,
    'making it again is no error'
);
select is(private.counter_value('probe_events'), 3::bigint, 'and keeps its count');
select ok(
    (select count(*) = 0 from pg_catalog.pg_class as c, aclexplode(c.relacl) as a
      where c.oid = 'counters.probe_events'::regclass and a.grantee <> c.relowner),
    'a new counter grants nothing'
);

create temp table refusals (call text, message text);
insert into refusals values
($$select private.make_counter(null, 'x')$$, 'make_counter: p_counter must be 1 to 63 '),
($$select private.make_counter('', 'x')$$, 'make_counter: p_counter must be 1 to 63 '),
($$select private.make_counter('Upper', 'x')$$, 'make_counter: p_counter must be 1 to 63 '),
($$select private.make_counter('1st', 'x')$$, 'make_counter: p_counter must be 1 to 63 '),
($$select private.make_counter('a-b', 'x')$$, 'make_counter: p_counter must be 1 to 63 '),
($$select private.make_counter('private.x', 'x')$$, 'make_counter: p_counter must be 1 to 63 '),
($$select private.make_counter(repeat('a', 64), 'x')$$,
 'make_counter: p_counter must be 1 to 63 '),
($$select private.make_counter('fine', null)$$, 'make_counter: p_about must be 1 to 500 '),
($$select private.make_counter('fine', repeat('x', 501))$$,
 'make_counter: p_about must be 1 to 500 '),
($$select private.drop_counter('private.x')$$, 'drop_counter: p_counter must be 1 to 63 ');
select throws_like(r.call, r.message || '%', r.call || ' is refused (22023)') from refusals as r;
select is(
    (select count(*)::integer from pg_catalog.pg_class
      where relnamespace = 'counters'::regnamespace and relname in ('fine', 'x')),
    0,
    'the refused calls made nothing'
);
select throws_ok(
    $$select private.make_counter('Upper', 'x')$$, '22023', null, 'the refusals are 22023'
);

-- The reader: schema counters only -------------------------------------------------------------

create sequence private.counters_probe_outside;
do $$ begin perform nextval('private.counters_probe_outside'); end $$;
create table counters.not_a_sequence (n integer);
select is(
    private.counter_value('private.counters_probe_outside'), 0::bigint,
    'a sequence outside schema counters is not read, named with its schema'
);
select is(
    private.counter_value('counters_probe_outside'), 0::bigint, 'nor by its bare name'
);
select is(private.counter_value('not_a_sequence'), 0::bigint, 'a table in counters reads 0');
select is(private.counter_value('nothing_here'), 0::bigint, 'a missing counter reads 0');
select is(private.counter_value(null), 0::bigint, 'null reads 0');
select is(
    private.counter_value('probe_events' || repeat('x', 60)), 0::bigint,
    'a name longer than 63 bytes is not truncated into another'
);
select is(
    private.counter_value('"probe_events"'), 0::bigint, 'a quoted name is a name, not a path'
);

-- The value at a time -----------------------------------------------------------------------------

insert into private.counter_samples (counter, sampled_at, value) values
('probe_events', now() - interval '3 hours', 1),
('probe_events', now() - interval '61 minutes', 2);
select is(
    private.counter_value_at('probe_events', now() - interval '1 hour'), 2::bigint,
    'the newest sample at or before the time'
);
select is(
    private.counter_value_at('probe_events', now() - interval '61 minutes'), 2::bigint,
    'one taken at the time itself counts'
);
select is(
    private.counter_value_at('probe_events', now() - interval '2 hours'), 1::bigint,
    'an older time, an older sample'
);
select is(
    private.counter_value_at('probe_events', now() - interval '1 day'), 0::bigint,
    'no sample that old: counted from zero'
);
select is(
    private.counter_value_at('nothing_here', now()), 0::bigint, 'a counter never sampled: zero'
);
select is(
    private.counter_value('probe_events')
    - private.counter_value_at('probe_events', now() - interval '1 hour'),
    1::bigint,
    'the last hour''s count: now less the sample at its start'
);
select is(
    private.counted_since('probe_events', now() - interval '1 hour'), 1::bigint,
    'counted_since says the same'
);

-- Unlogged, and started again after a crash --------------------------------------------------------

select is(
    (select count(*) from pg_catalog.pg_class as c
        where c.relnamespace = 'counters'::regnamespace and c.relkind = 'S'
            and c.relpersistence <> 'u'),
    0::bigint,
    'every counter is an unlogged sequence (counting writes no WAL)'
);
select is(
    array[private.counter_increase(5, 2), private.counter_increase(2, 5),
        private.counter_increase(0, 0)],
    array[3, 2, 0]::bigint [],
    'an increase is the difference, or the value when it fell (started again from zero)'
);
do $$
begin
    perform private.make_counter('probe_restarts', 'A probe that a crash restarts.');
    perform pg_catalog.nextval('counters.probe_restarts') from generate_series(1, 5);
    insert into private.counter_samples (counter, sampled_at, value) values
    ('probe_restarts', now() - interval '2 hours', 5);
    -- What a crash does to an unlogged sequence: it starts again.
    alter sequence counters.probe_restarts restart;
    perform pg_catalog.nextval('counters.probe_restarts') from generate_series(1, 2);
end;
$$;
select is(
    private.counted_since('probe_restarts', now() - interval '1 hour'), 2::bigint,
    'after a restart the window counts what came since, never a negative number'
);
select is(
    (select c.relpersistence from pg_catalog.pg_class as c
        where c.oid = 'counters.probe_restarts'::regclass),
    'u'::"char",
    'a counter made now is unlogged'
);

-- The sampler -------------------------------------------------------------------------------------

insert into private.counter_samples (counter, sampled_at, value) values
('probe_events', now() - interval '30 days' - interval '1 second', 0),
('probe_events', now() - interval '29 days', 0),
('gone_long_ago', now() - interval '31 days', 7);
select is(
    private.sample_counters(),
    (select count(*)::integer from pg_catalog.pg_class
      where relnamespace = 'counters'::regnamespace and relkind = 'S'),
    'the sampler samples every counter'
);
select is_empty(
    $$select c.relname from pg_catalog.pg_class as c
       where c.relnamespace = 'counters'::regnamespace and c.relkind = 'S'
      except all
      select s.counter::name from private.counter_samples as s where s.sampled_at = now()$$,
    'once each'
);
select is_empty(
    $$select s.counter, s.value from private.counter_samples as s where s.sampled_at = now()
      except
      select s.counter, private.counter_value(s.counter) from private.counter_samples as s
       where s.sampled_at = now()$$,
    'each sample is its counter''s value'
);
select is(private.sample_counters(), 0, 'again in the same transaction: nothing more');
select results_eq(
    $$select counter, sampled_at, value from private.counter_samples
       where counter in ('probe_events', 'gone_long_ago') and sampled_at < now()
       order by sampled_at$$,
    $$values ('probe_events'::text, now() - interval '29 days', 0::bigint),
             ('probe_events', now() - interval '3 hours', 1),
             ('probe_events', now() - interval '61 minutes', 2)$$,
    'samples older than 30 days are deleted, younger ones kept'
);
select results_eq(
    $$select jobname::text collate "default", schedule::text collate "default",
             command collate "default"
        from cron.job where jobname ~ '^sample-'$$,
    $$values ('sample-counters', '*/5 * * * *', 'select private.sample_counters()')$$,
    'one cron job samples every counter every 5 minutes (the domains'' own jobs are gone)'
);
select is(private.unschedule_cron('no-such-job'), false, 'unschedule_cron: no such job, no error');
select lives_ok(
    $$select private.schedule_cron('counters-probe', '0 0 * * *', 'select 1')$$, 'a probe job'
);
select is(private.unschedule_cron('counters-probe'), true, 'unschedule_cron unschedules it');
select is_empty(
    $$select jobid from cron.job where jobname = 'counters-probe'$$, 'the job is gone'
);

-- Dropping ----------------------------------------------------------------------------------------

select lives_ok($$select private.drop_counter('probe_events')$$, 'drop_counter drops a counter');
select ok(
    to_regclass('counters.probe_events') is null
    and not exists (select from private.counter_samples where counter = 'probe_events'),
    'its sequence and its samples'
);
select lives_ok($$select private.drop_counter('probe_events')$$, 'dropping it again is no error');

-- Who may read ----------------------------------------------------------------------------------

select results_eq(
    $$select r.rolname::text, has_function_privilege(r.rolname, 'private.counter_value(text)',
                 'execute'),
             has_function_privilege(r.rolname, 'private.counter_value_at(text, timestamptz)',
                 'execute')
        from (values ('analyst'), ('anon'), ('authenticated'), ('service_role')) as r (rolname)
       order by 1$$,
    $$values ('analyst', true, true), ('anon', false, false), ('authenticated', false, false),
             ('service_role', false, false)$$,
    'the analyst may execute the readers; the API roles may not'
);
-- As the monitoring views call them: named when the view is made, run as the analyst.
create temp view analyst_probe as
select
    private.counter_value('route_cache_truck_hits') as now_value,
    private.counter_value_at('route_cache_truck_hits', now()) as sampled_value;
grant select on pg_temp.analyst_probe to analyst;
select lives_ok(
    $$select tests.as_role('analyst', 'select * from pg_temp.analyst_probe')$$,
    'the analyst reads a counter and its samples through the readers'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select last_value from counters.route_cache_truck_hits')$$,
    '42501', 'permission denied for schema counters',
    'but not the sequence itself'
);
select throws_ok(
    $$select tests.as_role('anon', 'select private.counter_value(''route_cache_truck_hits'')')$$,
    '42501', 'permission denied for schema private',
    'anon cannot call the reader'
);
select throws_ok(
    $$select tests.as_role('authenticated',
        'select private.counter_value_at(''route_cache_truck_hits'', now())')$$,
    '42501', 'permission denied for schema private',
    'nor can an authenticated user'
);

-- Comments ----------------------------------------------------------------------------------------

select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.oid in (
           'private.require_counter_name(text, text)'::regprocedure,
           'private.make_counter(text, text)'::regprocedure,
           'private.drop_counter(text)'::regprocedure,
           'private.counter_value(text)'::regprocedure,
           'private.counter_value_at(text, timestamptz)'::regprocedure,
           'private.counter_increase(bigint, bigint)'::regprocedure,
           'private.counted_since(text, timestamptz)'::regprocedure,
           'private.sample_counters()'::regprocedure,
           'private.unschedule_cron(text)'::regprocedure
       ) and obj_description(p.oid, 'pg_proc') is null$$,
    'every function has a comment'
);
select ok(
    obj_description('private.counter_samples'::regclass, 'pg_class') is not null
    and obj_description('counters'::regnamespace, 'pg_namespace') is not null,
    'the table and the schema have a comment'
);

select * from finish();
rollback;

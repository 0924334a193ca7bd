-- Metrics (supabase/functions-sql/*_metrics.sql): record_metric, record_metrics, the CHECK
-- constraints of system_metrics behind them, and who may call, read and write what.
-- Runs as postgres on a fresh clone.
begin;
select plan(98);

-- Counts noted along the way: baselines, and what a role saw (written by that role through
-- as_role, asserted afterwards as postgres).
create temp table seen (note text primary key, n bigint not null);
grant select, insert on pg_temp.seen to anon, authenticated, service_role, analyst;
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;

-- The template may have been migrated in an earlier month: make sure this month has its child.
do $$ begin perform private.maintain_partitions(); end $$;

-- record_metric: the happy path -------------------------------------------------------------------

-- As service_role, the one role meant to call it; the ids go through settings to the asserts.
set local role service_role;
do $$
begin
    perform set_config('metrics_test.full', public.record_metric(
        'checkout', 'latency', 'http.request.duration', 12.5, 'ms', '{"route": "/pay"}'
    )::text, true);
    perform set_config('metrics_test.bare', public.record_metric(
        'checkout', 'counter', 'orders.created', 3
    )::text, true);
    perform set_config('metrics_test.null_tags', public.record_metric(
        'checkout', 'gauge', 'queue.depth', -4.25, null, null
    )::text, true);
    perform set_config('metrics_test.json_null_tags', public.record_metric(
        'checkout', 'cpu', 'cpu.usage', 55.5, '%', 'null'::jsonb
    )::text, true);
end;
$$;
reset role;

select results_eq(
    $$select service_name, metric_type, metric_name, value, unit, tags, created_at
        from public.system_metrics
       where id = current_setting('metrics_test.full')::bigint$$,
    $$values (
        'checkout', 'latency', 'http.request.duration', 12.5::float8, 'ms',
        '{"route": "/pay"}'::jsonb, now()
    )$$,
    'record_metric returns the id of a row holding exactly the values given, at now()'
);
select results_eq(
    $$select metric_type, metric_name, value, unit, tags
        from public.system_metrics
       where id = current_setting('metrics_test.bare')::bigint$$,
    $$values ('counter', 'orders.created', 3::float8, null::text, '{}'::jsonb)$$,
    'without p_unit and p_tags the unit is null and tags default to {}'
);
select results_eq(
    $$select value, unit, tags from public.system_metrics
       where id = current_setting('metrics_test.null_tags')::bigint$$,
    $$values (-4.25::float8, null::text, '{}'::jsonb)$$,
    'p_unit null is allowed and p_tags null is stored as {}'
);
select is(
    (
        select tags from public.system_metrics
        where id = current_setting('metrics_test.json_null_tags')::bigint
    ),
    '{}'::jsonb,
    'p_tags JSON null is stored as {}'
);
select is(
    (
        select count(*) from public.system_metrics
        where service_name = 'checkout'
    ),
    4::bigint,
    'each record_metric call stored one row'
);
select lives_ok(
    format(
        $$select public.record_metric(%L, 'gauge', %L, 1, %L)$$,
        repeat('s', 100), repeat('m', 200), repeat('u', 32)
    ),
    'names at their limits (100, 200, 32 characters) are accepted'
);

-- record_metric: bad input is 22023 naming the parameter, and stores nothing ----------------------

insert into pg_temp.seen (note, n)
values ('before bad record_metric', (select count(*) from public.system_metrics));

select throws_ok(
    $$select public.record_metric('checkout', 'latency', 'x', 'NaN')$$,
    '22023',
    'record_metric: p_value must be finite (got NaN)',
    'record_metric refuses a NaN value'
);
select throws_ok(
    $$select public.record_metric('checkout', 'latency', 'x', 'Infinity')$$,
    '22023',
    'record_metric: p_value must be finite (got Infinity)',
    'record_metric refuses an infinite value'
);
select throws_ok(
    $$select public.record_metric('checkout', 'latency', 'x', '-Infinity')$$,
    '22023',
    'record_metric: p_value must be finite (got -Infinity)',
    'record_metric refuses a negative infinite value'
);
select throws_ok(
    $$select public.record_metric('checkout', 'latency', 'x', null)$$,
    '22023',
    'record_metric: p_value must be a number',
    'record_metric refuses a null value'
);
select throws_ok(
    $$select public.record_metric('checkout', 'histogram', 'x', 1)$$,
    '22023',
    'record_metric: p_metric_type must be one of latency, error_rate, throughput, memory, cpu, '
    || 'counter, gauge (got ''histogram'')',
    'record_metric refuses an unknown metric_type'
);
select throws_ok(
    $$select public.record_metric('checkout', null, 'x', 1)$$,
    '22023',
    'record_metric: p_metric_type must be one of latency, error_rate, throughput, memory, cpu, '
    || 'counter, gauge (got null)',
    'record_metric refuses a null metric_type'
);
select throws_ok(
    $$select public.record_metric('', 'gauge', 'x', 1)$$,
    '22023',
    'record_metric: p_service_name must not be empty',
    'record_metric refuses an empty service_name'
);
select throws_ok(
    $$select public.record_metric('   ', 'gauge', 'x', 1)$$,
    '22023',
    'record_metric: p_service_name must not be empty',
    'record_metric refuses a blank service_name'
);
select throws_ok(
    $$select public.record_metric(null, 'gauge', 'x', 1)$$,
    '22023',
    'record_metric: p_service_name must not be empty',
    'record_metric refuses a null service_name'
);
select throws_ok(
    $$select public.record_metric('checkout', 'gauge', '', 1)$$,
    '22023',
    'record_metric: p_metric_name must not be empty',
    'record_metric refuses an empty metric_name'
);
select throws_ok(
    format($$select public.record_metric(%L, 'gauge', 'x', 1)$$, repeat('s', 101)),
    '22023',
    'record_metric: p_service_name must be at most 100 characters',
    'record_metric refuses a service_name of 101 characters'
);
select throws_ok(
    format($$select public.record_metric('checkout', 'gauge', %L, 1)$$, repeat('m', 201)),
    '22023',
    'record_metric: p_metric_name must be at most 200 characters',
    'record_metric refuses a metric_name of 201 characters'
);
select throws_ok(
    $$select public.record_metric('checkout', 'gauge', 'x', 1, '')$$,
    '22023',
    'record_metric: p_unit must be 1 to 32 characters, or null',
    'record_metric refuses an empty unit'
);
select throws_ok(
    format($$select public.record_metric('checkout', 'gauge', 'x', 1, %L)$$, repeat('u', 33)),
    '22023',
    'record_metric: p_unit must be 1 to 32 characters, or null',
    'record_metric refuses a unit of 33 characters'
);
select throws_ok(
    $$select public.record_metric('checkout', 'gauge', 'x', 1, null, '["a", "b"]')$$,
    '22023',
    'record_metric: p_tags must be a JSON object, or null',
    'record_metric refuses tags that are an array'
);
select throws_ok(
    $$select public.record_metric('checkout', 'gauge', 'x', 1, null, '"region=eu"')$$,
    '22023',
    'record_metric: p_tags must be a JSON object, or null',
    'record_metric refuses tags that are a string'
);
select is(
    (select count(*) from public.system_metrics),
    pg_temp.seen('before bad record_metric'),
    'no refused record_metric call stored a row'
);

-- record_metrics ----------------------------------------------------------------------------------

select is(
    public.record_metrics($$[
        {"service_name": "billing", "metric_type": "latency", "metric_name": "a.latency",
         "value": 40.5, "unit": "ms", "tags": {"region": "eu"}},
        {"service_name": "billing", "metric_type": "error_rate", "metric_name": "b.errors",
         "value": 0.02},
        {"service_name": "billing", "metric_type": "throughput", "metric_name": "c.rps",
         "value": 1200, "unit": "req/s", "tags": null}
    ]$$),
    3,
    'record_metrics returns how many samples it stored'
);
select results_eq(
    $$select metric_type, metric_name, value, unit, tags, created_at
        from public.system_metrics where service_name = 'billing' order by metric_name$$,
    $$values
        ('latency', 'a.latency', 40.5::float8, 'ms', '{"region": "eu"}'::jsonb, now()),
        ('error_rate', 'b.errors', 0.02::float8, null, '{}'::jsonb, now()),
        ('throughput', 'c.rps', 1200::float8, 'req/s', '{}'::jsonb, now())$$,
    'record_metrics stored each sample as given, absent or null tags as {}'
);

insert into pg_temp.seen (note, n)
values ('before bad record_metrics', (select count(*) from public.system_metrics));

select is(public.record_metrics('[]'), 0, 'record_metrics of an empty array returns 0');
select throws_ok(
    $$select public.record_metrics('{"service_name": "billing"}')$$,
    '22023',
    'record_metrics: p_metrics must be a JSON array of metric objects',
    'record_metrics refuses an object'
);
select throws_ok(
    $$select public.record_metrics(null)$$,
    '22023',
    'record_metrics: p_metrics must be a JSON array of metric objects',
    'record_metrics refuses null'
);
select throws_ok(
    $$select public.record_metrics('"samples"')$$,
    '22023',
    'record_metrics: p_metrics must be a JSON array of metric objects',
    'record_metrics refuses a string'
);
-- Positions are zero-based, as jsonb's -> counts them.
select throws_ok(
    $$select public.record_metrics('[42]')$$,
    '22023',
    'record_metrics: p_metrics[0] must be a JSON object',
    'record_metrics refuses an element that is not an object'
);
select throws_ok(
    $$select public.record_metrics('[{"service_name": "billing", "metric_type": "gauge",
        "metric_name": "x", "value": 1, "colour": "red"}]')$$,
    '22023',
    'record_metrics: p_metrics[0] has unknown keys colour (known: service_name, metric_type, '
    || 'metric_name, value, unit, tags)',
    'record_metrics refuses an element with an unknown key'
);
select throws_ok(
    $$select public.record_metrics('[{"service_name": "billing", "metric_type": "gauge",
        "metric_name": "x", "value": "12"}]')$$,
    '22023',
    'record_metrics: p_metrics[0].value must be a number',
    'record_metrics refuses a value given as a string'
);
select throws_ok(
    $$select public.record_metrics('[{"service_name": "billing", "metric_type": "gauge",
        "metric_name": "x", "value": 1e400}]')$$,
    '22023',
    'record_metrics: p_metrics[0].value is out of range for double precision',
    'record_metrics refuses a value too large for double precision'
);
-- Too small is as unrepresentable as too large: it must be refused the same way, not as 22003.
select throws_ok(
    $$select public.record_metrics('[{"service_name": "billing", "metric_type": "gauge",
        "metric_name": "x", "value": 1e-400}]')$$,
    '22023',
    'record_metrics: p_metrics[0].value is out of range for double precision',
    'record_metrics refuses a value too small for double precision'
);
select throws_ok(
    $$select public.record_metrics('[
        {"service_name": "billing", "metric_type": "gauge", "metric_name": "ok.1", "value": 1},
        {"service_name": "billing", "metric_type": "gauge", "metric_name": "ok.2", "value": 2},
        {"service_name": "billing", "metric_type": "gauge", "metric_name": "bad", "value": null},
        {"service_name": "billing", "metric_type": "gauge", "metric_name": "ok.4", "value": 4}
    ]')$$,
    '22023',
    'record_metrics: p_metrics[2].value must be a number',
    'record_metrics names the first bad element by its position'
);
select throws_ok(
    $$select public.record_metrics('[{"service_name": "billing", "metric_type": "timer",
        "metric_name": "x", "value": 1}]')$$,
    '22023',
    'record_metrics: p_metrics[0].metric_type must be one of latency, error_rate, throughput, '
    || 'memory, cpu, counter, gauge (got ''timer'')',
    'record_metrics applies record_metric''s rules to each element'
);
select throws_ok(
    $$select public.record_metrics('[{"service_name": "billing", "metric_type": "gauge",
        "metric_name": "x", "value": 1, "tags": ["eu"]}]')$$,
    '22023',
    'record_metrics: p_metrics[0].tags must be a JSON object, or null',
    'record_metrics refuses an element whose tags are an array'
);
select throws_ok(
    $$select public.record_metrics((
        select jsonb_agg(jsonb_build_object(
            'service_name', 'bulk', 'metric_type', 'counter', 'metric_name', 'n', 'value', i
        ))
        from generate_series(1, 10001) as i
    ))$$,
    '22023',
    'record_metrics: p_metrics holds 10001 samples; at most 10000 per call',
    'record_metrics refuses more than 10000 samples'
);
select is(
    (select count(*) from public.system_metrics),
    pg_temp.seen('before bad record_metrics'),
    'no refused batch stored any of its samples, its good ones included'
);
select is(
    public.record_metrics((
        select
            jsonb_agg(jsonb_build_object(
                'service_name', 'bulk', 'metric_type', 'counter', 'metric_name', 'n', 'value', i
            ))
        from generate_series(1, 10000) as i
    )),
    10000,
    'record_metrics accepts exactly 10000 samples'
);

-- The table's CHECK constraints, for writers that bypass the functions ----------------------------

select throws_ok(
    $$insert into public.system_metrics (service_name, metric_type, metric_name, value)
      values ('checkout', 'gauge', 'x', 'NaN')$$,
    '23514',
    format(
        'new row for relation "%s" violates check constraint "system_metrics_value_finite"',
        tests.current_child('public.system_metrics')
    ),
    'the table refuses a NaN value'
);
select throws_ok(
    $$insert into public.system_metrics (service_name, metric_type, metric_name, value)
      values ('checkout', 'gauge', 'x', '-Infinity')$$,
    '23514',
    format(
        'new row for relation "%s" violates check constraint "system_metrics_value_finite"',
        tests.current_child('public.system_metrics')
    ),
    'the table refuses an infinite value'
);
select throws_ok(
    $$insert into public.system_metrics (service_name, metric_type, metric_name, value)
      values ('checkout', 'histogram', 'x', 1)$$,
    '23514',
    format(
        'new row for relation "%s" violates check constraint "system_metrics_metric_type_known"',
        tests.current_child('public.system_metrics')
    ),
    'the table refuses an unknown metric_type'
);
select throws_ok(
    $$insert into public.system_metrics (service_name, metric_type, metric_name, value)
      values ('', 'gauge', 'x', 1)$$,
    '23514',
    format(
        'new row for relation "%s" violates check constraint "system_metrics_service_name_length"',
        tests.current_child('public.system_metrics')
    ),
    'the table refuses an empty service_name'
);
select throws_ok(
    format(
        $$insert into public.system_metrics (service_name, metric_type, metric_name, value)
          values (%L, 'gauge', 'x', 1)$$,
        repeat('s', 101)
    ),
    '23514',
    format(
        'new row for relation "%s" violates check constraint "system_metrics_service_name_length"',
        tests.current_child('public.system_metrics')
    ),
    'the table refuses a service_name of 101 characters'
);
select throws_ok(
    format(
        $$insert into public.system_metrics (service_name, metric_type, metric_name, value)
          values ('checkout', 'gauge', %L, 1)$$,
        repeat('m', 201)
    ),
    '23514',
    format(
        'new row for relation "%s" violates check constraint "system_metrics_metric_name_length"',
        tests.current_child('public.system_metrics')
    ),
    'the table refuses a metric_name of 201 characters'
);
select throws_ok(
    $$insert into public.system_metrics (service_name, metric_type, metric_name, value, unit)
      values ('checkout', 'gauge', 'x', 1, '')$$,
    '23514',
    format(
        'new row for relation "%s" violates check constraint "system_metrics_unit_length"',
        tests.current_child('public.system_metrics')
    ),
    'the table refuses an empty unit'
);
select throws_ok(
    $$insert into public.system_metrics (service_name, metric_type, metric_name, value, tags)
      values ('checkout', 'gauge', 'x', 1, '[]')$$,
    '23514',
    format(
        'new row for relation "%s" violates check constraint "system_metrics_tags_object"',
        tests.current_child('public.system_metrics')
    ),
    'the table refuses tags that are not an object'
);
-- The default partition carries the constraints too (a far-future row lands there).
select throws_ok(
    $$insert into public.system_metrics (service_name, metric_type, metric_name, value, created_at)
      values ('checkout', 'gauge', 'x', 'Infinity', now() + interval '10 years')$$,
    '23514',
    'new row for relation "system_metrics_default" violates check constraint '
    || '"system_metrics_value_finite"',
    'the default partition refuses an infinite value'
);

-- Who may call the functions ----------------------------------------------------------------------

select function_privs_are(
    'public', 'record_metric',
    array['text', 'text', 'text', 'double precision', 'text', 'jsonb'],
    'service_role', array['EXECUTE'],
    'service_role may execute record_metric'
);
select function_privs_are(
    'public', 'record_metric',
    array['text', 'text', 'text', 'double precision', 'text', 'jsonb'],
    'anon', array[]::name[],
    'anon may not execute record_metric'
);
select function_privs_are(
    'public', 'record_metric',
    array['text', 'text', 'text', 'double precision', 'text', 'jsonb'],
    'authenticated', array[]::name[],
    'authenticated may not execute record_metric'
);
select function_privs_are(
    'public', 'record_metric',
    array['text', 'text', 'text', 'double precision', 'text', 'jsonb'],
    'analyst', array[]::name[],
    'analyst may not execute record_metric'
);
select function_privs_are(
    'public', 'record_metrics', array['jsonb'], 'service_role', array['EXECUTE'],
    'service_role may execute record_metrics'
);
select function_privs_are(
    'public', 'record_metrics', array['jsonb'], 'anon', array[]::name[],
    'anon may not execute record_metrics'
);
select function_privs_are(
    'public', 'record_metrics', array['jsonb'], 'authenticated', array[]::name[],
    'authenticated may not execute record_metrics'
);
select function_privs_are(
    'public', 'record_metrics', array['jsonb'], 'analyst', array[]::name[],
    'analyst may not execute record_metrics'
);

select throws_ok(
    $$select tests.as_role(
        'anon', 'select public.record_metric(''checkout'', ''gauge'', ''x'', 1)'
    )$$,
    '42501',
    'permission denied for function record_metric',
    'anon calling record_metric is refused'
);
select throws_ok(
    $$select tests.as_role(
        'authenticated', 'select public.record_metric(''checkout'', ''gauge'', ''x'', 1)'
    )$$,
    '42501',
    'permission denied for function record_metric',
    'authenticated calling record_metric is refused'
);
select throws_ok(
    $$select tests.as_role(
        'analyst', 'select public.record_metric(''checkout'', ''gauge'', ''x'', 1)'
    )$$,
    '42501',
    'permission denied for function record_metric',
    'analyst calling record_metric is refused'
);
select throws_ok(
    $$select tests.as_role('anon', 'select public.record_metrics(''[]'')')$$,
    '42501',
    'permission denied for function record_metrics',
    'anon calling record_metrics is refused'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'select public.record_metrics(''[]'')')$$,
    '42501',
    'permission denied for function record_metrics',
    'authenticated calling record_metrics is refused'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select public.record_metrics(''[]'')')$$,
    '42501',
    'permission denied for function record_metrics',
    'analyst calling record_metrics is refused'
);
select lives_ok(
    $$select tests.as_role('service_role', 'select public.record_metrics(''[]'')')$$,
    'service_role calls record_metrics'
);

-- Definer's rights write past RLS; a pinned search_path keeps callers' objects out of them.
select is_definer(
    'public', 'record_metric',
    array['text', 'text', 'text', 'double precision', 'text', 'jsonb'],
    'record_metric is security definer'
);
select is_definer(
    'public', 'record_metrics', array['jsonb'], 'record_metrics is security definer'
);
select is(
    (
        select proconfig from pg_catalog.pg_proc
        where oid = 'public.record_metric(text, text, text, float8, text, jsonb)'::regprocedure
    ),
    array['search_path=""'],
    'record_metric pins search_path to empty'
);
select is(
    (
        select proconfig from pg_catalog.pg_proc
        where oid = 'public.record_metrics(jsonb)'::regprocedure
    ),
    array['search_path=""'],
    'record_metrics pins search_path to empty'
);

-- Who may read and write system_metrics -----------------------------------------------------------

select ok(
    (
        select relrowsecurity from pg_catalog.pg_class
        where oid = 'public.system_metrics'::regclass
    ),
    'system_metrics has row level security enabled'
);
select is_empty(
    $$select c.child from private.partition_children('public.system_metrics') as c
      inner join pg_catalog.pg_class as r on c.child = r.oid
      where not r.relrowsecurity$$,
    'every child of system_metrics has row level security enabled'
);
select table_privs_are(
    'public', 'system_metrics', 'anon', array[]::name[],
    'anon has no privilege on system_metrics'
);
select table_privs_are(
    'public', 'system_metrics', 'authenticated', array[]::name[],
    'authenticated has no privilege on system_metrics (metrics are internal)'
);
select table_privs_are(
    'public', 'system_metrics', 'service_role', array['SELECT', 'INSERT'],
    'service_role may only select and insert on system_metrics'
);

select throws_ok(
    $$select tests.as_role('anon', 'select count(*) from public.system_metrics')$$,
    '42501',
    'permission denied for table system_metrics',
    'anon reading system_metrics is refused'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'select count(*) from public.system_metrics')$$,
    '42501',
    'permission denied for table system_metrics',
    'authenticated reading system_metrics is refused'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select count(*) from public.system_metrics')$$,
    '42501',
    'permission denied for table system_metrics',
    'analyst reading system_metrics directly is refused (it reads the monitoring views)'
);
select throws_ok(
    $$select tests.as_role(
        'anon',
        'insert into public.system_metrics (service_name, metric_type, metric_name, value)'
        ' values (''anon'', ''gauge'', ''x'', 1)'
    )$$,
    '42501',
    'permission denied for table system_metrics',
    'anon writing system_metrics is refused'
);
select throws_ok(
    $$select tests.as_role(
        'authenticated',
        'insert into public.system_metrics (service_name, metric_type, metric_name, value)'
        ' values (''authenticated'', ''gauge'', ''x'', 1)'
    )$$,
    '42501',
    'permission denied for table system_metrics',
    'authenticated writing system_metrics is refused'
);

select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into public.system_metrics (service_name, metric_type, metric_name, value)'
        ' values (''direct'', ''gauge'', ''x'', 7)'
    )$$,
    'service_role inserts into system_metrics directly'
);
select is(
    (
        select count(*) from public.system_metrics
        where service_name = 'direct' and value = 7
    ),
    1::bigint,
    'service_role''s direct insert was stored'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.seen select ''service_role'', count(*) from public.system_metrics'
    )$$,
    'service_role reads system_metrics'
);
select is(
    pg_temp.seen('service_role'),
    (select count(*) from public.system_metrics),
    'service_role sees every row of system_metrics'
);

insert into pg_temp.seen (note, n)
values ('before changes', (select count(*) from public.system_metrics));
select throws_ok(
    $$select tests.as_role('service_role', 'update public.system_metrics set value = 0')$$,
    '42501',
    'permission denied for table system_metrics',
    'service_role may not update system_metrics'
);
select throws_ok(
    $$select tests.as_role('service_role', 'delete from public.system_metrics')$$,
    '42501',
    'permission denied for table system_metrics',
    'service_role may not delete from system_metrics'
);
select throws_ok(
    $$select tests.as_role('service_role', 'truncate public.system_metrics')$$,
    '42501',
    'permission denied for table system_metrics',
    'service_role may not truncate system_metrics'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'delete from public.system_metrics')$$,
    '42501',
    'permission denied for table system_metrics',
    'authenticated may not delete from system_metrics'
);
select is(
    (
        select count(*) from public.system_metrics
        where value <> 0
    ),
    pg_temp.seen('before changes'),
    'the refused changes left every row as it was'
);
-- The owner keeps delete: the partition manager purges strays past retention with it.
select lives_ok(
    $$delete from public.system_metrics where service_name = 'direct'$$,
    'the owner may delete from system_metrics'
);

-- Children are reached only through the parent: named directly, nobody but the owner gets in.
select throws_ok(
    format(
        $$select tests.as_role('anon', 'select count(*) from partitions.%I')$$,
        tests.current_child('public.system_metrics')
    ),
    '42501',
    'permission denied for schema partitions',
    'anon cannot read this month''s child of system_metrics'
);
select throws_ok(
    format(
        $$select tests.as_role('authenticated', 'select count(*) from partitions.%I')$$,
        tests.current_child('public.system_metrics')
    ),
    '42501',
    'permission denied for schema partitions',
    'authenticated cannot read this month''s child of system_metrics'
);
select throws_ok(
    format(
        $$select tests.as_role('service_role', 'select count(*) from partitions.%I')$$,
        tests.current_child('public.system_metrics')
    ),
    '42501',
    'permission denied for schema partitions',
    'service_role cannot read this month''s child of system_metrics'
);
select throws_ok(
    $$select tests.as_role('anon', 'select count(*) from partitions.system_metrics_default')$$,
    '42501',
    'permission denied for schema partitions',
    'anon cannot read the default partition of system_metrics'
);
select throws_ok(
    $$select tests.as_role(
        'authenticated', 'select count(*) from partitions.system_metrics_default'
    )$$,
    '42501',
    'permission denied for schema partitions',
    'authenticated cannot read the default partition of system_metrics'
);
select throws_ok(
    $$select tests.as_role(
        'service_role', 'select count(*) from partitions.system_metrics_default'
    )$$,
    '42501',
    'permission denied for schema partitions',
    'service_role cannot read the default partition of system_metrics'
);
-- Even with the schema opened, no child holds a grant for an API role.
select is_empty(
    $$select c.child, r.rolname
      from private.partition_children('public.system_metrics') as c
      cross join (values ('anon'), ('authenticated'), ('service_role'), ('analyst')) as r (rolname)
      where has_table_privilege(r.rolname, c.child, 'select, insert, update, delete, truncate')$$,
    'no API role holds a privilege on any child of system_metrics'
);

-- Comments ----------------------------------------------------------------------------------------

select ok(
    coalesce(obj_description('public.system_metrics'::regclass, 'pg_class'), '') <> '',
    'system_metrics has a comment'
);
select ok(
    coalesce(obj_description(
        'public.record_metric(text, text, text, float8, text, jsonb)'::regprocedure, 'pg_proc'
    ), '') <> '',
    'record_metric has a comment'
);
select ok(
    coalesce(obj_description('public.record_metrics(jsonb)'::regprocedure, 'pg_proc'), '') <> '',
    'record_metrics has a comment'
);

select * from finish();
rollback;

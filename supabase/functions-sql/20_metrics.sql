-- Metrics: record_metric for one sample, record_metrics for a service flushing many, one
-- validator for both, and the policies of system_metrics.

create or replace function private.metric_problem(
    p_service_name text,
    p_metric_type text,
    p_metric_name text,
    p_value double precision,
    p_unit text,
    p_tags jsonb
)
returns text
language plpgsql
immutable
set search_path = ''
as $$
-- The table's CHECK constraints hold the same rules; this names the field that broke one.
-- PL/pgSQL, not SQL: a SQL function with SET is never inlined, and was planned on every call.
begin
    return case
        when p_service_name is null or pg_catalog.btrim(p_service_name) = ''
            then 'service_name must not be empty'
        when pg_catalog.char_length(p_service_name) > 100
            then 'service_name must be at most 100 characters'
        when p_metric_type is null
            or p_metric_type not in (
                'latency', 'error_rate', 'throughput', 'memory', 'cpu', 'counter', 'gauge'
            )
            then pg_catalog.format(
                'metric_type must be one of latency, error_rate, throughput, memory, cpu, '
                'counter, gauge (got %s)',
                private.quoted_for_error(p_metric_type, 100)
            )
        when p_metric_name is null or pg_catalog.btrim(p_metric_name) = ''
            then 'metric_name must not be empty'
        when pg_catalog.char_length(p_metric_name) > 200
            then 'metric_name must be at most 200 characters'
        when p_value is null
            then 'value must be a number'
        when p_value in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)
            then pg_catalog.format('value must be finite (got %s)', p_value)
        when pg_catalog.char_length(p_unit) not between 1 and 32
            then 'unit must be 1 to 32 characters, or null'
        when pg_catalog.jsonb_typeof(p_tags) not in ('object', 'null')
            then 'tags must be a JSON object, or null'
        -- Labels to group by, not a place for payloads: every sample stores its own copy.
        when pg_catalog.octet_length(p_tags::text) > 2048
            then 'tags must be at most 2048 bytes of JSON'
    end;
end;
$$;
comment on function private.metric_problem(text, text, text, double precision, text, jsonb) is
'What is wrong with a metric sample, as "<field> must ...", or null when it is valid.';

create or replace function private.metric_item_problem(p_item jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    return case
        when pg_catalog.jsonb_typeof(p_item) <> 'object'
            then ' must be a JSON object'
        when exists (
            select from pg_catalog.jsonb_object_keys(p_item) as k (key)
            where k.key not in (
                'service_name', 'metric_type', 'metric_name', 'value', 'unit', 'tags'
            )
        )
            then pg_catalog.format(
                ' has unknown keys %s (known: service_name, metric_type, metric_name, value, '
                'unit, tags)',
                (select pg_catalog.string_agg(k.key, ', ' order by k.key)
                   from pg_catalog.jsonb_object_keys(p_item) as k (key)
                  where k.key not in (
                      'service_name', 'metric_type', 'metric_name', 'value', 'unit', 'tags'
                  ))
            )
        when pg_catalog.jsonb_typeof(p_item -> 'service_name') not in ('string', 'null')
            then '.service_name must be a string'
        when pg_catalog.jsonb_typeof(p_item -> 'metric_type') not in ('string', 'null')
            then '.metric_type must be a string'
        when pg_catalog.jsonb_typeof(p_item -> 'metric_name') not in ('string', 'null')
            then '.metric_name must be a string'
        when pg_catalog.jsonb_typeof(p_item -> 'unit') not in ('string', 'null')
            then '.unit must be a string'
        when coalesce(pg_catalog.jsonb_typeof(p_item -> 'value'), 'null') <> 'number'
            then '.value must be a number'
        -- A JSON number can exceed double precision; say so rather than fail the cast.
        when abs((p_item ->> 'value')::numeric) > 1.7976931348623157e308
            or (p_item ->> 'value')::numeric <> 0
            and abs((p_item ->> 'value')::numeric) < 4.9406564584124654e-324
            then '.value is out of range for double precision'
        else '.' || private.metric_problem(
            p_item ->> 'service_name',
            p_item ->> 'metric_type',
            p_item ->> 'metric_name',
            (p_item ->> 'value')::double precision,
            p_item ->> 'unit',
            p_item -> 'tags'
        )
    end;
end;
$$;
comment on function private.metric_item_problem(jsonb) is
'What is wrong with one element of record_metrics(p_metrics), or null when it is valid.';

create or replace function public.record_metric(
    p_service_name text,
    p_metric_type text,
    p_metric_name text,
    p_value double precision,
    p_unit text default null,
    p_tags jsonb default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_problem text := private.metric_problem(
        p_service_name, p_metric_type, p_metric_name, p_value, p_unit, p_tags
    );
    v_id bigint;
begin
    if v_problem is not null then
        raise exception 'record_metric: p_%', v_problem using errcode = '22023';
    end if;
    insert into public.system_metrics (
        service_name, metric_type, metric_name, value, unit, tags
    )
    values (
        p_service_name,
        p_metric_type,
        p_metric_name,
        p_value,
        p_unit,
        coalesce(nullif(p_tags, 'null'), '{}')
    )
    returning id into v_id;
    return v_id;
end;
$$;
comment on function public.record_metric(text, text, text, double precision, text, jsonb) is
'Records one metric sample now and returns its id. p_metric_type is latency, error_rate, '
'throughput, memory, cpu, counter or gauge; p_value must be finite; p_tags a JSON object of '
'at most 2 KB. '
'Bad input is 22023 naming the parameter. service_role only.';
revoke all on function public.record_metric(
    text, text, text, double precision, text, jsonb
) from public, anon, authenticated;
grant execute on function public.record_metric(
    text, text, text, double precision, text, jsonb
) to service_role;

create or replace function public.record_metrics(p_metrics jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_problem text;
    v_count integer;
begin
    if pg_catalog.jsonb_typeof(p_metrics) is distinct from 'array' then
        raise exception 'record_metrics: p_metrics must be a JSON array of metric objects'
        using errcode = '22023';
    end if;
    if pg_catalog.jsonb_array_length(p_metrics) > 10000 then
        raise exception 'record_metrics: p_metrics holds % samples; at most 10000 per call',
            pg_catalog.jsonb_array_length(p_metrics)
        using errcode = '22023';
    end if;

    -- The whole batch or nothing: the first bad sample, by position, rejects it.
    select pg_catalog.format('p_metrics[%s]%s', e.position - 1, p.problem)
    into v_problem
    from pg_catalog.jsonb_array_elements(p_metrics) with ordinality as e (item, position)
    cross join lateral (select private.metric_item_problem(e.item) as problem) as p
    where p.problem is not null
    order by e.position
    limit 1;
    if v_problem is not null then
        raise exception 'record_metrics: %', v_problem using errcode = '22023';
    end if;

    insert into public.system_metrics (
        service_name, metric_type, metric_name, value, unit, tags
    )
    select m.service_name, m.metric_type, m.metric_name, m.value,
        m.unit,
        coalesce(nullif(m.tags, 'null'), '{}')
    from pg_catalog.jsonb_to_recordset(p_metrics) as m (
        service_name text,
        metric_type text,
        metric_name text,
        value double precision,
        unit text,
        tags jsonb
    );
    get diagnostics v_count = row_count;
    return v_count;
end;
$$;
comment on function public.record_metrics(jsonb) is
'Records a batch of metric samples (a JSON array of {service_name, metric_type, metric_name, '
'value, unit?, tags?}, at most 10000) in one statement and returns how many. One bad sample '
'rejects the batch with 22023 naming it, e.g. p_metrics[3].value. service_role only.';
revoke all on function public.record_metrics(jsonb) from public, anon, authenticated;
grant execute on function public.record_metrics(jsonb) to service_role;

-- Services write; only analysts (through monitoring views) and service_role read.
drop policy if exists system_metrics_service_insert on public.system_metrics;
create policy system_metrics_service_insert on public.system_metrics
for insert to service_role
with check (true);
drop policy if exists system_metrics_service_select on public.system_metrics;
create policy system_metrics_service_select on public.system_metrics
for select to service_role
using (true);

-- Monitoring views for the analyst role: recent metrics, partition health, pg_cron job health.
-- Views read the tables with their owner's rights; analyst gets SELECT on the views only.

create or replace view monitoring.recent_metrics_by_service as
select
    s.service_name,
    s.metric_type,
    s.metric_name,
    s.unit,
    s.sample_count,
    s.avg_value,
    s.min_value,
    s.max_value,
    s.percentiles[1] as p50,
    s.percentiles[2] as p95,
    s.percentiles[3] as p99,
    s.first_at,
    s.last_at
from (
    select
        m.service_name,
        m.metric_type,
        m.metric_name,
        m.unit,
        count(*) as sample_count,
        avg(m.value) as avg_value,
        min(m.value) as min_value,
        max(m.value) as max_value,
        -- One sort per group for all three percentiles.
        percentile_cont(array[0.5, 0.95, 0.99]) within group (order by m.value) as percentiles,
        min(m.created_at) as first_at,
        max(m.created_at) as last_at
    from public.system_metrics as m
    -- Bounded on both sides, so the default partition (strays, far-future rows) is pruned.
    where m.created_at > now() - interval '1 hour' and m.created_at <= now()
    group by m.service_name, m.metric_type, m.metric_name, m.unit
) as s;
comment on view monitoring.recent_metrics_by_service is
'Per service, metric type, name and unit over the last hour: sample count, avg, min, max and '
'the 50th, 95th and 99th percentiles (continuous).';
grant select on monitoring.recent_metrics_by_service to analyst;

-- Partitions ------------------------------------------------------------------------------------

create or replace function private.partition_health()
returns table (
    table_name text,
    premake_months integer,
    retention_months integer,
    partitions integer,
    estimated_rows bigint,
    total_bytes bigint,
    default_rows bigint,
    current_month_ready boolean,
    months_ahead integer,
    oldest_partition name,
    oldest_from timestamptz,
    newest_to timestamptz,
    last_maintained_at timestamptz,
    last_error text
)
language plpgsql
stable
security definer
set search_path = ''
set timezone = 'UTC'
as $$
#variable_conflict use_column
declare
    v_table record;
    v_default regclass;
    v_current timestamptz := pg_catalog.date_trunc('month', pg_catalog.now());
begin
    for v_table in
        select
            t.*,
            pg_catalog.to_regclass(pg_catalog.format('%I.%I', t.schema_name, t.table_name))
            as parent
        from private.partitioned_tables as t
        order by t.schema_name, t.table_name
    loop
        table_name := pg_catalog.format('%I.%I', v_table.schema_name, v_table.table_name);
        premake_months := v_table.premake_months;
        retention_months := v_table.retention_months;
        last_maintained_at := v_table.last_maintained_at;
        -- A failure still matters until a later run succeeds.
        last_error := (
            select l.detail from private.partition_maintenance_log as l
            where l.schema_name = v_table.schema_name and l.table_name = v_table.table_name
                and l.action = 'failed'
                and l.created_at >= coalesce(v_table.last_maintained_at, '-infinity')
            order by l.id desc
            limit 1
        );

        -- The children are read once per table; every figure below comes from that one read.
        with children as materialized (
            select c.*, greatest(cl.reltuples, 0)::bigint as estimate
            from private.partition_children(v_table.parent) as c
            inner join pg_catalog.pg_class as cl on c.child = cl.oid
        )
        select
            (select count(*) from children as c where not c.is_default),
            (select sum(c.estimate) from children as c)::bigint,
            (select sum(pg_catalog.pg_total_relation_size(c.child)) from children as c)::bigint,
            (
                select c.table_name from children as c where not c.is_default
                order by c.range_from nulls first limit 1
            ),
            (
                select c.range_from from children as c where not c.is_default
                order by c.range_from nulls first limit 1
            ),
            (select max(c.range_to) from children as c),
            (select c.child from children as c where c.is_default),
            exists (
                select from children as c
                where c.range_from <= v_current and c.range_to >= v_current + interval '1 month'
            ),
            (
                select coalesce(min(g.n), 37) - 1
                from pg_catalog.generate_series(1, 37) as g (n)
                where not exists (
                    select from children as c
                    where c.range_from <= v_current + pg_catalog.make_interval(months => g.n)
                        and c.range_to >= v_current + pg_catalog.make_interval(months => g.n + 1)
                )
            )
        into
            partitions,
            estimated_rows,
            total_bytes,
            oldest_partition,
            oldest_from,
            newest_to,
            v_default,
            current_month_ready,
            months_ahead;

        -- Exact, unlike the estimates: a handful of strays is what an operator looks for.
        default_rows := null;
        if v_default is not null then
            execute pg_catalog.format('select count(*) from %s', v_default) into default_rows;
        end if;
        return next;
    end loop;
end;
$$;
comment on function private.partition_health() is
'One row per managed partitioned table: children, estimated rows, bytes, exact rows in the '
'default partition, whether the current month has its child, months made ahead, oldest child.';
revoke all on function private.partition_health() from public;
grant execute on function private.partition_health() to analyst;

create or replace view monitoring.partition_health as
select
    h.table_name,
    h.premake_months,
    h.retention_months,
    h.partitions,
    h.estimated_rows,
    h.total_bytes,
    pg_catalog.pg_size_pretty(h.total_bytes) as total_size,
    h.default_rows,
    h.current_month_ready,
    h.months_ahead,
    h.oldest_partition,
    h.oldest_from,
    h.newest_to,
    h.last_maintained_at,
    h.last_error
from private.partition_health() as h;
comment on view monitoring.partition_health is
'Each partitioned table under the partition manager: its children, rows (estimated) and size, '
'rows stuck in the default partition (exact), months premade ahead, the oldest child, and the '
'error of the last run if it failed for this table.';
grant select on monitoring.partition_health to analyst;

grant execute on function private.partition_children(regclass) to analyst;

create or replace view monitoring.partition_children as
select
    pg_catalog.format('%I.%I', t.schema_name, t.table_name) as table_name,
    c.table_name as partition_name,
    c.is_default,
    c.range_from,
    c.range_to,
    greatest(cl.reltuples, 0)::bigint as estimated_rows,
    pg_catalog.pg_total_relation_size(c.child) as total_bytes
from private.partitioned_tables as t
cross join
    lateral private.partition_children(
        pg_catalog.to_regclass(pg_catalog.format('%I.%I', t.schema_name, t.table_name))
    ) as c
inner join pg_catalog.pg_class as cl on c.child = cl.oid;
comment on view monitoring.partition_children is
'Every child of the managed partitioned tables with its month bounds, estimated rows and bytes.';
grant select on monitoring.partition_children to analyst;

create or replace view monitoring.partition_maintenance as
select
    pg_catalog.format('%I.%I', l.schema_name, l.table_name) as table_name,
    l.partition_name,
    l.action,
    l.row_count,
    l.detail,
    l.created_at
from private.partition_maintenance_log as l;
comment on view monitoring.partition_maintenance is
'What the partition manager did over the last year: children created and dropped, stray rows '
'moved out of the default partition or purged past retention, and tables it failed to maintain '
'(detail: the error).';
grant select on monitoring.partition_maintenance to analyst;

-- pg_cron ---------------------------------------------------------------------------------------

-- Defined from pg_cron's tables where it is installed; elsewhere with the same columns and no
-- rows, so analysts' queries work on either.
do $$
declare
    v_source text := $source$
        select
            j.jobid,
            j.jobname,
            j.schedule,
            j.command,
            j.database,
            j.active,
            last_run.start_time as last_run_at,
            -- Null unless both ends are finite: subtracting an infinite time is an error.
            case
                when isfinite(last_run.start_time) and isfinite(last_run.end_time)
                    then last_run.end_time - last_run.start_time
            end as last_duration,
            last_run.status as last_status,
            last_run.return_message as last_message,
            coalesce(day.runs, 0) as runs_24h,
            coalesce(day.failures, 0) as failures_24h
        from cron.job as j
        left join lateral (
            select d.start_time, d.end_time, d.status, d.return_message
            from cron.job_run_details as d
            where d.jobid = j.jobid
            order by d.start_time desc nulls last
            limit 1
        ) as last_run on true
        left join lateral (
            select
                count(*) as runs,
                count(*) filter (where d.status = 'failed') as failures
            from cron.job_run_details as d
            where d.jobid = j.jobid and d.start_time > now() - interval '24 hours'
        ) as day on true
    $source$;
begin
    if not exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
        v_source := $source$
            select
                null::bigint as jobid,
                null::text as jobname,
                null::text as schedule,
                null::text as command,
                null::text as database,
                null::boolean as active,
                null::timestamptz as last_run_at,
                null::interval as last_duration,
                null::text as last_status,
                null::text as last_message,
                null::bigint as runs_24h,
                null::bigint as failures_24h
            where false
        $source$;
    end if;
    execute 'create or replace view monitoring.cron_job_health as ' || v_source;
end;
$$;
comment on view monitoring.cron_job_health is
'Each pg_cron job: schedule, command, whether active, its last run (start, duration, status, '
'message) and its runs and failures over the last 24 hours. Empty where pg_cron is absent.';
grant select on monitoring.cron_job_health to analyst;

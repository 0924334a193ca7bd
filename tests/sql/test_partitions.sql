-- The partition manager (supabase/functions-sql/*_partitions.sql) and its registry
-- (private.partitioned_tables). Every run is private.maintain_partitions(p_as_of => ...) at a
-- fixed date, so the months made do not depend on when the suite runs; only the health section
-- also runs as of now() and derives its expectations from now(). Runs as postgres on a fresh clone.
begin;
select plan(90);

-- Literals below are UTC; the manager works in UTC whatever the session says.
set local timezone = 'UTC';

-- Each run's returned rows, kept in order: a run is called once and asserted on many times.
create temp table pm_runs (
    seq bigint generated always as identity,
    label text not null, -- noqa: RF04
    table_name text,
    partition_name text,
    action text, -- noqa: RF04
    row_count bigint
);

create function pg_temp.maintain(p_label text, p_as_of timestamptz)
returns void
language sql
as $$
    insert into pm_runs (label, table_name, partition_name, action, row_count)
    select p_label, r.table_name, r.partition_name, r.action, r.row_count
    from private.maintain_partitions(p_as_of => p_as_of) as r
$$;

-- The log already holds the migration's own run; what this file's runs log comes after it.
create temp table pm_log_mark as
select coalesce(max(l.id), 0) as last_id from private.partition_maintenance_log as l;

-- A table of our own under the manager: no default partition, no children yet.
create table public.pm_probe (
    id bigint generated always as identity,
    body text not null,
    created_at timestamptz not null default now(),
    primary key (id, created_at)
) partition by range (created_at);
create index pm_probe_body on public.pm_probe (body);
select private.enable_audit('public.pm_probe');
-- A row trigger, which Postgres clones onto every partition (the audit's are statement level).
create trigger pm_probe_unchanged before update on public.pm_probe
for each row execute function suppress_redundant_updates_trigger();
insert into private.partitioned_tables (schema_name, table_name, premake_months)
values ('public', 'pm_probe', 2);

-- Nothing grants the API roles tables in partitions today; were a default privilege to, the
-- manager's children must still give them nothing. (The quarter made by hand below gets these.)
alter default privileges in schema partitions
grant select, insert on tables to public, anon, authenticated;

-- The June 2024 run: the system tables ------------------------------------------------------------

select lives_ok(
    $$select pg_temp.maintain('june', '2024-06-15 12:00+00')$$,
    'maintenance as of 2024-06-15 runs'
);

select results_eq(
    $$select r.table_name, r.partition_name, r.action, r.row_count::integer
        from pm_runs as r
       where r.label = 'june' and r.table_name like 'public.system%'
       order by r.seq$$,
    $$values
        ('public.system_audit_logs', 'system_audit_logs_p2024_06', 'created', 0),
        ('public.system_audit_logs', 'system_audit_logs_p2024_07', 'created', 0),
        ('public.system_audit_logs', 'system_audit_logs_p2024_08', 'created', 0),
        ('public.system_audit_logs', 'system_audit_logs_p2024_09', 'created', 0),
        ('public.system_metrics', 'system_metrics_p2024_06', 'created', 0),
        ('public.system_metrics', 'system_metrics_p2024_07', 'created', 0),
        ('public.system_metrics', 'system_metrics_p2024_08', 'created', 0),
        ('public.system_metrics', 'system_metrics_p2024_09', 'created', 0)$$,
    'the system tables get June 2024 and premake_months (3) ahead, and nothing else happens'
);

select results_eq(
    $$select c.partition_name, c.range_from, c.range_to
        from monitoring.partition_children as c
       where c.table_name like 'public.system%'
         and c.range_from >= '2024-01-01' and c.range_from < '2025-01-01'
       order by c.partition_name$$,
    $$select (t.name || '_p' || to_char(m.m, 'YYYY_MM'))::name collate "C", m.m,
             m.m + interval '1 month'
        from (values ('system_audit_logs'), ('system_metrics')) as t (name)
       cross join generate_series(
             '2024-06-01 00:00+00'::timestamptz, '2024-09-01 00:00+00', interval '1 month'
         ) as m (m)
       order by 1$$,
    'each system child is named <table>_pYYYY_MM and bounded by its month (UTC)'
);

select results_eq(
    $$select c.partition_name, c.range_from, c.range_to
        from monitoring.partition_children as c
       where c.is_default
       order by c.partition_name$$,
    $$values
        ('event_store_default'::name, null::timestamptz, null::timestamptz),
        ('pm_probe_default', null, null),
        ('system_audit_logs_default', null, null),
        ('system_metrics_default', null, null),
        ('transactions_default', null, null)$$,
    'every registered table has its default partition, unbounded'
);

select results_eq(
    $$select h.table_name, h.current_month_ready, h.months_ahead >= 2
        from monitoring.partition_health as h
       where h.table_name like 'public.system%'
       order by h.table_name$$,
    $$values ('public.system_audit_logs', true, true), ('public.system_metrics', true, true)$$,
    'the migration''s own run (as of now()) left the current month and the next ones ready'
);

-- The June 2024 run: the probe registered above ---------------------------------------------------

select results_eq(
    $$select r.partition_name, r.action, r.row_count::integer
        from pm_runs as r
       where r.label = 'june' and r.table_name = 'public.pm_probe'
       order by r.seq$$,
    $$values
        ('pm_probe_default', 'created', 0),
        ('pm_probe_p2024_06', 'created', 0),
        ('pm_probe_p2024_07', 'created', 0),
        ('pm_probe_p2024_08', 'created', 0)$$,
    'the probe gets its default partition, June 2024 and premake_months (2) ahead'
);

select results_eq(
    $$select c.schema_name, c.table_name, c.is_default, c.range_from, c.range_to
        from private.partition_children('public.pm_probe') as c
       order by c.range_from nulls last$$,
    $$values
        ('partitions'::name, 'pm_probe_p2024_06'::name, false,
         '2024-06-01 00:00+00'::timestamptz, '2024-07-01 00:00+00'::timestamptz),
        ('partitions', 'pm_probe_p2024_07', false, '2024-07-01 00:00+00', '2024-08-01 00:00+00'),
        ('partitions', 'pm_probe_p2024_08', false, '2024-08-01 00:00+00', '2024-09-01 00:00+00'),
        ('partitions', 'pm_probe_default', true, null, null)$$,
    'the probe''s children live in schema partitions with month bounds'
);

select is(
    (
        select count(*)::integer from pg_catalog.pg_index as i
        where i.indrelid = 'public.pm_probe'::regclass
    ),
    2,
    'the probe has two partitioned indexes: the primary key and pm_probe_body'
);

-- Attached, not merely similar: each child index is a partition of the parent's index.
select results_eq(
    $$select c.table_name,
             count(i.indexrelid)::integer,
             count(i.indexrelid) filter (where exists (
                 select from pg_catalog.pg_inherits as h
                  inner join pg_catalog.pg_index as pi on h.inhparent = pi.indexrelid
                  where h.inhrelid = i.indexrelid and pi.indrelid = 'public.pm_probe'::regclass
             ))::integer
        from private.partition_children('public.pm_probe') as c
        left join pg_catalog.pg_index as i on c.child = i.indrelid
       group by c.table_name
       order by c.table_name$$,
    $$values
        ('pm_probe_default'::name, 2, 2),
        ('pm_probe_p2024_06', 2, 2),
        ('pm_probe_p2024_07', 2, 2),
        ('pm_probe_p2024_08', 2, 2)$$,
    'every probe child, the default included, carries both of the parent''s indexes'
);

select results_eq(
    $$select c.table_name, t.tgname
        from private.partition_children('public.pm_probe') as c
        left join pg_catalog.pg_trigger as t on c.child = t.tgrelid and t.tgparentid <> 0
       order by c.table_name$$,
    $$values
        ('pm_probe_default'::name, 'pm_probe_unchanged'::name),
        ('pm_probe_p2024_06', 'pm_probe_unchanged'),
        ('pm_probe_p2024_07', 'pm_probe_unchanged'),
        ('pm_probe_p2024_08', 'pm_probe_unchanged')$$,
    'every probe child carries a clone of the parent''s row trigger'
);

select results_eq(
    $$select c.table_name, cl.relrowsecurity
        from private.partition_children('public.pm_probe') as c
       inner join pg_catalog.pg_class as cl on c.child = cl.oid
       order by c.table_name$$,
    $$values
        ('pm_probe_default'::name, true),
        ('pm_probe_p2024_06', true),
        ('pm_probe_p2024_07', true),
        ('pm_probe_p2024_08', true)$$,
    'RLS is enabled on every probe child, the default included'
);

select table_privs_are(
    'partitions', 'pm_probe_default', 'anon', array[]::name[],
    'anon has no privilege on the probe''s default partition'
);
select table_privs_are(
    'partitions', 'pm_probe_default', 'authenticated', array[]::name[],
    'authenticated has no privilege on the probe''s default partition'
);
select table_privs_are(
    'partitions', 'pm_probe_p2024_06', 'anon', array[]::name[],
    'anon has no privilege on a probe month'
);
select table_privs_are(
    'partitions', 'pm_probe_p2024_06', 'authenticated', array[]::name[],
    'authenticated has no privilege on a probe month'
);
select schema_privs_are('partitions', 'anon', array[]::name[]);
select schema_privs_are('partitions', 'authenticated', array[]::name[]);

select throws_ok(
    $$select tests.as_role('anon', 'select * from partitions.pm_probe_p2024_06')$$,
    '42501',
    'permission denied for schema partitions',
    'anon selecting a probe month directly is refused'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'select * from partitions.pm_probe_default')$$,
    '42501',
    'permission denied for schema partitions',
    'authenticated selecting the probe''s default partition directly is refused'
);
select throws_ok(
    $$select tests.as_role('anon', 'select * from partitions.system_metrics_p2024_06')$$,
    '42501',
    'permission denied for schema partitions',
    'anon selecting a system_metrics month directly is refused'
);
select throws_ok(
    $$select tests.as_role(
        'authenticated', 'select * from partitions.system_audit_logs_p2024_06'
    )$$,
    '42501',
    'permission denied for schema partitions',
    'authenticated selecting a system_audit_logs month directly is refused'
);

-- Strays: rows for a month without a child --------------------------------------------------------

insert into public.pm_probe (body, created_at) values
('jul-first', '2024-07-01 00:00+00'),
('jul-last', '2024-07-31 23:59:59.999999+00'),
('aug-last', '2024-08-31 23:59:59.999999+00'),
('sep-first', '2024-09-01 00:00+00'),
('sep-mid', '2024-09-15 12:00+00'),
('sep-last', '2024-09-30 23:59:59.999999+00');

select results_eq(
    $$select p.body, p.tableoid::regclass::text from public.pm_probe as p order by p.created_at$$,
    $$values
        ('jul-first', 'partitions.pm_probe_p2024_07'),
        ('jul-last', 'partitions.pm_probe_p2024_07'),
        ('aug-last', 'partitions.pm_probe_p2024_08'),
        ('sep-first', 'partitions.pm_probe_default'),
        ('sep-mid', 'partitions.pm_probe_default'),
        ('sep-last', 'partitions.pm_probe_default')$$,
    'rows for September, which has no child yet, land in the default partition'
);

-- The move must be silent in the audit trail, which only means something if inserts are not.
select is(
    (
        select count(*)::integer from public.system_audit_logs as a
        where a.resource_type = 'public.pm_probe' and a.action = 'insert'
    ),
    6,
    'the probe is audited: its six inserts are in system_audit_logs'
);

create temp table pm_rows_before as
select
    p.id,
    p.body,
    p.created_at
from public.pm_probe as p;
create temp table pm_audit_before as
select count(*) as n from public.system_audit_logs as a
where a.resource_type = 'public.pm_probe';

select lives_ok(
    $$select pg_temp.maintain('july', '2024-07-10 08:00+00')$$,
    'maintenance as of 2024-07-10 runs'
);

select results_eq(
    $$select r.partition_name, r.action, r.row_count::integer
        from pm_runs as r
       where r.label = 'july' and r.table_name = 'public.pm_probe'
       order by r.seq$$,
    $$values ('pm_probe_p2024_09', 'created', 3), ('pm_probe_p2024_09', 'moved', 3)$$,
    'September is created with the three strays moved into it'
);

select results_eq(
    $$select p.body, p.tableoid::regclass::text from public.pm_probe as p order by p.created_at$$,
    $$values
        ('jul-first', 'partitions.pm_probe_p2024_07'),
        ('jul-last', 'partitions.pm_probe_p2024_07'),
        ('aug-last', 'partitions.pm_probe_p2024_08'),
        ('sep-first', 'partitions.pm_probe_p2024_09'),
        ('sep-mid', 'partitions.pm_probe_p2024_09'),
        ('sep-last', 'partitions.pm_probe_p2024_09')$$,
    'the strays now live in September''s child, month boundaries respected'
);

select is_empty(
    $$select from partitions.pm_probe_default$$,
    'the default partition is left empty'
);

select results_eq(
    $$select p.id, p.body, p.created_at from public.pm_probe as p order by p.id$$,
    $$select b.id, b.body, b.created_at from pm_rows_before as b order by b.id$$,
    'no row is lost or changed by the move: same ids, bodies and timestamps'
);

select is(
    (
        select count(*) from public.system_audit_logs as a
        where a.resource_type = 'public.pm_probe'
    ),
    (select b.n from pm_audit_before as b),
    'moving the audited probe''s rows wrote no audit rows'
);

select results_eq(
    $$select l.partition_name, l.action, l.row_count::integer
        from private.partition_maintenance_log as l
       where l.schema_name = 'public' and l.table_name = 'pm_probe'
         and l.partition_name = 'pm_probe_p2024_09'
       order by l.id$$,
    $$values ('pm_probe_p2024_09'::name, 'created', 3), ('pm_probe_p2024_09', 'moved', 3)$$,
    'the log records September created and its three rows moved'
);

select is_empty(
    $$select * from private.maintain_partitions(p_as_of => '2024-07-10 08:00+00')$$,
    'a second run as of the same date does nothing'
);

-- The child is reached through its parent; named directly, even with grants, RLS shows nothing.
grant usage on schema partitions to authenticated;
grant select on partitions.pm_probe_p2024_07 to authenticated;
set local role authenticated;
do $$
begin
    perform set_config(
        'pm_test.visible', (select count(*) from partitions.pm_probe_p2024_07)::text, true
    );
end;
$$;
reset role;
revoke select on partitions.pm_probe_p2024_07 from authenticated;
revoke usage on schema partitions from authenticated;

select results_eq(
    $$select current_setting('pm_test.visible')::integer, count(*)::integer
        from partitions.pm_probe_p2024_07$$,
    $$values (0, 2)$$,
    'a role granted a child anyway sees none of its two rows: RLS is on and has no policy'
);

-- Missed maintenance: the next run comes months later ---------------------------------------------

-- Last run as of July made up to September; October and November rows have nowhere but the
-- default, and so does a far-future row.
insert into public.pm_probe (body, created_at) values
('oct-first', '2024-10-01 00:00+00'),
('oct-a', '2024-10-09 10:00+00'),
('oct-b', '2024-10-20 10:00+00'),
('oct-last', '2024-10-31 23:59:59.999999+00'),
('nov-a', '2024-11-11 11:00+00'),
('far-future', '2099-01-01 00:00+00');
insert into public.system_audit_logs (actor_type, action, resource_type, created_at) values
('system', 'probe', 'pm_test', '2024-11-15 00:00+00'),
('system', 'probe', 'pm_test', '2024-11-30 23:00+00');

select results_eq(
    $$select p.body, p.tableoid::regclass::text
        from public.pm_probe as p
       where p.created_at >= '2024-10-01'
       order by p.created_at$$,
    $$values
        ('oct-first', 'partitions.pm_probe_default'),
        ('oct-a', 'partitions.pm_probe_default'),
        ('oct-b', 'partitions.pm_probe_default'),
        ('oct-last', 'partitions.pm_probe_default'),
        ('nov-a', 'partitions.pm_probe_default'),
        ('far-future', 'partitions.pm_probe_default')$$,
    'October, November and far-future probe rows sit in the default partition'
);
select results_eq(
    $$select a.tableoid::regclass::text
        from public.system_audit_logs as a
       where a.resource_type = 'pm_test'
       order by a.created_at$$,
    $$values ('partitions.system_audit_logs_default'), ('partitions.system_audit_logs_default')$$,
    'November audit rows sit in the audit default partition'
);

truncate pm_rows_before;
insert into pm_rows_before (id, body, created_at)
select
    p.id,
    p.body,
    p.created_at
from public.pm_probe as p;
truncate pm_audit_before;
insert into pm_audit_before
select count(*) from public.system_audit_logs as a
where a.resource_type = 'public.pm_probe';

select lives_ok(
    $$select pg_temp.maintain('december', '2024-12-05 09:00+00')$$,
    'maintenance as of 2024-12-05 runs, despite the audit log''s append-only trigger'
);

select results_eq(
    $$select r.partition_name, r.action, r.row_count::integer
        from pm_runs as r
       where r.label = 'december' and r.table_name = 'public.pm_probe'
       order by r.seq$$,
    $$values
        ('pm_probe_p2024_10', 'created', 4),
        ('pm_probe_p2024_10', 'moved', 4),
        ('pm_probe_p2024_11', 'created', 1),
        ('pm_probe_p2024_11', 'moved', 1),
        ('pm_probe_p2024_12', 'created', 0),
        ('pm_probe_p2025_01', 'created', 0),
        ('pm_probe_p2025_02', 'created', 0)$$,
    'the missed months get children with their strays, then December and 2 months ahead'
);

select results_eq(
    $$select p.body, p.tableoid::regclass::text
        from public.pm_probe as p
       where p.created_at >= '2024-10-01'
       order by p.created_at$$,
    $$values
        ('oct-first', 'partitions.pm_probe_p2024_10'),
        ('oct-a', 'partitions.pm_probe_p2024_10'),
        ('oct-b', 'partitions.pm_probe_p2024_10'),
        ('oct-last', 'partitions.pm_probe_p2024_10'),
        ('nov-a', 'partitions.pm_probe_p2024_11'),
        ('far-future', 'partitions.pm_probe_default')$$,
    'October and November rows moved to their months; the far-future row stays in the default'
);

select results_eq(
    $$select p.id, p.body, p.created_at from public.pm_probe as p order by p.id$$,
    $$select b.id, b.body, b.created_at from pm_rows_before as b order by b.id$$,
    'no row is lost or changed by the catch-up run'
);

select is(
    (
        select count(*) from public.system_audit_logs as a
        where a.resource_type = 'public.pm_probe'
    ),
    (select b.n from pm_audit_before as b),
    'the catch-up moves wrote no audit rows for the audited probe'
);

select results_eq(
    $$select r.partition_name, r.action, r.row_count::integer
        from pm_runs as r
       where r.label = 'december' and r.table_name = 'public.system_audit_logs'
       order by r.seq$$,
    $$values
        ('system_audit_logs_p2024_11', 'created', 2),
        ('system_audit_logs_p2024_11', 'moved', 2),
        ('system_audit_logs_p2024_12', 'created', 0),
        ('system_audit_logs_p2025_01', 'created', 0),
        ('system_audit_logs_p2025_02', 'created', 0),
        ('system_audit_logs_p2025_03', 'created', 0)$$,
    'the audit log''s November strays are moved despite its append-only trigger'
);

select results_eq(
    $$select a.tableoid::regclass::text
        from public.system_audit_logs as a
       where a.resource_type = 'pm_test'
       order by a.created_at$$,
    $$values
        ('partitions.system_audit_logs_p2024_11'),
        ('partitions.system_audit_logs_p2024_11')$$,
    'both audit strays now live in the November child'
);

-- The move switched the exemption on for itself only: the new child is append-only as ever.
select throws_ok(
    $$delete from partitions.system_audit_logs_p2024_11 where resource_type = 'pm_test'$$,
    '42501',
    'system_audit_logs is append-only: delete is not allowed',
    'after maintenance, deleting from the new audit child is refused'
);

select is(
    (
        select h.default_rows from monitoring.partition_health as h
        where h.table_name = 'public.pm_probe'
    ),
    1::bigint,
    'partition_health counts the far-future row waiting in the probe''s default partition'
);

-- A child made by hand that covers several months -------------------------------------------------

create table partitions.pm_probe_2025_q2 partition of public.pm_probe
for values from ('2025-04-01 00:00+00') to ('2025-07-01 00:00+00');

-- 2025-05-01 06:00 in Tokyo is still April in UTC: the run's current month is April, so
-- system_metrics (3 months' retention) keeps January 2025, which as of May it would drop.
set local timezone = 'Asia/Tokyo';
select lives_ok(
    $$select pg_temp.maintain('april', '2025-05-01 06:00+09')$$,
    'maintenance as of April (UTC), whose months the quarter covers, runs without error'
);
set local timezone = 'UTC';

select is_empty(
    $$select from pm_runs as r where r.label = 'april' and r.table_name = 'public.pm_probe'$$,
    'April, May and June are covered by the quarter: nothing is created for the probe'
);
select results_eq(
    $$select r.partition_name, r.action
        from pm_runs as r
       where r.label = 'april' and r.table_name = 'public.system_metrics'
       order by r.seq$$,
    $$values
        ('system_metrics_p2025_04', 'created'),
        ('system_metrics_p2025_05', 'created'),
        ('system_metrics_p2025_06', 'created'),
        ('system_metrics_p2025_07', 'created'),
        ('system_metrics_p2024_09', 'dropped'),
        ('system_metrics_p2024_10', 'dropped'),
        ('system_metrics_p2024_12', 'dropped')$$,
    'system_metrics makes April to July and drops up to December: the as-of month is UTC'
);

select lives_ok(
    $$select pg_temp.maintain('may', '2025-05-10 12:00+00')$$,
    'maintenance as of 2025-05-10 runs'
);
select results_eq(
    $$select r.partition_name, r.action, r.row_count::integer
        from pm_runs as r
       where r.label = 'may' and r.table_name = 'public.pm_probe'
       order by r.seq$$,
    $$values ('pm_probe_p2025_07', 'created', 0)$$,
    'as of May only July is made: May and June are skipped'
);
select results_eq(
    $$select c.table_name, c.range_from, c.range_to
        from private.partition_children('public.pm_probe') as c
       where c.range_from >= '2025-01-01'
       order by c.range_from$$,
    $$values
        ('pm_probe_p2025_01'::name, '2025-01-01 00:00+00'::timestamptz,
         '2025-02-01 00:00+00'::timestamptz),
        ('pm_probe_p2025_02', '2025-02-01 00:00+00', '2025-03-01 00:00+00'),
        ('pm_probe_2025_q2', '2025-04-01 00:00+00', '2025-07-01 00:00+00'),
        ('pm_probe_p2025_07', '2025-07-01 00:00+00', '2025-08-01 00:00+00')$$,
    'the quarter is kept as it was and no month overlapping it was made'
);

-- Retention ---------------------------------------------------------------------------------------

create table public.pm_retained (
    id bigint generated always as identity,
    body text not null,
    created_at timestamptz not null,
    primary key (id, created_at)
) partition by range (created_at);
insert into private.partitioned_tables (
    schema_name, table_name, premake_months, retention_months
)
values ('public', 'pm_retained', 1, 2);

select lives_ok(
    $$select pg_temp.maintain('retention-start', '2025-07-10 12:00+00')$$,
    'maintenance as of 2025-07-10 runs'
);
select results_eq(
    $$select r.partition_name, r.action
        from pm_runs as r
       where r.label = 'retention-start' and r.table_name = 'public.pm_retained'
       order by r.seq$$,
    $$values
        ('pm_retained_default', 'created'),
        ('pm_retained_p2025_07', 'created'),
        ('pm_retained_p2025_08', 'created')$$,
    'the retained table gets its default, July and one month ahead'
);

-- May has no child (a stray older than the cutoff to come); September starts exactly at it.
insert into public.pm_retained (body, created_at) values
('jul-a', '2025-07-05 00:00+00'),
('jul-b', '2025-07-25 00:00+00'),
('aug-last', '2025-08-31 23:59:59.999999+00'),
('stray-may', '2025-05-15 00:00+00'),
('stray-sep-first', '2025-09-01 00:00+00');
-- Dropped children are logged with the planner's estimate; analysed, it is exact.
analyze partitions.pm_retained_p2025_07, partitions.pm_retained_p2025_08;

-- As of November with two months' retention the cutoff is 2025-09-01: July and August go.
select lives_ok(
    $$select pg_temp.maintain('retention', '2025-11-20 12:00+00')$$,
    'maintenance as of 2025-11-20 runs'
);

select results_eq(
    $$select r.partition_name, r.action, r.row_count::integer
        from pm_runs as r
       where r.label = 'retention' and r.table_name = 'public.pm_retained'
       order by r.seq$$,
    $$values
        ('pm_retained_p2025_09', 'created', 1),
        ('pm_retained_p2025_09', 'moved', 1),
        ('pm_retained_p2025_11', 'created', 0),
        ('pm_retained_p2025_12', 'created', 0),
        ('pm_retained_p2025_07', 'dropped', 2),
        ('pm_retained_p2025_08', 'dropped', 1),
        ('pm_retained_default', 'purged', 1)$$,
    'September''s stray is moved, months past retention dropped, the older stray purged'
);

select results_eq(
    $$select c.table_name, c.range_from, c.range_to
        from private.partition_children('public.pm_retained') as c
       order by c.range_from nulls last$$,
    $$values
        ('pm_retained_p2025_09'::name, '2025-09-01 00:00+00'::timestamptz,
         '2025-10-01 00:00+00'::timestamptz),
        ('pm_retained_p2025_11', '2025-11-01 00:00+00', '2025-12-01 00:00+00'),
        ('pm_retained_p2025_12', '2025-12-01 00:00+00', '2026-01-01 00:00+00'),
        ('pm_retained_default', null, null)$$,
    'the children within retention remain'
);

select ok(
    to_regclass('partitions.pm_retained_p2025_07') is null
    and to_regclass('partitions.pm_retained_p2025_08') is null,
    'the children past retention are dropped, not just detached'
);

select results_eq(
    $$select p.body, p.tableoid::regclass::text from public.pm_retained as p order by p.id$$,
    $$values ('stray-sep-first', 'partitions.pm_retained_p2025_09')$$,
    'only the row at the cutoff survives, in its own month'
);

select results_eq(
    $$select l.partition_name, l.action, l.row_count::integer
        from private.partition_maintenance_log as l
       where l.schema_name = 'public' and l.table_name = 'pm_retained'
         and l.action in ('dropped', 'purged')
       order by l.id$$,
    $$values
        ('pm_retained_p2025_07'::name, 'dropped', 2),
        ('pm_retained_p2025_08', 'dropped', 1),
        ('pm_retained_default', 'purged', 1)$$,
    'the log records the drops and the purge with their row counts'
);

-- system_metrics keeps 3 months, system_audit_logs every month. Earlier runs dropped the
-- metrics months before April 2025.
select results_eq(
    $$select r.partition_name
        from pm_runs as r
       where r.label = 'retention' and r.table_name = 'public.system_metrics'
         and r.action = 'dropped'
       order by r.seq$$,
    $$values
        ('system_metrics_p2025_04'),
        ('system_metrics_p2025_05'),
        ('system_metrics_p2025_06'),
        ('system_metrics_p2025_07')$$,
    'as of November 2025 system_metrics (3 months) drops April to July 2025'
);
select results_eq(
    $$select count(*) filter (where c.table_name = 'public.system_audit_logs')::integer,
             count(*) filter (where c.table_name = 'public.system_metrics')::integer
        from monitoring.partition_children as c
       where c.range_to <= '2025-08-01'$$,
    $$values (14, 0)$$,
    'of the months ending by August 2025, system_audit_logs (retention null) keeps all 14 '
    || 'and system_metrics none'
);
select is_empty(
    $$select from pm_runs as r
       where r.table_name = 'public.system_audit_logs' and r.action in ('dropped', 'purged')$$,
    'no run ever dropped or purged anything of system_audit_logs'
);

-- Off the registry, the table is left alone (asserted once the later runs have been).
delete from private.partitioned_tables
where table_name = 'pm_retained';

-- partition_health --------------------------------------------------------------------------------

create table public.pm_health (
    id bigint generated always as identity,
    created_at timestamptz not null,
    primary key (id, created_at)
) partition by range (created_at);
insert into private.partitioned_tables (schema_name, table_name, premake_months)
values ('public', 'pm_health', 2);

select lives_ok(
    $$select pg_temp.maintain('health-past', '2001-01-15 12:00+00')$$,
    'maintenance as of 2001-01-15 runs'
);
insert into public.pm_health (created_at) values
('2001-01-20 00:00+00'),
('2099-03-01 00:00+00'),
('2099-03-02 00:00+00');

select results_eq(
    $$select h.premake_months, h.retention_months, h.partitions, h.default_rows,
             h.current_month_ready, h.months_ahead, h.oldest_partition, h.oldest_from,
             h.newest_to
        from monitoring.partition_health as h
       where h.table_name = 'public.pm_health'$$,
    $$values (2, null::integer, 3, 2::bigint, false, 0, 'pm_health_p2001_01'::name,
              '2001-01-01 00:00+00'::timestamptz, '2001-04-01 00:00+00'::timestamptz)$$,
    'partition_health: three old children, two rows in the default, current month not ready'
);

select lives_ok(
    $$select pg_temp.maintain('now', now())$$,
    'maintenance as of now() runs'
);

select results_eq(
    $$select c.table_name
        from private.partition_children('public.pm_health') as c
       where c.range_from >= date_trunc('month', now())
       order by c.range_from$$,
    $$select ('pm_health_p' || to_char(m.m, 'YYYY_MM'))::name collate "C"
        from generate_series(
             date_trunc('month', now()), date_trunc('month', now()) + interval '2 months',
             interval '1 month'
         ) as m (m)
       order by m.m$$,
    'as of now() the current month and two ahead are made'
);

select results_eq(
    $$select h.partitions, h.default_rows, h.current_month_ready, h.months_ahead,
             h.oldest_partition, h.newest_to, h.last_maintained_at
        from monitoring.partition_health as h
       where h.table_name = 'public.pm_health'$$,
    $$values (6, 2::bigint, true, 2, 'pm_health_p2001_01'::name,
              date_trunc('month', now()) + interval '3 months', now())$$,
    'partition_health: six children, the current month ready, two months ahead'
);

select lives_ok(
    $$select tests.as_role('analyst', 'select * from monitoring.partition_health')$$,
    'analyst reads partition_health'
);

-- A far-future row --------------------------------------------------------------------------------

select lives_ok(
    $$select pg_temp.maintain('far-october', '2098-10-15 12:00+00')$$,
    'maintenance as of 2098-10-15 runs'
);
select results_eq(
    $$select r.partition_name, r.action, r.row_count::integer
        from pm_runs as r
       where r.label = 'far-october' and r.table_name = 'public.pm_probe'
       order by r.seq$$,
    $$values
        ('pm_probe_p2098_10', 'created', 0),
        ('pm_probe_p2098_11', 'created', 0),
        ('pm_probe_p2098_12', 'created', 0)$$,
    'as of October 2098, January 2099 is past the horizon: its row is not moved'
);
select is(
    (
        select h.default_rows from monitoring.partition_health as h
        where h.table_name = 'public.pm_probe'
    ),
    1::bigint,
    'the far-future row is still counted in the probe''s default partition'
);

select lives_ok(
    $$select pg_temp.maintain('far-december', '2098-12-15 12:00+00')$$,
    'maintenance as of 2098-12-15 runs'
);
select results_eq(
    $$select r.partition_name, r.action, r.row_count::integer
        from pm_runs as r
       where r.label = 'far-december' and r.table_name = 'public.pm_probe'
       order by r.seq$$,
    $$values
        ('pm_probe_p2099_01', 'created', 1),
        ('pm_probe_p2099_01', 'moved', 1),
        ('pm_probe_p2099_02', 'created', 0)$$,
    'as of December 2098 January 2099 is within the horizon: made, with the row moved in'
);
select results_eq(
    $$select p.body, p.tableoid::regclass::text
        from public.pm_probe as p
       where p.created_at >= '2099-01-01'$$,
    $$values ('far-future', 'partitions.pm_probe_p2099_01')$$,
    'the far-future row now lives in its month'
);
select is(
    (
        select h.default_rows from monitoring.partition_health as h
        where h.table_name = 'public.pm_probe'
    ),
    0::bigint,
    'the probe''s default partition is empty again'
);

-- Every child the manager made, across all the runs -----------------------------------------------

select is_empty(
    $$select from pm_runs as r
       where r.table_name = 'public.pm_retained'
         and r.label not in ('retention-start', 'retention')$$,
    'no run touched pm_retained once it was taken off the registry'
);

-- The managed tables' children, and the retained table's, except the quarter made by hand.
create temp view pm_children as
select
    p.parent,
    c.child,
    c.table_name
from (
    values
    ('public.system_metrics'::regclass),
    ('public.system_audit_logs'::regclass),
    ('public.pm_probe'::regclass),
    ('public.pm_retained'::regclass),
    ('public.pm_health'::regclass)
) as p (parent)
cross join lateral private.partition_children(p.parent) as c
where c.table_name <> 'pm_probe_2025_q2';

select cmp_ok(
    (select count(*)::integer from pm_children),
    '>=',
    80,
    'the sweep below looks at the children of all the runs (over 80)'
);
select is_empty(
    $$select c.table_name from pm_children as c
       inner join pg_catalog.pg_class as cl on c.child = cl.oid
       where not cl.relrowsecurity$$,
    'RLS is enabled on every child the manager made'
);
select is_empty(
    $$select c.table_name from pm_children as c
       where (select count(*) from pg_catalog.pg_index as i where i.indrelid = c.child)
          <> (select count(*) from pg_catalog.pg_index as i where i.indrelid = c.parent)$$,
    'every child the manager made has as many indexes as its parent'
);
select is_empty(
    $$select c.table_name, r.rolname, p.privilege
        from pm_children as c
       cross join (values ('anon'), ('authenticated')) as r (rolname)
       cross join (
           values ('select'), ('insert'), ('update'), ('delete'), ('truncate'),
                  ('references'), ('trigger')
       ) as p (privilege)
       where has_table_privilege(r.rolname, c.child, p.privilege)
      union all
      select c.table_name, 'public', a.privilege_type
        from pm_children as c
       inner join pg_catalog.pg_class as cl on c.child = cl.oid
       cross join lateral aclexplode(cl.relacl) as a
       where a.grantee = 0$$,
    'anon, authenticated and PUBLIC hold no privilege on any child the manager made'
);

-- What the runs returned is exactly what they logged, in order.
select results_eq(
    $$select format('%I.%I', l.schema_name, l.table_name), l.partition_name, l.action,
             l.row_count
        from private.partition_maintenance_log as l
       where l.id > (select m.last_id from pm_log_mark as m)
       order by l.id$$,
    $$select r.table_name collate "C", r.partition_name::name collate "C", r.action, r.row_count
        from pm_runs as r
       order by r.seq$$,
    'the log holds every returned row of every run, and nothing else'
);

-- Bad registrations -------------------------------------------------------------------------------

create temp table pm_registry_before as
select
    t.schema_name,
    t.table_name,
    t.premake_months,
    t.retention_months
from private.partitioned_tables as t;

select throws_ok(
    $$insert into private.partitioned_tables (schema_name, table_name, premake_months)
      values ('public', 'pm_bad', -1)$$,
    '23514',
    'new row for relation "partitioned_tables" violates check constraint '
    || '"partitioned_tables_premake_range"',
    'premake_months below 0 is refused'
);
select throws_ok(
    $$insert into private.partitioned_tables (schema_name, table_name, premake_months)
      values ('public', 'pm_bad', 37)$$,
    '23514',
    'new row for relation "partitioned_tables" violates check constraint '
    || '"partitioned_tables_premake_range"',
    'premake_months above 36 is refused'
);
select throws_ok(
    $$insert into private.partitioned_tables (schema_name, table_name, retention_months)
      values ('public', 'pm_bad', 0)$$,
    '23514',
    'new row for relation "partitioned_tables" violates check constraint '
    || '"partitioned_tables_retention_positive"',
    'retention_months of 0 is refused'
);
select throws_ok(
    $$insert into private.partitioned_tables (schema_name, table_name, retention_months)
      values ('public', 'pm_bad', -3)$$,
    '23514',
    'new row for relation "partitioned_tables" violates check constraint '
    || '"partitioned_tables_retention_positive"',
    'a negative retention_months is refused'
);
select throws_ok(
    $$update private.partitioned_tables set premake_months = 37
      where schema_name = 'public' and table_name = 'pm_probe'$$,
    '23514',
    'new row for relation "partitioned_tables" violates check constraint '
    || '"partitioned_tables_premake_range"',
    'an existing registration cannot be changed to premake_months above 36'
);
select results_eq(
    $$select t.schema_name, t.table_name, t.premake_months, t.retention_months
        from private.partitioned_tables as t
       order by t.schema_name, t.table_name$$,
    $$select b.schema_name, b.table_name, b.premake_months, b.retention_months
        from pm_registry_before as b
       order by b.schema_name, b.table_name$$,
    'the refused registrations changed nothing'
);
-- The bounds themselves are allowed (names only: no run follows to trip on a missing table).
select lives_ok(
    $$insert into private.partitioned_tables (
          schema_name, table_name, premake_months, retention_months
      )
      values ('public', 'pm_edge_low', 0, 1), ('public', 'pm_edge_high', 36, null)$$,
    'premake_months 0 and 36 and retention_months 1 are accepted'
);

select throws_ok(
    $$insert into private.partitioned_tables (schema_name, table_name)
      values ('public', repeat('t', 56))
    $$,
    '23514',
    'new row for relation "partitioned_tables" violates check constraint '
    || '"partitioned_tables_table_name_length"',
    'a table name too long for its children''s _pYYYY_MM suffix is refused'
);

-- A registration that cannot be maintained --------------------------------------------------------

-- pm_edge_low and pm_edge_high (above) name no table: their runs fail, the others go on.
create table public.pm_after_failure (
    id bigint generated always as identity,
    created_at timestamptz not null,
    primary key (id, created_at)
) partition by range (created_at);
insert into private.partitioned_tables (schema_name, table_name, premake_months)
values ('public', 'pm_after_failure', 0);

select results_eq(
    $$select table_name, partition_name, action
        from private.maintain_partitions('2030-05-10')
       where table_name in ('public.pm_after_failure', 'public.pm_edge_high', 'public.pm_edge_low')
       order by table_name collate "C", partition_name collate "C"$$,
    $$values
        ('public.pm_after_failure', 'pm_after_failure_default', 'created'),
        ('public.pm_after_failure', 'pm_after_failure_p2030_05', 'created'),
        ('public.pm_edge_high', null, 'failed'),
        ('public.pm_edge_low', null, 'failed')$$,
    'a registered table that does not exist fails alone; a table after it is still maintained'
);
select is(
    (
        select detail from private.partition_maintenance_log
        where table_name = 'pm_edge_low' and action = 'failed'
    ),
    'relation "public.pm_edge_low" does not exist',
    'the failure is logged with the error'
);
select is(
    (
        select last_error from monitoring.partition_health
        where table_name = 'public.pm_edge_low'
    ),
    'relation "public.pm_edge_low" does not exist',
    'partition_health shows the failure until a run succeeds'
);

select * from finish();
rollback;

-- The partition manager: monthly children of the tables in private.partitioned_tables, made
-- ahead of time, strays moved out of the default partition, old months dropped. Why not
-- pg_partman: see README.md.

create or replace function private.partition_children(p_parent regclass)
returns table (
    child regclass,
    schema_name name,
    table_name name,
    is_default boolean,
    range_from timestamptz,
    range_to timestamptz
)
language sql
stable
set search_path = ''
set timezone = 'UTC'
as $$
    -- The bounds as Postgres prints them, read back in the same time zone; MINVALUE and
    -- MAXVALUE come out as null (unbounded).
    select
        c.oid::regclass,
        n.nspname,
        c.relname,
        b.bound = 'DEFAULT',
        (pg_catalog.regexp_match(b.bound, 'FROM \(''([^'']*)''\)'))[1]::timestamptz,
        (pg_catalog.regexp_match(b.bound, 'TO \(''([^'']*)''\)'))[1]::timestamptz
    from pg_catalog.pg_inherits as i
    inner join pg_catalog.pg_class as c on i.inhrelid = c.oid
    inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid
    cross join lateral (select pg_catalog.pg_get_expr(c.relpartbound, c.oid) as bound) as b
    where i.inhparent = p_parent
$$;
comment on function private.partition_children(regclass) is
'The direct children of a partitioned table with their range bounds (null when unbounded).';

create or replace function private.copy_truncate_triggers(p_parent regclass, p_child regclass)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_definition text;
begin
    -- Postgres clones a parent's row triggers onto its partitions but not its statement-level
    -- TRUNCATE triggers, and a child can be truncated on its own.
    for v_definition in
        select pg_catalog.pg_get_triggerdef(t.oid)
        from pg_catalog.pg_trigger as t
        where t.tgrelid = p_parent and not t.tgisinternal and t.tgtype & 32 <> 0
    loop
        execute pg_catalog.replace(
            pg_catalog.replace(v_definition, 'CREATE TRIGGER', 'CREATE OR REPLACE TRIGGER'),
            ' ON ' || p_parent::text || ' ',
            ' ON ' || p_child::text || ' '
        );
    end loop;
end;
$$;
comment on function private.copy_truncate_triggers(regclass, regclass) is
'Gives p_child the statement-level TRUNCATE triggers of p_parent (Postgres does not clone them).';

create or replace function private.secure_partition(p_child regclass)
returns void
language plpgsql
set search_path = ''
as $$
begin
    -- A child is reached only through its parent, whose policies apply; with RLS on and no
    -- grants, a child named directly shows nothing even to a role that could find it.
    execute pg_catalog.format('alter table %s enable row level security', p_child);
    execute pg_catalog.format('revoke all on %s from public', p_child);
    if exists (select from pg_catalog.pg_roles where rolname = 'anon') then
        execute pg_catalog.format('revoke all on %s from anon, authenticated', p_child);
    end if;
    perform private.copy_truncate_triggers(
        (select i.inhparent from pg_catalog.pg_inherits as i where i.inhrelid = p_child),
        p_child
    );
end;
$$;
comment on function private.secure_partition(regclass) is
'Enables RLS on a child partition, revokes what PUBLIC and the API roles could hold on it, and '
'gives it the parent''s TRUNCATE triggers.';

create or replace function private.mark_partition_move(p_moving boolean)
returns void
language plpgsql
set search_path = ''
as $$
begin
    -- The setting is the triggers' cheap first test; the row, which only the owner can write,
    -- is what they trust.
    perform pg_catalog.set_config(
        'easymo.partition_maintenance', case when p_moving then 'on' else 'off' end, true
    );
    if p_moving then
        insert into private.partition_moves (txid) values (pg_catalog.txid_current())
        on conflict do nothing;
    else
        delete from private.partition_moves where txid = pg_catalog.txid_current();
    end if;
end;
$$;
comment on function private.mark_partition_move(boolean) is
'Marks (true) or unmarks (false) the current transaction as moving rows between partitions.';

create or replace function private.is_partition_move()
returns boolean
language sql
stable
set search_path = ''
as $$
    select pg_catalog.current_setting('easymo.partition_maintenance', true) = 'on'
        and exists (
            select from private.partition_moves
            where txid = pg_catalog.txid_current_if_assigned()
        )
$$;
comment on function private.is_partition_move() is
'Whether the current transaction is the partition manager moving rows: the audit and '
'append-only triggers let such a move through.';

create or replace function private.create_month_partition(
    p_parent regclass,
    p_default regclass,
    p_month timestamptz
)
returns table (partition_name name, moved bigint)
language plpgsql
set search_path = ''
set timezone = 'UTC'
as $$
#variable_conflict use_column
declare
    v_parent_name name := (select relname from pg_catalog.pg_class where oid = p_parent);
    v_name name := v_parent_name || '_p' || pg_catalog.to_char(p_month, 'YYYY_MM');
    v_child text := pg_catalog.format('partitions.%I', v_name);
    v_from timestamptz := p_month;
    v_to timestamptz := p_month + interval '1 month';
    v_columns text;
    v_moved bigint;
begin
    -- Inserts wait (reads go on) until the month is attached. An insert already routed to the
    -- default partition when the month appears would fail its partition check instead of
    -- waiting, so inserts are held back before routing: at the parent.
    execute pg_catalog.format('lock table %s in share row exclusive mode', p_parent);
    -- Rows of this month already in the default block attaching it: they move first.
    execute pg_catalog.format('lock table %s in access exclusive mode', p_default);

    -- Built beside the parent and attached, rather than CREATE TABLE ... PARTITION OF, which
    -- takes ACCESS EXCLUSIVE on the parent and so would stop its readers too.
    execute pg_catalog.format(
        'create table %s (like %s including defaults including constraints including storage'
        ' including generated including statistics)',
        v_child, p_parent
    );
    -- With this constraint ATTACH need not scan the child for rows outside the month.
    execute pg_catalog.format(
        'alter table %s add constraint %I check (created_at >= %L and created_at < %L)',
        v_child, v_name || '_bounds', v_from, v_to
    );

    select pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by a.attnum)
    into v_columns
    from pg_catalog.pg_attribute as a
    where a.attrelid = p_parent and a.attnum > 0 and not a.attisdropped and a.attgenerated = '';

    -- A move, not a change: the audit and append-only triggers let it through.
    perform private.mark_partition_move(true);
    execute pg_catalog.format(
        'with moved as (delete from %1$s where created_at >= %3$L and created_at < %4$L'
        ' returning %5$s) insert into %2$s (%5$s) select %5$s from moved',
        p_default, v_child, v_from, v_to, v_columns
    );
    get diagnostics v_moved = row_count;
    perform private.mark_partition_move(false);

    execute pg_catalog.format(
        'alter table %s attach partition %s for values from (%L) to (%L)',
        p_parent, v_child, v_from, v_to
    );
    execute pg_catalog.format('alter table %s drop constraint %I', v_child, v_name || '_bounds');
    perform private.secure_partition(v_child::regclass);

    partition_name := v_name;
    moved := v_moved;
    return next;
end;
$$;
comment on function private.create_month_partition(regclass, regclass, timestamptz) is
'Creates the child of p_parent for the month starting p_month (UTC) in schema partitions, '
'moves that month''s rows out of the default partition into it, and attaches it.';

create or replace function private.maintain_table_partitions(
    p_table private.partitioned_tables,
    p_as_of timestamptz
)
returns table (table_name text, partition_name text, action text, row_count bigint)
language plpgsql
set search_path = ''
set timezone = 'UTC'
as $$
#variable_conflict use_column
declare
    v_parent regclass := pg_catalog.format('%I.%I', p_table.schema_name, p_table.table_name);
    v_default regclass;
    v_current timestamptz := pg_catalog.date_trunc('month', p_as_of);
    v_horizon timestamptz := v_current + pg_catalog.make_interval(months => p_table.premake_months);
    v_cutoff timestamptz := v_current - pg_catalog.make_interval(
        months => coalesce(p_table.retention_months, 0)
    );
    v_month timestamptz;
    v_child record;
    v_count bigint;
begin
    table_name := v_parent::text;

    select c.child into v_default from private.partition_children(v_parent) as c where c.is_default;
    if v_default is null then
        execute pg_catalog.format(
            'create table partitions.%I partition of %s default',
            p_table.table_name || '_default', v_parent
        );
        v_default := pg_catalog.format('partitions.%I', p_table.table_name || '_default');
        perform private.secure_partition(v_default);
        partition_name := p_table.table_name || '_default';
        action := 'created';
        row_count := 0;
        return next;
    end if;

    -- The months wanted: the current one and premake_months ahead, and every month that has
    -- strays in the default partition up to that horizon (maintenance that missed a month, or
    -- rows from before the table was managed). Strays past the horizon (a far-future timestamp)
    -- wait in the default until their month comes within it; they never hold the others back.
    for v_month in
        execute pg_catalog.format(
            'select m from pg_catalog.generate_series($1, $2, interval ''1 month'') as m'
            ' union select distinct pg_catalog.date_trunc(''month'', created_at) from %s'
            ' where created_at < $2 + interval ''1 month'' and created_at >= $3'
            ' order by 1',
            v_default
        )
        using v_current, v_horizon,
        case when p_table.retention_months is null then '-infinity' else v_cutoff end
    loop
        continue when exists (
            select from private.partition_children(v_parent) as c
            where not c.is_default
                and coalesce(c.range_from, '-infinity') < v_month + interval '1 month'
                and coalesce(c.range_to, 'infinity') > v_month
        );
        select c.partition_name, c.moved into partition_name, row_count
        from private.create_month_partition(v_parent, v_default, v_month) as c;
        action := 'created';
        return next;
        if row_count > 0 then
            action := 'moved';
            return next;
        end if;
    end loop;

    if p_table.retention_months is not null then
        for v_child in
            select
                c.child,
                c.table_name,
                -- The planner's estimate: counting a month about to go would read all of it.
                case when cl.reltuples >= 0 then cl.reltuples::bigint end as estimate
            from private.partition_children(v_parent) as c
            inner join pg_catalog.pg_class as cl on c.child = cl.oid
            where not c.is_default and c.range_to <= v_cutoff
            order by c.range_to
        loop
            -- DETACH takes the parent briefly; CONCURRENTLY cannot run inside a function.
            execute pg_catalog.format('alter table %s detach partition %s', v_parent, v_child.child);
            execute pg_catalog.format('drop table %s', v_child.child);
            partition_name := v_child.table_name;
            action := 'dropped';
            row_count := v_child.estimate;
            return next;
        end loop;

        perform private.mark_partition_move(true);
        execute pg_catalog.format('delete from %s where created_at < $1', v_default)
        using v_cutoff;
        get diagnostics v_count = row_count;
        perform private.mark_partition_move(false);
        if v_count > 0 then
            partition_name := (select c.relname from pg_catalog.pg_class as c where c.oid = v_default);
            action := 'purged';
            row_count := v_count;
            return next;
        end if;
    end if;
end;
$$;
comment on function private.maintain_table_partitions(private.partitioned_tables, timestamptz) is
'One table''s share of private.maintain_partitions(); returns what it did.';

create or replace function private.maintain_partitions(p_as_of timestamptz default now())
returns table (table_name text, partition_name text, action text, row_count bigint)
language plpgsql
set search_path = ''
set timezone = 'UTC'
as $$
#variable_conflict use_column
declare
    v_table private.partitioned_tables;
    v_logged_before bigint;
    v_error text;
begin
    -- One maintainer at a time: a second run waits here, then finds the work done.
    perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtext('private.maintain_partitions')
    );
    v_logged_before := (select coalesce(max(l.id), 0) from private.partition_maintenance_log as l);

    for v_table in
        select * from private.partitioned_tables order by schema_name, table_name
    loop
        -- One table that cannot be maintained (dropped, renamed, not partitioned) must not
        -- stop the others: its work is undone, the failure logged, and the loop goes on.
        begin
            insert into private.partition_maintenance_log (
                schema_name, table_name, partition_name, action, row_count
            )
            select v_table.schema_name, v_table.table_name, d.partition_name, d.action, d.row_count
            from private.maintain_table_partitions(v_table, p_as_of) as d;
            update private.partitioned_tables as t
            set last_maintained_at = pg_catalog.now()
            where t.schema_name = v_table.schema_name and t.table_name = v_table.table_name;
        exception when others then
            get stacked diagnostics v_error = message_text;
            raise warning 'maintain_partitions: %.% failed: %',
                v_table.schema_name, v_table.table_name, v_error;
            insert into private.partition_maintenance_log (
                schema_name, table_name, action, detail
            )
            values (v_table.schema_name, v_table.table_name, 'failed', v_error);
        end;
    end loop;

    delete from private.partition_maintenance_log as l
    where l.created_at < pg_catalog.now() - interval '1 year';

    return query
    select
        pg_catalog.format('%I.%I', l.schema_name, l.table_name),
        l.partition_name::text,
        l.action,
        l.row_count
    from private.partition_maintenance_log as l
    where l.id > v_logged_before
    order by l.id;
end;
$$;
comment on function private.maintain_partitions(timestamptz) is
'Creates each managed table''s missing monthly children (current month plus premake_months, and '
'months with strays in the default partition), moves strays into them, drops children past '
'retention, logs each action in private.partition_maintenance_log and returns them. A table that '
'fails is logged as failed and the others are maintained. Safe to run beside inserts and beside '
'itself; pg_cron runs it hourly (job maintain-partitions).';

select private.schedule_cron(
    'maintain-partitions', '7 * * * *', 'select private.maintain_partitions()'
);

-- Tables a migration registered get their children now rather than at the next hourly run.
select count(*) from private.maintain_partitions();

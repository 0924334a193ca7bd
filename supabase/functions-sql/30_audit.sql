-- The audit trail: log_audit_event for services, private.audit_row() for tables that opt in
-- with private.enable_audit(), the append-only guard, and who may read what.

create or replace function private.request_correlation_id()
returns text
language plpgsql
stable
set search_path = ''
as $$
-- PostgREST (and the edge's gateway) put the request's headers here, names lower-cased. A
-- header is not an argument a caller can be told about: one longer than an identifier may be
-- is cut to 200 characters, the bound of every correlation id we store.
declare
    v_headers jsonb := nullif(pg_catalog.current_setting('request.headers', true), '')::jsonb;
begin
    return pg_catalog.left(
        coalesce(v_headers ->> 'x-correlation-id', v_headers ->> 'x-request-id'), 200
    );
end;
$$;
comment on function private.request_correlation_id() is
'The calling request''s x-correlation-id header, else its x-request-id, else null; at most its '
'first 200 characters.';

create or replace function private.request_actor(
    out actor_type text,
    out actor_identifier text
)
language plpgsql
stable
set search_path = ''
as $$
-- The API caller's claims when there are any, else the database role (SET ROLE if one is in
-- effect: a SECURITY DEFINER caller runs as its owner, so current_user would say postgres).
declare
    v_claims jsonb := nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb;
begin
    actor_type := case
        when v_claims ->> 'role' = 'service_role' then 'service'
        when v_claims ->> 'sub' is not null then 'user'
        when v_claims ->> 'role' = 'anon' then 'anonymous'
        else 'database'
    end;
    actor_identifier := case actor_type
        when 'service' then coalesce(v_claims ->> 'sub', 'service_role')
        when 'user' then v_claims ->> 'sub'
        when 'database' then coalesce(
            nullif(pg_catalog.current_setting('role'), 'none'), pg_catalog.session_user()
        )
    end;
end;
$$;
comment on function private.request_actor() is
'Who is calling, as the audit log names actors: user and the JWT sub, service, anonymous, or '
'database and the database role in effect.';

create or replace function public.log_audit_event(
    p_actor_type text,
    p_actor_identifier text,
    p_action text,
    p_resource_type text,
    p_resource_id text default null,
    p_metadata jsonb default null,
    p_correlation_id text default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_id bigint;
begin
    if p_actor_type is null
        or p_actor_type not in ('user', 'service', 'system', 'admin', 'anonymous', 'database') then
        raise exception 'log_audit_event: p_actor_type must be one of user, service, system, '
            'admin, anonymous, database (got %)', private.quoted_for_error(p_actor_type, 100)
        using errcode = '22023';
    end if;
    if p_actor_type = 'user' and coalesce(pg_catalog.btrim(p_actor_identifier), '') = '' then
        raise exception 'log_audit_event: p_actor_identifier must name the user when p_actor_type '
            'is user'
        using errcode = '22023';
    end if;
    if coalesce(pg_catalog.btrim(p_action), '') = '' or pg_catalog.char_length(p_action) > 100 then
        raise exception 'log_audit_event: p_action must be 1 to 100 characters'
        using errcode = '22023';
    end if;
    if coalesce(pg_catalog.btrim(p_resource_type), '') = ''
        or pg_catalog.char_length(p_resource_type) > 100 then
        raise exception 'log_audit_event: p_resource_type must be 1 to 100 characters'
        using errcode = '22023';
    end if;
    if pg_catalog.jsonb_typeof(p_metadata) not in ('object', 'null') then
        raise exception 'log_audit_event: p_metadata must be a JSON object, or null'
        using errcode = '22023';
    end if;
    -- The log is append-only: what it takes can never be removed.
    perform private.require_identifier(
        p_actor_identifier, 'log_audit_event', 'p_actor_identifier'
    );
    perform private.require_identifier(p_resource_id, 'log_audit_event', 'p_resource_id');
    perform private.require_json_size(p_metadata, 16384, 'log_audit_event', 'p_metadata');
    perform private.require_identifier(p_correlation_id, 'log_audit_event', 'p_correlation_id');

    insert into public.system_audit_logs (
        actor_type, actor_identifier, action, resource_type, resource_id, metadata, correlation_id
    )
    values (
        p_actor_type,
        p_actor_identifier,
        p_action,
        p_resource_type,
        p_resource_id,
        coalesce(nullif(p_metadata, 'null'), '{}'),
        coalesce(p_correlation_id, private.request_correlation_id())
    )
    returning id into v_id;
    return v_id;
end;
$$;
comment on function public.log_audit_event(text, text, text, text, text, jsonb, text) is
'Appends an event to system_audit_logs and returns its id. p_actor_type is user (then '
'p_actor_identifier is the user id), service, system, admin, anonymous or database; '
'p_correlation_id defaults to the request''s x-correlation-id or x-request-id header. '
'p_action and p_resource_type are 1 to 100 characters, identifiers at most 200, p_metadata a '
'JSON object of at most 16 KB. Bad input is 22023 naming the argument. service_role only.';
revoke all on function public.log_audit_event(
    text, text, text, text, text, jsonb, text
) from public, anon, authenticated;
grant execute on function public.log_audit_event(
    text, text, text, text, text, jsonb, text
) to service_role;

create or replace function private.audit_row()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
-- Statement level, reading the statement's rows from its transition tables: one insert into the
-- log per statement, whatever its number of rows, keeps an audited write near the cost of an
-- unaudited one (a row-level trigger ran a query for every row, at a third of the throughput).
declare
    -- Arguments, set by private.enable_audit: the resource type, the resource id column and the
    -- redaction mask (a JSON object of column: "[redacted]").
    v_resource_type text := tg_argv[0];
    v_id_column text := tg_argv[1];
    v_mask jsonb := tg_argv[2]::jsonb;
    v_claims jsonb := nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb;
    v_headers jsonb := nullif(pg_catalog.current_setting('request.headers', true), '')::jsonb;
    v_correlation_id text := pg_catalog.left(
        coalesce(v_headers ->> 'x-correlation-id', v_headers ->> 'x-request-id'), 200
    );
    v_actor_type text := 'database';
    v_actor text;
begin
    -- Who, as private.request_actor() says it, and the correlation id as
    -- private.request_correlation_id() reads it: inline, because a call to each per audited
    -- statement cost a twentieth of the audited rate.
    if v_claims is not null then
        v_actor_type := case
            when v_claims ->> 'role' = 'service_role' then 'service'
            when v_claims ->> 'sub' is not null then 'user'
            when v_claims ->> 'role' = 'anon' then 'anonymous'
            else 'database'
        end;
        v_actor := case v_actor_type
            when 'service' then coalesce(v_claims ->> 'sub', 'service_role')
            when 'user' then v_claims ->> 'sub'
        end;
    end if;
    if v_actor_type = 'database' then
        v_actor := coalesce(
            nullif(pg_catalog.current_setting('role'), 'none'), pg_catalog.session_user()
        );
    end if;

    -- The subqueries' offset 0 keeps each row's to_jsonb() from being computed once per use.
    if tg_op = 'INSERT' then
        insert into public.system_audit_logs (
            actor_type, actor_identifier, action, resource_type, resource_id, new_data,
            correlation_id
        )
        select
            v_actor_type,
            v_actor,
            'insert',
            v_resource_type,
            r.row_data ->> v_id_column,
            r.row_data || v_mask,
            v_correlation_id
        from (select pg_catalog.to_jsonb(n) as row_data from new_rows as n offset 0) as r;
    elsif tg_op = 'UPDATE' then
        -- Both transition tables hold the statement's rows in the order it changed them (a row
        -- moved to another partition too), so the nth old row and the nth new row are one row's
        -- before and after, whatever its key did.
        insert into public.system_audit_logs (
            actor_type, actor_identifier, action, resource_type, resource_id, old_data,
            new_data, changed_keys, correlation_id
        )
        select
            v_actor_type,
            v_actor,
            'update',
            v_resource_type,
            p.new_data ->> v_id_column,
            p.old_data || v_mask,
            p.new_data || v_mask,
            array(
                select e.key from pg_catalog.jsonb_each(p.new_data) as e
                where e.value is distinct from p.old_data -> e.key
                order by e.key
            ),
            v_correlation_id
        from rows from (
            pg_catalog.unnest(array(select pg_catalog.to_jsonb(t) from old_rows as t)),
            pg_catalog.unnest(array(select pg_catalog.to_jsonb(t) from new_rows as t))
        ) as p (old_data, new_data);
    elsif tg_op = 'DELETE' then
        insert into public.system_audit_logs (
            actor_type, actor_identifier, action, resource_type, resource_id, old_data,
            correlation_id
        )
        select
            v_actor_type,
            v_actor,
            'delete',
            v_resource_type,
            r.row_data ->> v_id_column,
            r.row_data || v_mask,
            v_correlation_id
        from (select pg_catalog.to_jsonb(o) as row_data from old_rows as o offset 0) as r;
    else
        insert into public.system_audit_logs (
            actor_type, actor_identifier, action, resource_type, correlation_id
        )
        values (
            v_actor_type,
            v_actor,
            'truncate',
            v_resource_type,
            v_correlation_id
        );
    end if;
    return null;
end;
$$;
comment on function private.audit_row() is
'Statement-level AFTER trigger writing the rows of each insert, update and delete (from the '
'statement''s transition tables) and each truncate to system_audit_logs: old and new row, '
'changed keys, actor, txid and correlation id. Attach it with private.enable_audit().';

create or replace function private.enable_audit(
    p_table regclass,
    p_redact_columns text[] default '{}'
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_relation record;
    v_missing text;
    v_id_column name;
    v_key name[];
    v_mask jsonb;
    v_arguments text;
begin
    select c.relkind, c.relispartition, pg_catalog.format('%I.%I', n.nspname, c.relname) as name
    into v_relation
    from pg_catalog.pg_class as c
    inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid
    where c.oid = p_table;
    if v_relation.relkind is null or v_relation.relkind not in ('r', 'p') then
        raise exception 'enable_audit: % is not a table', coalesce(p_table::text, 'null')
        using errcode = '22023';
    end if;
    if pg_catalog.pg_partition_root(p_table) = 'public.system_audit_logs'::regclass then
        raise exception 'enable_audit: the audit log cannot audit itself' using errcode = '22023';
    end if;
    -- Changes reach a partition through its parent, whose trigger sees them.
    if v_relation.relispartition then
        raise exception 'enable_audit: % is a partition; audit its partitioned table', p_table
        using errcode = '22023';
    end if;

    -- A misspelt column would not be redacted, and its secret would reach the log.
    select pg_catalog.string_agg(c.name, ', ' order by c.name)
    into v_missing
    from pg_catalog.unnest(coalesce(p_redact_columns, '{}')) as c (name)
    where not exists (
        select from pg_catalog.pg_attribute as a
        where a.attrelid = p_table and a.attname = c.name and a.attnum > 0 and not a.attisdropped
    );
    if v_missing is not null then
        raise exception 'enable_audit: % has no column % to redact', p_table, v_missing
        using errcode = '22023';
    end if;

    -- A log row names its row by column id, else by the first column of the primary key.
    select array(
        select a.attname
        from pg_catalog.pg_index as i
        cross join lateral pg_catalog.unnest(i.indkey) with ordinality as k (attnum, position)
        inner join pg_catalog.pg_attribute as a
            on i.indrelid = a.attrelid and k.attnum = a.attnum
        where i.indrelid = p_table and i.indisprimary
        order by k.position
    )
    into v_key;
    if v_key = '{}' then
        v_key := array(
            select a.attname from pg_catalog.pg_attribute as a
            where a.attrelid = p_table and a.attname = 'id' and a.attnum > 0
                and not a.attisdropped
        );
    end if;
    if v_key = '{}' then
        raise exception 'enable_audit: % has no primary key or id column to tell its rows apart',
            p_table
        using errcode = '22023';
    end if;
    v_id_column := coalesce(
        (
            select a.attname from pg_catalog.pg_attribute as a
            where a.attrelid = p_table and a.attname = 'id' and a.attnum > 0
                and not a.attisdropped
        ),
        v_key[1]
    );

    select coalesce(pg_catalog.jsonb_object_agg(c.name, '[redacted]'), '{}')
    into v_mask
    from pg_catalog.unnest(coalesce(p_redact_columns, '{}')) as c (name);

    select pg_catalog.string_agg(pg_catalog.quote_literal(c.argument), ', ' order by c.position)
    into v_arguments
    from pg_catalog.unnest(
        array[v_relation.name, v_id_column, v_mask::text]
    ) with ordinality as c (argument, position);

    -- The row-level trigger of earlier versions.
    if exists (
        select from pg_catalog.pg_trigger as t
        where t.tgrelid = p_table and t.tgname = 'audit_row'
    ) then
        execute pg_catalog.format('drop trigger audit_row on %s', p_table);
    end if;
    execute pg_catalog.format(
        'create or replace trigger audit_insert after insert on %s'
        ' referencing new table as new_rows'
        ' for each statement execute function private.audit_row(%s)',
        p_table, v_arguments
    );
    execute pg_catalog.format(
        'create or replace trigger audit_update after update on %s'
        ' referencing old table as old_rows new table as new_rows'
        ' for each statement execute function private.audit_row(%s)',
        p_table, v_arguments
    );
    execute pg_catalog.format(
        'create or replace trigger audit_delete after delete on %s'
        ' referencing old table as old_rows'
        ' for each statement execute function private.audit_row(%s)',
        p_table, v_arguments
    );
    execute pg_catalog.format(
        'create or replace trigger audit_truncate after truncate on %s'
        ' for each statement execute function private.audit_row(%s)',
        p_table, v_arguments
    );
    perform private.copy_truncate_triggers(p_table, c.child)
    from private.partition_children(p_table) as c;
end;
$$;
comment on function private.enable_audit(regclass, text[]) is
'Records every insert, update, delete and truncate on p_table in system_audit_logs; the values '
'of p_redact_columns are logged as "[redacted]". p_table needs a primary key or an id column. '
'Writes addressed to a partition directly (only its owner can make them) are not recorded, '
'truncates excepted. Re-running it replaces the settings; run it again after renaming or '
'dropping a redacted column.';

create or replace function private.disable_audit(p_table regclass)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_trigger record;
begin
    if p_table is null then
        raise exception 'disable_audit: p_table must name a table' using errcode = '22023';
    end if;
    -- The table's own triggers (clones on partitions go with them) and its children's copies
    -- of the truncate trigger.
    for v_trigger in
        select t.tgrelid::regclass as on_table, t.tgname
        from pg_catalog.pg_trigger as t
        where t.tgparentid = 0
            and t.tgname in ('audit_row', 'audit_insert', 'audit_update', 'audit_delete',
                'audit_truncate')
            and t.tgrelid in (
                select p_table
                union all
                select c.child from private.partition_children(p_table) as c
            )
    loop
        execute pg_catalog.format('drop trigger %I on %s', v_trigger.tgname, v_trigger.on_table);
    end loop;
end;
$$;
comment on function private.disable_audit(regclass) is
'Stops recording changes to p_table in system_audit_logs.';

-- Append-only ----------------------------------------------------------------------------------

create or replace function private.refuse_audit_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_op = 'DELETE'
        and pg_catalog.current_setting('easymo.partition_maintenance', true) = 'on'
        and private.is_partition_move() then
        return old;
    end if;
    raise exception 'system_audit_logs is append-only: % is not allowed', pg_catalog.lower(tg_op)
    using
        errcode = '42501',
        hint = 'Old months leave by retention (private.partitioned_tables), not by DELETE.';
end;
$$;
comment on function private.refuse_audit_change() is
'Refuses UPDATE, DELETE and TRUNCATE on system_audit_logs, whoever runs them; the partition '
'manager''s moves between partitions excepted.';

-- Row level, so that every child (present and future) gets a clone of the trigger.
create or replace trigger system_audit_logs_append_only
before update or delete on public.system_audit_logs
for each row execute function private.refuse_audit_change();
create or replace trigger system_audit_logs_no_truncate
before truncate on public.system_audit_logs
for each statement execute function private.refuse_audit_change();
-- Children made before this trigger existed get it now; later ones from secure_partition.
select private.copy_truncate_triggers('public.system_audit_logs', c.child)
from private.partition_children('public.system_audit_logs') as c;

-- Who reads -------------------------------------------------------------------------------------

drop policy if exists system_audit_logs_service_insert on public.system_audit_logs;
create policy system_audit_logs_service_insert on public.system_audit_logs
for insert to service_role
with check (true);
drop policy if exists system_audit_logs_service_select on public.system_audit_logs;
create policy system_audit_logs_service_select on public.system_audit_logs
for select to service_role
using (true);
-- The cast outside the sub-select: auth.uid() is then evaluated once per statement (an initplan)
-- in a form linters recognise, as every other policy here writes it.
drop policy if exists system_audit_logs_own_select on public.system_audit_logs;
create policy system_audit_logs_own_select on public.system_audit_logs
for select to authenticated
using (actor_type = 'user' and actor_identifier = (select auth.uid())::text);

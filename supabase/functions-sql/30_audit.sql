-- The audit trail: log_audit_event for services, private.audit_row() for tables that opt in
-- with private.enable_audit(), the append-only guard, and who may read what.

create or replace function private.request_correlation_id()
returns text
language sql
stable
set search_path = ''
as $$
    -- PostgREST (and the edge's gateway) put the request's headers here, names lower-cased.
    select coalesce(h.headers ->> 'x-correlation-id', h.headers ->> 'x-request-id')
    from (
        select nullif(pg_catalog.current_setting('request.headers', true), '')::jsonb as headers
    ) as h
$$;
comment on function private.request_correlation_id() is
'The calling request''s x-correlation-id header, else its x-request-id, else null.';

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
            'admin, anonymous, database (got %)', coalesce(pg_catalog.quote_literal(p_actor_type), 'null')
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
'p_correlation_id defaults to the request''s x-correlation-id or x-request-id header. Bad input '
'is 22023. service_role only.';
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
-- It runs once per audited row, so it keeps to plain expressions, which PL/pgSQL evaluates
-- without starting the executor; only an update's changed keys need a query.
declare
    -- Arguments, set by private.enable_audit: resource type, id column, columns to redact.
    v_redact text[] := tg_argv[2:];
    v_column text;
    v_old jsonb;
    v_new jsonb;
    v_changed text[];
    v_claims text := pg_catalog.current_setting('request.jwt.claims', true);
    v_headers text := pg_catalog.current_setting('request.headers', true);
    v_actor_type text := 'database';
    v_actor text;
    v_correlation_id text;
begin
    -- Rows the partition manager moves between partitions are not changed.
    if pg_catalog.current_setting('easymo.partition_maintenance', true) = 'on'
        and private.is_partition_move() then
        return null;
    end if;

    if tg_op in ('UPDATE', 'DELETE') then
        v_old := pg_catalog.to_jsonb(old);
    end if;
    if tg_op in ('UPDATE', 'INSERT') then
        v_new := pg_catalog.to_jsonb(new);
    end if;
    if tg_op = 'UPDATE' then
        v_changed := array(
            select n.key from pg_catalog.jsonb_each(v_new) as n
            where n.value is distinct from v_old -> n.key
            order by n.key
        );
    end if;
    foreach v_column in array v_redact loop
        if v_old ? v_column then
            v_old := v_old || pg_catalog.jsonb_build_object(v_column, '[redacted]');
        end if;
        if v_new ? v_column then
            v_new := v_new || pg_catalog.jsonb_build_object(v_column, '[redacted]');
        end if;
    end loop;

    -- Who: the API caller's claims when there are any, else the database role (SET ROLE if
    -- one is in effect; this function runs as its owner, so current_user would say postgres).
    if v_claims <> '' then
        v_actor_type := case
            when v_claims::jsonb ->> 'role' = 'service_role' then 'service'
            when v_claims::jsonb ->> 'sub' is not null then 'user'
            when v_claims::jsonb ->> 'role' = 'anon' then 'anonymous'
            else 'database'
        end;
        v_actor := case v_actor_type
            when 'service' then coalesce(v_claims::jsonb ->> 'sub', 'service_role')
            when 'user' then v_claims::jsonb ->> 'sub'
        end;
    end if;
    if v_actor_type = 'database' then
        v_actor := coalesce(
            nullif(pg_catalog.current_setting('role'), 'none'), pg_catalog.session_user()
        );
    end if;
    -- As private.request_correlation_id() reads it, without a call per row.
    if v_headers <> '' then
        v_correlation_id := coalesce(
            v_headers::jsonb ->> 'x-correlation-id', v_headers::jsonb ->> 'x-request-id'
        );
    end if;

    insert into public.system_audit_logs (
        actor_type,
        actor_identifier,
        action,
        resource_type,
        resource_id,
        old_data,
        new_data,
        changed_keys,
        correlation_id
    )
    values (
        v_actor_type,
        v_actor,
        pg_catalog.lower(tg_op),
        tg_argv[0],
        coalesce(v_new, v_old) ->> nullif(tg_argv[1], ''),
        v_old,
        v_new,
        v_changed,
        v_correlation_id
    );
    return null;
end;
$$;
comment on function private.audit_row() is
'AFTER trigger writing each insert, update, delete (row level) and truncate (statement level) '
'to system_audit_logs with old and new row, changed keys, actor, txid and correlation id. '
'Attach it with private.enable_audit().';

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
    v_arguments text;
begin
    select c.relkind, pg_catalog.format('%I.%I', n.nspname, c.relname) as resource_type
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

    -- The resource id: column id, else the first column of the primary key.
    select a.attname
    into v_id_column
    from pg_catalog.pg_attribute as a
    left join pg_catalog.pg_index as i on a.attrelid = i.indrelid and i.indisprimary
    where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped
        and (a.attname = 'id' or a.attnum = i.indkey[0])
    order by a.attname = 'id' desc
    limit 1;

    select pg_catalog.string_agg(pg_catalog.quote_literal(c.name), ', ')
    into v_arguments
    from pg_catalog.unnest(
        array[v_relation.resource_type, coalesce(v_id_column, '')]
        || coalesce(p_redact_columns, '{}')
    ) as c (name);

    execute pg_catalog.format(
        'create or replace trigger audit_row after insert or update or delete on %s'
        ' for each row execute function private.audit_row(%s)',
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
'of p_redact_columns are logged as "[redacted]". Re-running it replaces the settings.';

create or replace function private.disable_audit(p_table regclass)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_table regclass;
begin
    if p_table is null then
        raise exception 'disable_audit: p_table must name a table' using errcode = '22023';
    end if;
    execute pg_catalog.format('drop trigger if exists audit_row on %s', p_table);
    for v_table in
        select p_table
        union all
        select c.child from private.partition_children(p_table) as c
    loop
        execute pg_catalog.format('drop trigger if exists audit_truncate on %s', v_table);
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
drop policy if exists system_audit_logs_own_select on public.system_audit_logs;
create policy system_audit_logs_own_select on public.system_audit_logs
for select to authenticated
using (actor_type = 'user' and actor_identifier = (select auth.uid()::text));

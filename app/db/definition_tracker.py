"""Which file defined which function, view, policy, trigger and cron job, in a scratch database.

`db diff` must drop what a migration once carried and no file declares any longer. The
catalogs alone cannot say that: the runner applies every migration before the files, so a
database it builds holds the stale definition too. So, in a scratch database only, an event
trigger records every object a DDL command creates or replaces, and a row trigger on cron.job
every job scheduled, each with the transaction that did it. Each migration and the repeatable
files run in a transaction of their own whose id their history row carries (its xmin), which
names the file behind each record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from app.db.carried import Drop

SCHEMA = "easymo_definition_tracker"
EVENT_TRIGGER = "easymo_definition_tracker"

_INSTALL = f"""
-- As the foundation migration creates it (which then finds it there): the trigger needs it.
create extension if not exists pg_cron with schema pg_catalog;
create schema {SCHEMA};
create table {SCHEMA}.touched (
    xid xid8 not null default pg_catalog.pg_current_xact_id(),
    classid oid not null,
    objid oid not null
);
create function {SCHEMA}.record_ddl() returns event_trigger language plpgsql as $$
begin
    insert into {SCHEMA}.touched (classid, objid)
    select c.classid, c.objid from pg_catalog.pg_event_trigger_ddl_commands() as c
    where c.command_tag in (
        'CREATE FUNCTION', 'CREATE PROCEDURE', 'CREATE VIEW', 'CREATE MATERIALIZED VIEW',
        'CREATE POLICY', 'ALTER POLICY', 'CREATE TRIGGER'
    );
end;
$$;
create event trigger {EVENT_TRIGGER} on ddl_command_end execute function {SCHEMA}.record_ddl();
create function {SCHEMA}.record_job() returns trigger language plpgsql as $$
begin
    insert into {SCHEMA}.touched (classid, objid)
    values ('cron.job'::regclass, new.jobid);
    return new;
end;
$$;
create trigger easymo_definition_tracker after insert or update on cron.job
for each row execute function {SCHEMA}.record_job();
"""

# Objects touched only by migrations that carried functions-sql, still there after the files
# ran, and touched neither by the files nor by a hand-written migration.
_STALE = f"""
with origin as (
    select t.classid, t.objid,
        case
            when m.version is null then 'functions'
            when m.version = any(%(generated)s) then 'carried'
            else 'written'
        end as source
    from {SCHEMA}.touched as t
    left join supabase_migrations.schema_migrations as m
        on m.xmin::text = (t.xid::text::bigint %% 4294967296)::text
),
stale as (
    select classid, objid from origin
    group by classid, objid
    having pg_catalog.bool_and(source = 'carried')
)
select 1 as step, 'cron job ' || j.jobname,
    'select private.unschedule_cron(' || pg_catalog.quote_literal(j.jobname) || ');'
from stale as s join cron.job as j on s.classid = 'cron.job'::regclass and j.jobid = s.objid
union all
select 2, 'trigger ' || quote_ident(t.tgname) || ' on ' || t.tgrelid::regclass::text,
    'drop trigger if exists ' || quote_ident(t.tgname) || ' on ' || t.tgrelid::regclass::text
    || ';'
from stale as s join pg_catalog.pg_trigger as t
    on s.classid = 'pg_trigger'::regclass and t.oid = s.objid
union all
select 2, 'policy ' || quote_ident(p.polname) || ' on ' || p.polrelid::regclass::text,
    'drop policy if exists ' || quote_ident(p.polname) || ' on ' || p.polrelid::regclass::text
    || ';'
from stale as s join pg_catalog.pg_policy as p
    on s.classid = 'pg_policy'::regclass and p.oid = s.objid
union all
select 3, 'view ' || c.oid::regclass::text,
    'drop ' || case c.relkind when 'm' then 'materialized view' else 'view' end
    || ' if exists ' || c.oid::regclass::text || ';'
from stale as s join pg_catalog.pg_class as c
    on s.classid = 'pg_class'::regclass and c.oid = s.objid
union all
select 4, 'function ' || p.oid::regprocedure::text,
    'drop ' || case p.prokind when 'p' then 'procedure' else 'function' end
    || ' if exists ' || p.pronamespace::regnamespace::text || '.' || quote_ident(p.proname)
    || '(' || coalesce((
        select pg_catalog.string_agg(pg_catalog.format_type(a.t, null), ', ' order by a.n)
        from unnest(p.proargtypes::oid[]) with ordinality as a (t, n)
    ), '') || ');'
from stale as s join pg_catalog.pg_proc as p
    on s.classid = 'pg_proc'::regclass and p.oid = s.objid
order by 1, 2
"""


def install(conn: psycopg.Connection[Any]) -> None:
    """Into an empty scratch database that pg_cron serves, before the migrations run (needs a
    superuser)."""
    conn.execute(_INSTALL)  # type: ignore[arg-type]  # our own text


def stale_definitions(conn: psycopg.Connection[Any], generated: Sequence[str]) -> list[Drop]:
    """After migrations and files ran: drops for what only the generated migrations define."""
    with conn.transaction():
        conn.execute("set local search_path = pg_catalog")
        rows = conn.execute(_STALE, {"generated": list(generated)}).fetchall()  # type: ignore[arg-type]
    return [Drop(statement, f"{what}: no longer declared") for _, what, statement in rows]

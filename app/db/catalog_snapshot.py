"""What a database defines, read from its catalogs, in a form two databases can be compared by.

A database built from supabase/migrations/ alone (what `supabase db push` deploys) must define
exactly what our runner builds (migrations, then supabase/functions-sql/). Comparing catalogs,
not SQL text, is what makes that claim checkable: two files can differ and define the same
thing, and one file can define different things depending on what ran before it.

Only the project's own objects count: system schemas, objects that belong to an extension, the
migration history, and what a test harness adds (schema `tests`) are left out. Object ids and
anything else that differs between two builds of the same definitions (a cron job's id) are
left out too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

# Schemas that are not the project's: the system's, the migration history (the Supabase CLI
# keeps its own there), pg_cron's and the pgTAP helpers' of the test harness.
IGNORED_SCHEMAS = (
    "pg_catalog",
    "information_schema",
    "pg_toast",
    "supabase_migrations",
    "cron",
    "tests",
)

_PROJECT_SCHEMAS = """
    select n.oid from pg_catalog.pg_namespace as n
    where n.nspname <> all (%(ignored)s)
        and n.nspname not like 'pg\\_temp\\_%%'
        and n.nspname not like 'pg\\_toast\\_temp\\_%%'
        and not exists (
            select from pg_catalog.pg_depend as d
            where d.classid = 'pg_catalog.pg_namespace'::regclass
                and d.objid = n.oid and d.deptype = 'e'
        )
"""


def _not_in_extension(catalog: str, oid: str) -> str:
    return (
        "not exists (select from pg_catalog.pg_depend as member"
        f" where member.classid = 'pg_catalog.{catalog}'::regclass and member.objid = {oid}"
        " and member.deptype = 'e')"
    )


def _sorted_acl(column: str) -> str:
    return f"(select pg_catalog.array_agg(a::text order by a::text) from unnest({column}) as a)"


# Each query yields (kind, key, fields): kind names the sort of object, key names the object
# as a reader would (schema-qualified), fields is a json object of what defines it.
_QUERIES: tuple[str, ...] = (
    f"""
    select 'schema', n.nspname, jsonb_build_object(
        'owner', pg_catalog.pg_get_userbyid(n.nspowner),
        'acl', {_sorted_acl("n.nspacl")},
        'comment', pg_catalog.obj_description(n.oid, 'pg_namespace'))
    from pg_catalog.pg_namespace as n where n.oid in (select oid from project_schemas)
    """,
    """
    select 'extension', x.extname, jsonb_build_object(
        'version', x.extversion, 'schema', x.extnamespace::regnamespace::text)
    from pg_catalog.pg_extension as x
    where x.extname <> all (%(ignored_extensions)s)
    """,
    f"""
    select 'function', p.oid::regprocedure::text, jsonb_build_object(
        'kind', p.prokind,
        'arguments', pg_catalog.pg_get_function_arguments(p.oid),
        'result', pg_catalog.pg_get_function_result(p.oid),
        'language', l.lanname,
        'body', p.prosrc,
        'sql body', case when p.prosqlbody is not null
            then pg_catalog.pg_get_function_sqlbody(p.oid) end,
        'volatility', p.provolatile,
        'security definer', p.prosecdef,
        'strict', p.proisstrict,
        'leakproof', p.proleakproof,
        'parallel', p.proparallel,
        'cost', p.procost,
        'rows', p.prorows,
        'config', p.proconfig,
        'owner', pg_catalog.pg_get_userbyid(p.proowner),
        'acl', {_sorted_acl("p.proacl")},
        'comment', pg_catalog.obj_description(p.oid, 'pg_proc'))
    from pg_catalog.pg_proc as p
    join pg_catalog.pg_language as l on l.oid = p.prolang
    where p.pronamespace in (select oid from project_schemas)
        and {_not_in_extension("pg_proc", "p.oid")}
    """,
    f"""
    select 'relation', c.oid::regclass::text, jsonb_build_object(
        'kind', c.relkind,
        'persistence', c.relpersistence,
        'owner', pg_catalog.pg_get_userbyid(c.relowner),
        'acl', {_sorted_acl("c.relacl")},
        'row security', c.relrowsecurity,
        'forced row security', c.relforcerowsecurity,
        'options', c.reloptions,
        'partition key', case when c.relkind = 'p'
            then pg_catalog.pg_get_partkeydef(c.oid) end,
        'partition of', (select i.inhparent::regclass::text from pg_catalog.pg_inherits as i
            where i.inhrelid = c.oid),
        'partition bound', pg_catalog.pg_get_expr(c.relpartbound, c.oid),
        'view definition', case when c.relkind in ('v', 'm')
            then pg_catalog.pg_get_viewdef(c.oid) end,
        'sequence', (select jsonb_build_object(
                'type', s.seqtypid::regtype::text, 'start', s.seqstart,
                'increment', s.seqincrement, 'min', s.seqmin, 'max', s.seqmax,
                'cache', s.seqcache, 'cycle', s.seqcycle)
            from pg_catalog.pg_sequence as s where s.seqrelid = c.oid),
        'comment', pg_catalog.obj_description(c.oid, 'pg_class'))
    from pg_catalog.pg_class as c
    where c.relnamespace in (select oid from project_schemas)
        and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f', 'c')
        and {_not_in_extension("pg_class", "c.oid")}
    """,
    f"""
    select 'column', c.oid::regclass::text || '.' || quote_ident(a.attname), jsonb_build_object(
        'position', a.attnum,
        'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
        'not null', a.attnotnull,
        'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),
        'identity', a.attidentity,
        'generated', a.attgenerated,
        'collation', case when a.attcollation <> t.typcollation
            then a.attcollation::regcollation::text end,
        'acl', {_sorted_acl("a.attacl")},
        'comment', pg_catalog.col_description(c.oid, a.attnum))
    from pg_catalog.pg_class as c
    join pg_catalog.pg_attribute as a on a.attrelid = c.oid and a.attnum > 0
        and not a.attisdropped
    join pg_catalog.pg_type as t on t.oid = a.atttypid
    left join pg_catalog.pg_attrdef as d on d.adrelid = c.oid and d.adnum = a.attnum
    where c.relnamespace in (select oid from project_schemas)
        and c.relkind in ('r', 'p', 'v', 'm', 'f', 'c')
        and {_not_in_extension("pg_class", "c.oid")}
    """,
    f"""
    select 'constraint',
        quote_ident(k.conname) || ' on '
            || coalesce(k.conrelid::regclass::text, k.contypid::regtype::text),
        jsonb_build_object(
            'definition', pg_catalog.pg_get_constraintdef(k.oid),
            'deferrable', k.condeferrable,
            'deferred', k.condeferred,
            'comment', pg_catalog.obj_description(k.oid, 'pg_constraint'))
    from pg_catalog.pg_constraint as k
    where k.connamespace in (select oid from project_schemas)
        and {_not_in_extension("pg_constraint", "k.oid")}
        and (k.conrelid = 0 or {_not_in_extension("pg_class", "k.conrelid")})
    """,
    f"""
    select 'index', c.oid::regclass::text, jsonb_build_object(
        'definition', pg_catalog.pg_get_indexdef(c.oid),
        'comment', pg_catalog.obj_description(c.oid, 'pg_class'))
    from pg_catalog.pg_class as c
    join pg_catalog.pg_index as i on i.indexrelid = c.oid
    where c.relnamespace in (select oid from project_schemas)
        and {_not_in_extension("pg_class", "i.indrelid")}
    """,
    """
    select 'trigger', quote_ident(t.tgname) || ' on ' || t.tgrelid::regclass::text,
        jsonb_build_object(
            'definition', pg_catalog.pg_get_triggerdef(t.oid),
            'enabled', t.tgenabled,
            'comment', pg_catalog.obj_description(t.oid, 'pg_trigger'))
    from pg_catalog.pg_trigger as t
    join pg_catalog.pg_class as c on c.oid = t.tgrelid
    where not t.tgisinternal and c.relnamespace in (select oid from project_schemas)
    """,
    """
    select 'policy', quote_ident(p.polname) || ' on ' || p.polrelid::regclass::text,
        jsonb_build_object(
            'command', p.polcmd,
            'permissive', p.polpermissive,
            'roles', (select pg_catalog.array_agg(
                    case when r = 0 then 'public' else pg_catalog.pg_get_userbyid(r)::text end
                    order by 1)
                from unnest(p.polroles) as r),
            'using', pg_catalog.pg_get_expr(p.polqual, p.polrelid),
            'with check', pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid),
            'comment', pg_catalog.obj_description(p.oid, 'pg_policy'))
    from pg_catalog.pg_policy as p
    join pg_catalog.pg_class as c on c.oid = p.polrelid
    where c.relnamespace in (select oid from project_schemas)
    """,
    f"""
    select 'type', t.oid::regtype::text, jsonb_build_object(
        'kind', t.typtype,
        'labels', (select pg_catalog.array_agg(e.enumlabel::text order by e.enumsortorder)
            from pg_catalog.pg_enum as e where e.enumtypid = t.oid),
        'base type', case when t.typtype = 'd'
            then pg_catalog.format_type(t.typbasetype, t.typtypmod) end,
        'not null', t.typnotnull,
        'default', t.typdefault,
        'owner', pg_catalog.pg_get_userbyid(t.typowner),
        'acl', {_sorted_acl("t.typacl")},
        'comment', pg_catalog.obj_description(t.oid, 'pg_type'))
    from pg_catalog.pg_type as t
    where t.typnamespace in (select oid from project_schemas)
        and t.typtype in ('e', 'd', 'r', 'b')
        and t.typelem = 0
        and {_not_in_extension("pg_type", "t.oid")}
    """,
    f"""
    select 'default privileges',
        pg_catalog.pg_get_userbyid(d.defaclrole) || ' in '
            || coalesce(d.defaclnamespace::regnamespace::text, 'every schema')
            || ' on ' || d.defaclobjtype::text,
        jsonb_build_object('acl', {_sorted_acl("d.defaclacl")})
    from pg_catalog.pg_default_acl as d
    where d.defaclnamespace = 0 or d.defaclnamespace in (select oid from project_schemas)
    """,
    f"""
    select 'event trigger', e.evtname, jsonb_build_object(
        'event', e.evtevent,
        'function', e.evtfoid::regprocedure::text,
        'enabled', e.evtenabled,
        'tags', e.evttags)
    from pg_catalog.pg_event_trigger as e
    where e.evtname <> all (%(ignored_event_triggers)s)
        and {_not_in_extension("pg_event_trigger", "e.oid")}
    """,
)

# Not the job's database: cron.schedule names the one pg_cron serves, the same for both ways
# to deploy, but not for a copy of a database (CREATE DATABASE ... TEMPLATE) such as a test's.
_CRON_JOBS = """
    select 'cron job', coalesce(j.jobname, j.command) || ' as ' || j.username,
        jsonb_build_object('schedule', j.schedule, 'command', j.command, 'active', j.active)
    from cron.job as j
"""

# Extensions a test harness installs (pgTAP) are not part of the project's definitions.
IGNORED_EXTENSIONS = ("pgtap",)


@dataclass(frozen=True)
class Snapshot:
    """(kind, key) -> the fields that define that object."""

    objects: dict[tuple[str, str], dict[str, Any]]


def take_snapshot(
    conn: psycopg.Connection[Any],
    *,
    ignored_schemas: Iterable[str] = (),
    ignored_event_triggers: Iterable[str] = (),
) -> Snapshot:
    """Read on `conn`; names are printed schema-qualified (search_path is pg_catalog for it).
    The ignored_ arguments leave out more: what a tool installs in a scratch database."""
    params = {
        "ignored": [*IGNORED_SCHEMAS, *ignored_schemas],
        "ignored_extensions": list(IGNORED_EXTENSIONS),
        "ignored_event_triggers": list(ignored_event_triggers),
    }
    queries = list(_QUERIES)
    if _has_cron(conn):
        queries.append(_CRON_JOBS)
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    with conn.transaction():
        conn.execute("set local search_path = pg_catalog")
        for query in queries:
            text = f"with project_schemas as ({_PROJECT_SCHEMAS}) {query}"
            for kind, key, fields in conn.execute(text, params):  # type: ignore[arg-type]
                objects[(kind, key)] = fields
    return Snapshot(objects)


def _has_cron(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("select to_regclass('cron.job') is not null").fetchone()
    return bool(row and row[0])


def compare(left: Snapshot, right: Snapshot, left_name: str, right_name: str) -> list[str]:
    """One readable line per object that differs, in a stable order; empty when equal."""
    lines: list[str] = []
    for kind, key in sorted(left.objects.keys() | right.objects.keys()):
        mine, theirs = left.objects.get((kind, key)), right.objects.get((kind, key))
        if mine is None:
            lines.append(f"{kind} {key}: missing in {left_name}")
        elif theirs is None:
            lines.append(f"{kind} {key}: missing in {right_name}")
        elif mine != theirs:
            fields = sorted(
                name for name in mine.keys() | theirs.keys() if mine.get(name) != theirs.get(name)
            )
            verb = "differs" if len(fields) == 1 else "differ"
            lines.append(f"{kind} {key}: {', '.join(fields)} {verb}")
    return lines

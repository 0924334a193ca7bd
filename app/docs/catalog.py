"""What the API reference reads from a migrated database's catalog: the functions the API serves
(their arguments, result, comment, body and who may execute them), every function they can reach,
the triggers on the tables they write, and the tables and views of the API and monitoring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

API_ROLES = ("anon", "authenticated", "service_role")
ANALYST = "analyst"
MONITORING = "monitoring"
# Where the helpers an RPC calls live; a call into an extension's schema raises nothing of ours.
INTERNAL_SCHEMAS = ("private",)

_NOT_AN_EXTENSION_MEMBER = """
not exists (
    select from pg_catalog.pg_depend as d
    where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass and d.objid = p.oid
        and d.deptype = 'e'
)
"""

_FUNCTIONS_SQL = f"""
select
    n.nspname as schema,
    p.proname as name,
    pg_catalog.pg_get_function_identity_arguments(p.oid) as identity,
    pg_catalog.pg_get_function_result(p.oid) as returns,
    coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '') as comment,
    pg_catalog.pg_get_functiondef(p.oid) as definition,
    p.provolatile as volatility,
    p.prosecdef as security_definer,
    n.nspname = any(%(exposed)s) as exposed,
    array(
        select r.role from unnest(%(roles)s::text[]) as r (role)
        where pg_catalog.has_function_privilege(r.role, p.oid, 'execute')
            and pg_catalog.has_schema_privilege(r.role, n.oid, 'usage')
        order by r.role
    ) as executable_by,
    array(
        select pg_catalog.jsonb_build_object(
            'name', coalesce(p.proargnames[a.i], ''),
            'type', pg_catalog.format_type(a.type, null),
            'mode', coalesce(p.proargmodes[a.i]::text, 'i'),
            'default', pg_catalog.pg_get_function_arg_default(p.oid, a.i::integer)
        )
        from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as a (type, i)
        order by a.i
    ) as arguments
from pg_catalog.pg_proc as p
inner join pg_catalog.pg_namespace as n on p.pronamespace = n.oid
where n.nspname = any(%(schemas)s) and p.prokind = 'f' and {_NOT_AN_EXTENSION_MEMBER}
order by 1, 2, 3
"""

_TRIGGERS_SQL = """
select
    n.nspname || '.' || c.relname as relation,
    fn.nspname || '.' || f.proname as function,
    array_remove(
        array[
            case when t.tgtype & 4 <> 0 then 'insert' end,
            case when t.tgtype & 8 <> 0 then 'delete' end,
            case when t.tgtype & 16 <> 0 then 'update' end,
            case when t.tgtype & 32 <> 0 then 'truncate' end
        ],
        null
    ) as events
from pg_catalog.pg_trigger as t
inner join pg_catalog.pg_class as c on t.tgrelid = c.oid
inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid
inner join pg_catalog.pg_proc as f on t.tgfoid = f.oid
inner join pg_catalog.pg_namespace as fn on f.pronamespace = fn.oid
where not t.tgisinternal and t.tgparentid = 0 and n.nspname = any(%(schemas)s)
order by 1, 2
"""

_RELATIONS_SQL = """
select
    n.nspname as schema,
    c.relname as name,
    case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
        when 'p' then 'partitioned table' else 'table' end as kind,
    c.relrowsecurity as rls,
    coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '') as comment,
    pg_catalog.jsonb_object_agg(
        r.role,
        array(
            select
                case when pg_catalog.has_table_privilege(r.role, c.oid, v.privilege)
                    then v.privilege else v.privilege || ' (columns)' end
            from unnest(array['select', 'insert', 'update', 'delete'])
                with ordinality as v (privilege, i)
            where pg_catalog.has_schema_privilege(r.role, n.oid, 'usage')
                and (
                    pg_catalog.has_table_privilege(r.role, c.oid, v.privilege)
                    or v.privilege <> 'delete'
                    and pg_catalog.has_any_column_privilege(r.role, c.oid, v.privilege)
                )
            order by v.i
        )
    ) as privileges
from pg_catalog.pg_class as c
inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid
cross join unnest(%(roles)s::text[]) as r (role)
where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p', 'v', 'm', 'f')
    and not c.relispartition
group by n.oid, n.nspname, c.oid, c.relname, c.relkind, c.relrowsecurity
order by 1, 2
"""


@dataclass(frozen=True)
class Argument:
    name: str
    type: str
    mode: str  # i (in), o (out), b (inout), v (variadic), t (table column)
    default: str | None

    @property
    def is_input(self) -> bool:
        return self.mode in ("i", "b", "v")


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    identity: str
    returns: str
    comment: str
    definition: str
    volatility: str  # i, s or v
    security_definer: bool
    exposed: bool
    executable_by: tuple[str, ...]
    arguments: tuple[Argument, ...]

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def inputs(self) -> tuple[Argument, ...]:
        return tuple(a for a in self.arguments if a.is_input)


@dataclass(frozen=True)
class Trigger:
    function: str  # "schema.name"
    events: frozenset[str]  # insert, update, delete, truncate


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str
    kind: str
    rls: bool
    comment: str
    privileges: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Catalog:
    functions: tuple[Function, ...]  # the exposed ones and every one in INTERNAL_SCHEMAS
    triggers: dict[str, tuple[Trigger, ...]]  # by "schema.table"
    relations: tuple[Relation, ...]

    @property
    def exposed(self) -> tuple[Function, ...]:
        return tuple(f for f in self.functions if f.exposed)


def read_catalog(conn: psycopg.Connection[Any], exposed_schemas: Sequence[str]) -> Catalog:
    exposed = sorted(set(exposed_schemas))
    function_schemas = sorted({*exposed, *INTERNAL_SCHEMAS})
    relation_schemas = sorted({*exposed, MONITORING})
    roles = _existing_roles(conn, (*API_ROLES, ANALYST))
    # Names in results, defaults and bodies come out schema-qualified whatever the caller's
    # search_path, so every database and connection writes the same reference.
    conn.execute("select pg_catalog.set_config('search_path', '', false)")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _FUNCTIONS_SQL,
            {"schemas": function_schemas, "exposed": exposed, "roles": list(API_ROLES)},
        )
        functions = tuple(_function(row) for row in cur.fetchall())
        cur.execute(_TRIGGERS_SQL, {"schemas": function_schemas})
        triggers: dict[str, list[Trigger]] = {}
        for row in cur.fetchall():
            trigger = Trigger(row["function"], frozenset(row["events"]))
            triggers.setdefault(row["relation"], []).append(trigger)
        cur.execute(_RELATIONS_SQL, {"schemas": relation_schemas, "roles": roles})
        relations = tuple(_relation(row) for row in cur.fetchall())
    return Catalog(functions, {k: tuple(v) for k, v in triggers.items()}, relations)


def _existing_roles(conn: psycopg.Connection[Any], roles: Sequence[str]) -> list[str]:
    rows = conn.execute(
        "select rolname from pg_catalog.pg_roles where rolname = any(%s) order by 1", (list(roles),)
    ).fetchall()
    return [row[0] for row in rows]


def _function(row: dict[str, Any]) -> Function:
    arguments = tuple(
        Argument(a["name"], a["type"], a["mode"], a["default"]) for a in row["arguments"]
    )
    return Function(
        schema=row["schema"],
        name=row["name"],
        identity=row["identity"],
        returns=row["returns"],
        comment=row["comment"],
        definition=row["definition"],
        volatility=row["volatility"],
        security_definer=row["security_definer"],
        exposed=row["exposed"],
        executable_by=tuple(row["executable_by"]),
        arguments=arguments,
    )


def _relation(row: dict[str, Any]) -> Relation:
    privileges = {role: tuple(granted) for role, granted in row["privileges"].items()}
    return Relation(row["schema"], row["name"], row["kind"], row["rls"], row["comment"], privileges)

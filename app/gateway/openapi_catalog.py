"""What the OpenAPI description lists: the exposed schema's tables, views and functions that a
role holds a privilege on (PostgREST's default `openapi-mode = follow-privileges`), with their
columns, arguments, types and `comment on` texts, read from the catalogs on every request so the
description is never staler than the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

# One type as the description needs it: its name as Postgres spells it (PostgREST's `format`),
# what a domain stands for and the CHECKs it adds, an array's element, an enum's labels.
_TYPE_INFO = """
pg_catalog.jsonb_build_object(
    'name', pg_catalog.format_type(ty.oid, null),
    'base', pg_catalog.format_type(coalesce(nullif(ty.typbasetype, 0), ty.oid), null),
    'element', pg_catalog.format_type(nullif(base_ty.typelem, 0), null),
    'is_array', base_ty.typcategory = 'A',
    'labels', array(
        select e.enumlabel from pg_catalog.pg_enum as e
        where e.enumtypid = coalesce(nullif(ty.typbasetype, 0), ty.oid)
        order by e.enumsortorder
    ),
    'checks', array(
        select pg_catalog.pg_get_constraintdef(k.oid)
        from pg_catalog.pg_constraint as k
        where k.contypid = ty.oid and k.contype = 'c'
        order by k.conname
    )
)
"""

_SCHEMA_SQL = """
select n.oid, pg_catalog.obj_description(n.oid, 'pg_namespace') as description
from pg_catalog.pg_namespace as n
where n.nspname = %(schema)s
"""

_RELATIONS_SQL = """
select
    c.oid,
    c.relname as name,
    pg_catalog.obj_description(c.oid, 'pg_class') as description,
    c.relkind in ('r', 'p')
    or pg_catalog.pg_relation_is_updatable(c.oid::regclass, true) & 8 = 8 as insertable,
    c.relkind in ('r', 'p')
    or pg_catalog.pg_relation_is_updatable(c.oid::regclass, true) & 4 = 4 as updatable,
    c.relkind in ('r', 'p')
    or pg_catalog.pg_relation_is_updatable(c.oid::regclass, true) & 16 = 16 as deletable,
    array(
        select a.attname
        from pg_catalog.pg_constraint as k
        cross join lateral unnest(k.conkey) as key (attnum)
        inner join pg_catalog.pg_attribute as a
            on a.attrelid = k.conrelid and a.attnum = key.attnum
        where k.conrelid = c.oid and k.contype = 'p'
    ) as primary_key
from pg_catalog.pg_class as c
where
    c.relnamespace = %(namespace)s
    and c.relkind in ('r', 'p', 'v', 'm', 'f')
    and not c.relispartition
    and (
        pg_catalog.has_table_privilege(%(role)s, c.oid, 'select, insert, update, delete')
        or pg_catalog.has_any_column_privilege(%(role)s, c.oid, 'select, insert, update')
    )
order by c.relname
"""

_COLUMNS_SQL = f"""
select
    a.attrelid as relation,
    a.attname as name,
    not a.attnotnull as nullable,
    a.attidentity <> '' or a.attgenerated <> '' or d.adbin is not null as has_default,
    pg_catalog.pg_get_expr(d.adbin, d.adrelid) as default_expression,
    case when ty.typname in ('varchar', 'bpchar') and a.atttypmod > 4 then a.atttypmod - 4 end
        as max_length,
    pg_catalog.col_description(a.attrelid, a.attnum) as description,
    {_TYPE_INFO} as type
from pg_catalog.pg_attribute as a
inner join pg_catalog.pg_type as ty on a.atttypid = ty.oid
inner join pg_catalog.pg_type as base_ty
    on base_ty.oid = coalesce(nullif(ty.typbasetype, 0), ty.oid)
left join pg_catalog.pg_attrdef as d on a.attrelid = d.adrelid and a.attnum = d.adnum
where a.attrelid = any(%(relations)s) and a.attnum > 0 and not a.attisdropped
order by a.attrelid, a.attnum
"""

# Input arguments only (IN, INOUT, VARIADIC), in order; the last `pronargdefaults` have defaults.
_FUNCTIONS_SQL = f"""
select
    p.oid,
    p.proname as name,
    p.provolatile as volatility,
    p.pronargdefaults as defaults,
    pg_catalog.obj_description(p.oid, 'pg_proc') as description,
    array(
        select pg_catalog.jsonb_build_object(
            'name', coalesce(p.proargnames[arg.position], ''),
            'variadic', arg.mode = 'v',
            'type', {_TYPE_INFO}
        )
        from unnest(
            coalesce(p.proallargtypes, p.proargtypes::oid[]),
            coalesce(p.proargmodes::text[], array_fill('i'::text, array[p.pronargs::int]))
        ) with ordinality as arg (type, mode, position)
        inner join pg_catalog.pg_type as ty on arg.type = ty.oid
        inner join pg_catalog.pg_type as base_ty
            on base_ty.oid = coalesce(nullif(ty.typbasetype, 0), ty.oid)
        where arg.mode in ('i', 'b', 'v')
        order by arg.position
    ) as arguments
from pg_catalog.pg_proc as p
where
    p.pronamespace = %(namespace)s
    and p.prokind = 'f'
    and pg_catalog.has_function_privilege(%(role)s, p.oid, 'execute')
order by p.proname, p.oid
"""


@dataclass(frozen=True)
class TypeInfo:
    name: str  # as format_type spells it: `timestamp with time zone`, `text[]`, a domain's name
    base: str  # a domain's base type, else the name
    element: str | None  # an array's element type
    labels: tuple[str, ...]  # an enum's labels, in order
    checks: tuple[str, ...] = ()  # a domain's CHECK constraints, as pg_get_constraintdef

    @property
    def is_array(self) -> bool:
        return self.element is not None


@dataclass(frozen=True)
class Column:
    name: str
    type: TypeInfo
    nullable: bool
    has_default: bool  # a default, an identity or a generated column: an insert may leave it out
    default_expression: str | None
    max_length: int | None
    description: str | None


@dataclass(frozen=True)
class Relation:
    name: str
    description: str | None
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    insertable: bool
    updatable: bool
    deletable: bool


@dataclass(frozen=True)
class Argument:
    name: str
    type: TypeInfo
    required: bool
    variadic: bool


@dataclass(frozen=True)
class Function:
    name: str
    description: str | None
    volatility: str  # i, s or v
    arguments: tuple[Argument, ...]


@dataclass(frozen=True)
class ExposedSchema:
    name: str
    description: str | None
    relations: tuple[Relation, ...]
    functions: tuple[Function, ...]


async def read_exposed_schema(
    conn: psycopg.AsyncConnection[Any], schema: str, role: str
) -> ExposedSchema:
    """The schema as `role` may use it; one snapshot, so the parts agree with each other."""
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("set transaction isolation level repeatable read, read only")
        await cur.execute(_SCHEMA_SQL, {"schema": schema})
        namespace = await cur.fetchone()
        if namespace is None:  # an exposed schema that does not exist: nothing to describe
            return ExposedSchema(schema, None, (), ())
        keys = {"namespace": namespace["oid"], "role": role}
        await cur.execute(_RELATIONS_SQL, keys)
        relation_rows = await cur.fetchall()
        await cur.execute(_COLUMNS_SQL, {"relations": [row["oid"] for row in relation_rows]})
        column_rows = await cur.fetchall()
        await cur.execute(_FUNCTIONS_SQL, keys)
        function_rows = await cur.fetchall()
    columns: dict[int, list[Column]] = {}
    for row in column_rows:
        columns.setdefault(row["relation"], []).append(_column(row))
    relations = tuple(_relation(row, columns.get(row["oid"], [])) for row in relation_rows)
    functions = tuple(_function(row) for row in function_rows)
    return ExposedSchema(schema, namespace["description"], relations, functions)


def _type(value: dict[str, Any]) -> TypeInfo:
    return TypeInfo(
        name=value["name"],
        base=value["base"],
        element=value["element"] if value["is_array"] else None,
        labels=tuple(value["labels"]),
        checks=tuple(value["checks"]),
    )


def _column(row: dict[str, Any]) -> Column:
    return Column(
        name=row["name"],
        type=_type(row["type"]),
        nullable=row["nullable"],
        has_default=row["has_default"],
        default_expression=row["default_expression"],
        max_length=row["max_length"],
        description=row["description"],
    )


def _relation(row: dict[str, Any], columns: list[Column]) -> Relation:
    return Relation(
        name=row["name"],
        description=row["description"],
        columns=tuple(columns),
        primary_key=tuple(row["primary_key"]),
        insertable=row["insertable"],
        updatable=row["updatable"],
        deletable=row["deletable"],
    )


def _function(row: dict[str, Any]) -> Function:
    arguments = row["arguments"]
    first_default = len(arguments) - row["defaults"]
    return Function(
        name=row["name"],
        description=row["description"],
        volatility=row["volatility"],
        arguments=tuple(
            Argument(
                name=argument["name"],
                type=_type(argument["type"]),
                required=position < first_default,
                variadic=argument["variadic"],
            )
            for position, argument in enumerate(arguments)
        ),
    )

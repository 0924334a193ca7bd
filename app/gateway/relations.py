"""The schema cache's relations: the tables and views of the exposed schemas, their columns and
primary keys, and the type names a `select=col::type` cast may name.

Loaded with the routines (on `NOTIFY pgrst` and after a miss), whatever the caller may do with
them: like PostgREST, the gateway knows every relation and lets grants and RLS decide.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncCursor

RELATIONS_SQL = """
select
    n.nspname as schema,
    c.relname as name,
    array(
        select a.attname
        from pg_catalog.pg_attribute as a
        where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        order by a.attnum
    ) as columns,
    array(
        select pg_catalog.format_type(a.atttypid, null)
        from pg_catalog.pg_attribute as a
        where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        order by a.attnum
    ) as types,
    array(
        select coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
        from pg_catalog.pg_attribute as a
        left join pg_catalog.pg_attrdef as d on a.attrelid = d.adrelid and a.attnum = d.adnum
        where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        order by a.attnum
    ) as defaults,
    array(
        select a.attname
        from pg_catalog.pg_constraint as k
        cross join lateral unnest(k.conkey) with ordinality as key (attnum, i)
        inner join pg_catalog.pg_attribute as a on a.attrelid = c.oid and a.attnum = key.attnum
        where k.conrelid = c.oid and k.contype = 'p'
        order by key.i
    ) as primary_key
from pg_catalog.pg_class as c
inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid
where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""

TYPES_SQL = """
select n.nspname as schema, t.typname as name
from pg_catalog.pg_type as t
inner join pg_catalog.pg_namespace as n on t.typnamespace = n.oid
where n.nspname = any(%s) and t.typisdefined and left(t.typname, 1) <> '_'
"""

# The SQL-standard spellings Postgres accepts for its own types (a cast names them so).
_TYPE_ALIASES = {
    "int": "int4",
    "integer": "int4",
    "smallint": "int2",
    "bigint": "int8",
    "real": "float4",
    "float": "float8",
    "double precision": "float8",
    "boolean": "bool",
    "decimal": "numeric",
    "character varying": "varchar",
    "character": "bpchar",
    "char": "bpchar",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
    "time with time zone": "timetz",
    "bit varying": "varbit",
}
SIMILARITY_FOR_A_HINT = 0.75  # PostgREST's minimum for "Perhaps you meant the table ..."


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]  # as pg_catalog.format_type writes them
    defaults: tuple[str, ...]  # each column's default expression, '' when it has none
    primary_key: tuple[str, ...]

    def is_json(self, column: str) -> bool:
        """Whether the column holds json: a json path on any other column reads it as jsonb."""
        if column not in self.columns:
            return True  # Postgres will name the unknown column
        return self.types[self.columns.index(column)] in ("json", "jsonb")

    def default_of(self, column: str) -> str | None:
        if column not in self.columns:
            return None
        return self.defaults[self.columns.index(column)] or None


class Relations:
    def __init__(self, schemas: Iterable[str], type_schemas: Iterable[str]) -> None:
        self.schemas = tuple(schemas)
        self.type_schemas = ("pg_catalog", *type_schemas, *self.schemas)
        self._relations: dict[tuple[str, str], Relation] = {}
        self._types: dict[str, tuple[str, str]] = {}

    def find(self, schema: str, name: str) -> Relation | None:
        return self._relations.get((schema, name))

    def suggestion(self, schema: str, name: str) -> str | None:
        """The closest table name of the schema, for PGRST205's hint."""
        names = [n for (s, n) in self._relations if s == schema]
        close = difflib.get_close_matches(name, names, n=1, cutoff=SIMILARITY_FOR_A_HINT)
        return close[0] if close else None

    def cast_type(self, requested: str) -> tuple[str, str] | None:
        """(schema, name) of the type a cast names, case and spacing as Postgres reads them."""
        spelled = re.sub(r"\s+", " ", requested.strip())
        if spelled in self._types:
            return self._types[spelled]
        lowered = spelled.lower()
        return self._types.get(_TYPE_ALIASES.get(lowered, lowered))

    async def load(self, cur: AsyncCursor[Any]) -> None:
        """On a cursor whose rows are dicts; replaces what was held at once."""
        await cur.execute(RELATIONS_SQL, (list(self.schemas),))
        relations = {
            (row["schema"], row["name"]): Relation(
                schema=row["schema"],
                name=row["name"],
                columns=tuple(row["columns"]),
                types=tuple(row["types"]),
                defaults=tuple(row["defaults"]),
                primary_key=tuple(row["primary_key"]),
            )
            for row in await cur.fetchall()
        }
        await cur.execute(TYPES_SQL, (list(self.type_schemas),))
        types: dict[str, tuple[str, str]] = {}
        for row in await cur.fetchall():
            # pg_catalog's names win over a schema's type of the same name, as on search_path.
            if row["name"] not in types or row["schema"] == "pg_catalog":
                types[row["name"]] = (row["schema"], row["name"])
        self._relations, self._types = relations, types

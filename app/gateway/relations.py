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
    ) as primary_key,
    array(
        select pg_catalog.array_to_string(array(
            select a.attname
            from unnest(k.conkey) as key (attnum)
            inner join pg_catalog.pg_attribute as a
                on a.attrelid = c.oid and a.attnum = key.attnum
            order by a.attname
        ), ',')
        from pg_catalog.pg_constraint as k
        where k.conrelid = c.oid and k.contype in ('p', 'u')
    ) as unique_keys
from pg_catalog.pg_class as c
inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid
where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""

FOREIGN_KEYS_SQL = """
select
    k.conname as name,
    n.nspname as schema,
    c.relname as table,
    array(
        select a.attname
        from unnest(k.conkey) with ordinality as key (attnum, i)
        inner join pg_catalog.pg_attribute as a
            on a.attrelid = k.conrelid and a.attnum = key.attnum
        order by key.i
    ) as columns,
    fn.nspname as ref_schema,
    f.relname as ref_table,
    array(
        select a.attname
        from unnest(k.confkey) with ordinality as key (attnum, i)
        inner join pg_catalog.pg_attribute as a
            on a.attrelid = k.confrelid and a.attnum = key.attnum
        order by key.i
    ) as ref_columns
from pg_catalog.pg_constraint as k
inner join pg_catalog.pg_class as c on k.conrelid = c.oid
inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid
inner join pg_catalog.pg_class as f on k.confrelid = f.oid
inner join pg_catalog.pg_namespace as fn on f.relnamespace = fn.oid
where k.contype = 'f' and k.conparentid = 0 and n.nspname = any(%s) and fn.nspname = any(%s)
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
    unique_keys: tuple[frozenset[str], ...] = ()  # the primary key's and each unique key's

    def is_unique(self, columns: Iterable[str]) -> bool:
        return frozenset(columns) in self.unique_keys

    def is_json(self, column: str) -> bool:
        """Whether the column holds json: a json path on any other column reads it as jsonb."""
        if column not in self.columns:
            return True  # Postgres will name the unknown column
        return self.types[self.columns.index(column)] in ("json", "jsonb")

    def default_of(self, column: str) -> str | None:
        if column not in self.columns:
            return None
        return self.defaults[self.columns.index(column)] or None


@dataclass(frozen=True)
class ForeignKey:
    name: str
    schema: str
    table: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Relationship:
    """How `origin` reaches `target` through a foreign key: to one (the origin holds the key)
    or to many (the target holds it)."""

    origin: Relation
    target: Relation
    key: ForeignKey
    origin_holds_key: bool
    # Many to many: the junction table, whose `via` key points to the origin and `key` to the
    # target.
    junction: Relation | None = None
    via: ForeignKey | None = None

    @property
    def one_to_one(self) -> bool:
        """The key's columns are unique where they are held: one row on each side at most."""
        if self.junction is not None:
            return False
        holder = self.origin if self.origin_holds_key else self.target
        return holder.is_unique(self.key.columns)

    @property
    def to_one(self) -> bool:
        return self.origin_holds_key or self.one_to_one

    def join_pairs(self) -> list[tuple[str, str]]:
        """(origin column, target column) pairs the join matches."""
        if self.origin_holds_key:
            return list(zip(self.key.columns, self.key.ref_columns, strict=True))
        return list(zip(self.key.ref_columns, self.key.columns, strict=True))

    def described(self) -> dict[str, str]:
        """As PostgREST lists each candidate of an ambiguous embedding."""
        if self.junction is not None and self.via is not None:
            return {
                "cardinality": "many-to-many",
                "embedding": f"{self.origin.name} with {self.target.name}",
                "relationship": f"{self.junction.name} using {self.via.name}"
                f"({', '.join(self.via.columns)}) and {self.key.name}"
                f"({', '.join(self.key.columns)})",
            }
        origin_columns, target_columns = zip(*self.join_pairs(), strict=True)
        cardinality = "many-to-one" if self.origin_holds_key else "one-to-many"
        return {
            "cardinality": "one-to-one" if self.one_to_one else cardinality,
            "embedding": f"{self.origin.name} with {self.target.name}",
            "relationship": f"{self.key.name} using {self.origin.name}"
            f"({', '.join(origin_columns)}) and {self.target.name}({', '.join(target_columns)})",
        }


class Relations:
    def __init__(self, schemas: Iterable[str], type_schemas: Iterable[str]) -> None:
        self.schemas = tuple(schemas)
        self.type_schemas = ("pg_catalog", *type_schemas, *self.schemas)
        self._relations: dict[tuple[str, str], Relation] = {}
        self._types: dict[str, tuple[str, str]] = {}
        self._keys: tuple[ForeignKey, ...] = ()
        self.generation = 0  # counts the loads: what was composed from an older one is stale

    def find(self, schema: str, name: str) -> Relation | None:
        return self._relations.get((schema, name))

    def relationships(self, origin: Relation, name: str, hint: str | None) -> list[Relationship]:
        """The foreign keys by which `origin` may embed `name` (a table, or a key's name, or for
        a key the origin holds, its one column), narrowed by a hint (a key's name or column)."""
        found = []
        for key in self._keys:
            holds = (key.schema, key.table) == (origin.schema, origin.name)
            held = (key.ref_schema, key.ref_table) == (origin.schema, origin.name)
            by_key = name == key.name
            if holds and (name == key.ref_table or by_key or key.columns == (name,)):
                target = self.find(key.ref_schema, key.ref_table)
                holds_key = True
            elif held and key.schema == origin.schema and (name == key.table or by_key):
                target = self.find(key.schema, key.table)
                holds_key = False
            else:
                continue
            if target is None or (hint is not None and hint not in (key.name, *key.columns)):
                continue
            found.append(Relationship(origin, target, key, holds_key))
        return found + self._through_junctions(origin, name, hint)

    def _through_junctions(
        self, origin: Relation, name: str, hint: str | None
    ) -> list[Relationship]:
        """Many to many, as PostgREST finds it: a table with keys to the origin and to `name`,
        both within its primary key (a hint names the junction table)."""
        found = []
        for via in self._keys:
            if (via.ref_schema, via.ref_table) != (origin.schema, origin.name):
                continue
            junction = self.find(via.schema, via.table)
            for key in self._keys:
                if key == via or (key.schema, key.table) != (via.schema, via.table):
                    continue
                target = self.find(key.ref_schema, key.ref_table)
                if junction is None or target is None or key.ref_table != name:
                    continue
                if not set(via.columns) | set(key.columns) <= set(junction.primary_key):
                    continue
                if hint is not None and hint not in (junction.name, via.name, key.name):
                    continue
                found.append(Relationship(origin, target, key, False, junction, via))
        return found

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
                # Joined by commas in SQL: Postgres arrays cannot hold arrays of other lengths.
                unique_keys=tuple(frozenset(k.split(",")) for k in row["unique_keys"]),
            )
            for row in await cur.fetchall()
        }
        await cur.execute(FOREIGN_KEYS_SQL, (list(self.schemas), list(self.schemas)))
        keys = tuple(
            ForeignKey(
                name=row["name"],
                schema=row["schema"],
                table=row["table"],
                columns=tuple(row["columns"]),
                ref_schema=row["ref_schema"],
                ref_table=row["ref_table"],
                ref_columns=tuple(row["ref_columns"]),
            )
            for row in await cur.fetchall()
        )
        await cur.execute(TYPES_SQL, (list(self.type_schemas),))
        types: dict[str, tuple[str, str]] = {}
        for row in await cur.fetchall():
            # pg_catalog's names win over a schema's type of the same name, as on search_path.
            if row["name"] not in types or row["schema"] == "pg_catalog":
                types[row["name"]] = (row["schema"], row["name"])
        self._relations, self._types, self._keys = relations, types, keys
        self.generation += 1

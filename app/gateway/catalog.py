"""The schema cache: which functions the exposed schemas hold, and how to call each.

Like PostgREST, the gateway reads pg_proc once and keeps it, reloading on
`NOTIFY pgrst, 'reload schema'` (the migration runner sends it) and, at most once a second,
when a call names a function it does not know, so a function created by hand shows up without a
restart. Whether the caller may EXECUTE a function is left to Postgres.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from app.gateway.errors import GatewayError
from app.gateway.relations import Relation, Relations
from app.shared.role_settings import RoleSettings

MISS_RELOAD_INTERVAL_SECONDS = 1.0
_INPUT_MODES = frozenset({"i", "b", "v"})
_COMPOSITE_OUTPUT_MODES = frozenset({"o", "b", "t"})

CATALOG_SQL = """
select
    n.nspname as schema,
    p.proname as name,
    p.proretset as returns_set,
    p.provolatile as volatility,
    p.prorettype = 'pg_catalog.void'::pg_catalog.regtype as returns_void,
    rt.typtype = 'c' or (rt.typtype = 'd' and bt.typtype = 'c') as returns_composite,
    p.pronargdefaults as defaults,
    coalesce(p.proargmodes::text[], array_fill('i'::text, array[p.pronargs::int])) as modes,
    p.proargnames as names,
    array(
        select pg_catalog.format_type(a.type, null)
        from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as a (type, i)
        order by a.i
    ) as types
from pg_catalog.pg_proc as p
inner join pg_catalog.pg_namespace as n on p.pronamespace = n.oid
inner join pg_catalog.pg_type as rt on p.prorettype = rt.oid
left join pg_catalog.pg_type as bt on rt.typbasetype = bt.oid
where n.nspname = any(%s) and p.prokind = 'f'
"""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    required: bool
    variadic: bool


@dataclass(frozen=True)
class Routine:
    schema: str
    name: str
    parameters: tuple[Parameter, ...]
    returns_set: bool
    returns_composite: bool
    returns_void: bool
    volatility: str  # i, s or v

    @property
    def takes_whole_body(self) -> bool:
        """One unnamed json/jsonb parameter: the request body is passed to it whole."""
        return (
            len(self.parameters) == 1
            and not self.parameters[0].name
            and self.parameters[0].type in ("json", "jsonb")
        )

    def accepts(self, keys: frozenset[str]) -> bool:
        if any(not p.name for p in self.parameters):
            return False
        required = {p.name for p in self.parameters if p.required}
        every = {p.name for p in self.parameters}
        return required <= keys <= every

    def signature(self) -> str:
        arguments = ", ".join(f"{p.name} => {p.type}" for p in self.parameters)
        return f"{self.schema}.{self.name}({arguments})"


class Catalog:
    def __init__(
        self, schemas: Iterable[str], api_roles: Iterable[str], type_schemas: Iterable[str] = ()
    ) -> None:
        self.schemas = tuple(schemas)
        self._routines: dict[tuple[str, str], list[Routine]] = {}
        self.relations = Relations(self.schemas, type_schemas)
        self.role_settings = RoleSettings(api_roles)
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def reload(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with self._lock:
            await self._load(conn)

    async def find(
        self,
        conn: psycopg.AsyncConnection[Any],
        schema: str,
        name: str,
        keys: frozenset[str],
        *,
        json_body: bool,
    ) -> Routine:
        """json_body: a POSTed JSON body, which a single unnamed json parameter may take."""
        routine = self._match(schema, name, keys, json_body)
        if routine is None and time.monotonic() - self._loaded_at > MISS_RELOAD_INTERVAL_SECONDS:
            await self.reload(conn)
            routine = self._match(schema, name, keys, json_body)
        if routine is None:
            raise self._not_found(schema, name, keys, json_body)
        return routine

    async def find_relation(
        self, conn: psycopg.AsyncConnection[Any], schema: str, name: str
    ) -> Relation:
        """The table or view, reloading once on a miss as for functions; PGRST205 when none."""
        relation = self.relations.find(schema, name)
        if relation is None and time.monotonic() - self._loaded_at > MISS_RELOAD_INTERVAL_SECONDS:
            await self.reload(conn)
            relation = self.relations.find(schema, name)
        if relation is None:
            close = self.relations.suggestion(schema, name)
            raise GatewayError(
                404,
                "PGRST205",
                f"Could not find the table '{schema}.{name}' in the schema cache",
                hint=f"Perhaps you meant the table '{schema}.{close}'" if close else None,
            )
        return relation

    def _match(
        self, schema: str, name: str, keys: frozenset[str], json_body: bool
    ) -> Routine | None:
        candidates = self._routines.get((schema, name), [])
        named = [r for r in candidates if r.accepts(keys)]
        if not named and json_body:
            named = [r for r in candidates if r.takes_whole_body]
        if len(named) > 1:
            raise GatewayError(
                300,
                "PGRST203",
                "Could not choose the best candidate function between: "
                + ", ".join(r.signature() for r in named),
                hint="Try renaming the parameters or the function itself in the database so "
                "function overloading can be resolved",
            )
        return named[0] if named else None

    def _not_found(
        self, schema: str, name: str, keys: frozenset[str], json_body: bool
    ) -> GatewayError:
        listed = ", ".join(sorted(keys))
        function = f"{schema}.{name}"
        if keys:
            message = f"Could not find the function {function}({listed}) in the schema cache"
            noun = "parameter" if len(keys) == 1 else "parameters"
            searched = f"with {noun} {listed}"
        else:
            message = (
                f"Could not find the function {function} without parameters in the schema cache"
            )
            searched = "without parameters"
        known = self._routines.get((schema, name), [])
        hint = None
        if known:
            options = sorted(", ".join(sorted(p.name for p in r.parameters)) for r in known)
            hint = f"Perhaps you meant to call the function {function}({options[0]})"
        return GatewayError(
            404,
            "PGRST202",
            message,
            f"Searched for the function {function} {searched}"
            + (" or with a single unnamed json/jsonb parameter" if json_body else "")
            + ", but no matches were found in the schema cache.",
            hint,
        )

    async def _load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(CATALOG_SQL, (list(self.schemas),))
            rows = await cur.fetchall()
            await self.role_settings.load(cur)
            await self.relations.load(cur)
        routines: dict[tuple[str, str], list[Routine]] = {}
        for row in rows:
            routine = _routine(row)
            routines.setdefault((routine.schema, routine.name), []).append(routine)
        self._routines = routines
        self._loaded_at = time.monotonic()


def _routine(row: Mapping[str, Any]) -> Routine:
    modes: list[str] = row["modes"]
    names: list[str] = row["names"] or [""] * len(modes)
    types: list[str] = row["types"]
    inputs = [i for i, mode in enumerate(modes) if mode in _INPUT_MODES]
    first_default = len(inputs) - row["defaults"]
    parameters = tuple(
        Parameter(
            name=names[i],
            type=types[i],
            required=position < first_default,
            variadic=modes[i] == "v",
        )
        for position, i in enumerate(inputs)
    )
    out_columns = sum(mode in _COMPOSITE_OUTPUT_MODES for mode in modes)
    return Routine(
        schema=row["schema"],
        name=row["name"],
        parameters=parameters,
        returns_set=row["returns_set"],
        returns_composite=bool(row["returns_composite"]) or out_columns > 1 or "t" in modes,
        returns_void=row["returns_void"],
        volatility=row["volatility"],
    )

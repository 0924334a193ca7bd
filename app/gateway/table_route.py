"""`/rest/v1/{table}`: PostgREST's table dialect (GET, HEAD, POST, PUT, PATCH, DELETE), as the
supabase client speaks it.

As for RPCs: verify the JWT, pick the schema from Accept-Profile / Content-Profile, and run the
statement in one round trip with the caller's role, claims and headers set as PostgREST sets
them, so grants and RLS decide what may be read or changed. A transaction is opened only when
the answer may still be refused after the statement (one object wanted, max-affected, a
planned count, tx=rollback), so that a refusal undoes the change.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import Response

from app.gateway.auth import Caller, identify
from app.gateway.catalog import Catalog
from app.gateway.endpoint import answering_errors, api_connection
from app.gateway.errors import GatewayError
from app.gateway.relations import Relation
from app.gateway.request import requested_schema
from app.gateway.table_grammar import Condition
from app.gateway.table_plans import ReadPlans
from app.gateway.table_request import TableQuery, TableRequest, read_table_request
from app.gateway.table_sql import Shape, TableSql
from app.settings import Settings
from app.shared.request_settings import execute_as_request, request_settings


@dataclass(frozen=True)
class Outcome:
    total: int | None
    page_total: int
    body: str
    location: dict[str, Any] | None
    inserted: int | None


class TableGateway:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool, catalog: Catalog) -> None:
        self.settings = settings
        self.pool = pool
        self.catalog = catalog
        self.secret = settings.supabase_jwt_secret.get_secret_value()
        self.handle = answering_errors(self._handle)
        self.plans = ReadPlans()

    async def _handle(self, request: Request) -> Response:
        headers = request.headers
        caller = identify(headers.get("authorization"), headers.get("apikey"), self.secret)
        schema, profile_sent = requested_schema(request, self.settings.api_schemas)
        if request.method == "OPTIONS":
            return await self._options(schema, request.path_params["table"])
        # A read asked before is neither parsed nor composed again (table_plans).
        relations = self.catalog.relations
        planned = self.plans.get(self.plans.key(request, schema, relations.generation))
        if planned is None:  # the body is read before a connection is taken
            asked = await read_table_request(
                request,
                max_rows=self.settings.api_max_rows,
                body_limit=self.settings.rpc_max_body_bytes,
            )
        else:
            asked = planned[0]
        async with api_connection(
            self.pool, self.settings.pool_timeout_seconds, anonymous=caller.anonymous
        ) as conn:
            relation = await self.catalog.find_relation(conn, schema, asked.table)
            if planned is None:
                text = self._statement(
                    TableSql(relation, relations, asked.query.embedded), asked
                ).as_string(conn)
                self.plans.put(self.plans.key(request, schema, relations.generation), (asked, text))
            else:
                text = planned[1]
            settings = self._request_settings(request, caller, relation, asked)
            outcome = await self._run(conn, settings, relation, asked, text)
        response = _response(relation, asked, outcome)
        if profile_sent or len(self.settings.api_schemas) > 1:
            response.headers["Content-Profile"] = schema
        return response

    async def _options(self, schema: str, table: str) -> Response:
        """What may be asked of the table, as PostgREST answers OPTIONS (whether the caller may
        is for the request itself to find out)."""
        async with api_connection(
            self.pool, self.settings.pool_timeout_seconds, anonymous=False
        ) as conn:
            await self.catalog.find_relation(conn, schema, table)
        allowed = {
            "Allow": "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE",
            "Access-Control-Allow-Origin": "*",
        }
        return Response(b"", 200, allowed)

    def _request_settings(
        self, request: Request, caller: Caller, relation: Relation, asked: TableRequest
    ) -> list[tuple[str, str]]:
        settings = request_settings(
            request,
            role=caller.role,
            claims=caller.claims,
            path=f"/{relation.name}",
            search_path=(relation.schema, *self.settings.api_extra_search_path),
            role_settings=self.catalog.role_settings.of(caller.role),
            read_only=not asked.writes,
        )
        if asked.preferences.timezone is not None:  # Prefer: timezone=..., as PostgREST
            settings.append(("timezone", asked.preferences.timezone))
        return settings

    async def _run(
        self,
        conn: psycopg.AsyncConnection[Any],
        settings: list[tuple[str, str]],
        relation: Relation,
        asked: TableRequest,
        statement: str,
    ) -> Outcome:
        preferences = asked.preferences
        count = preferences.get("count")
        rollback = preferences.get("tx") == "rollback"
        capped = asked.method in ("PATCH", "DELETE") and preferences.strict
        max_affected = preferences.max_affected if capped else None
        one_row = asked.media.kind == "object" or asked.method == "PUT"
        refusable = asked.writes and (one_row or max_affected is not None)
        explains = count in ("planned", "estimated") and not asked.writes
        async with (
            conn.transaction() if refusable or rollback or explains else contextlib.nullcontext()
        ):
            row = await execute_as_request(conn, settings, statement, None)
            assert row is not None  # an aggregate always returns one row
            total, page_total, body, location, inserted = row
            if asked.writes and count:
                total = page_total
            if explains and (count == "planned" or total > self.settings.api_max_rows):
                builder = TableSql(relation, self.catalog.relations, asked.query.embedded)
                planned = await _planned_count(conn, builder.planned_count(asked.query))
                # estimated: the planner's guess only when it beats the rows already counted
                total = planned if count == "planned" else max(total, planned)
            if asked.method == "PUT" and page_total != 1:
                raise GatewayError(
                    400, "PGRST115", "Payload values do not match URL in primary key column(s)"
                )
            if asked.media.kind == "object" and page_total != 1:
                raise GatewayError(
                    406,
                    "PGRST116",
                    "Cannot coerce the result to a single JSON object",
                    f"The result contains {page_total} rows",
                )  # raised inside the transaction: a change is undone
            if max_affected is not None and page_total > max_affected:
                raise GatewayError(
                    400,
                    "PGRST124",
                    "Query result exceeds max-affected preference constraint",
                    f"The query affects {page_total} rows",
                )
            outcome = Outcome(
                total, page_total, body, json.loads(location) if location else None, inserted
            )
            if rollback:
                raise psycopg.Rollback
        return outcome

    def _statement(self, builder: TableSql, asked: TableRequest) -> sql.Composed:
        preferences, query, returning = asked.preferences, asked.query, asked.returning
        if not asked.writes:
            count = preferences.get("count")
            cap = self.settings.api_max_rows + 1 if count == "estimated" else None
            shape = Shape(asked.media, body=asked.method == "GET")
            return builder.read(query, asked.page, shape, count, cap)
        shape = Shape(asked.media)
        if asked.method == "DELETE":
            return builder.delete(query, shape, returning=returning)
        assert asked.payload is not None
        if asked.method == "PATCH":
            return builder.update(
                query,
                asked.payload,
                shape,
                returning=returning,
                apply_defaults=preferences.get("missing") == "default",
            )
        if asked.method == "PUT":
            return builder.insert(
                query,
                asked.payload,
                shape,
                resolution="merge-duplicates",
                returning=returning,
                apply_defaults=False,
                matching=_put_key(builder.relation, query),
            )
        return builder.insert(
            query,
            asked.payload,
            shape,
            resolution=preferences.get("resolution"),
            returning=returning,
            apply_defaults=preferences.get("missing") == "default",
        )


def _put_key(relation: Relation, query: TableQuery) -> tuple[tuple[str, str], ...]:
    """PUT names one row by its whole primary key, each column `eq` a value, and nothing else."""
    key = relation.primary_key
    pairs = tuple(
        (c.field.name, c.value)
        for c in query.where
        if isinstance(c, Condition)
        and c.operator == "eq"
        and not (c.negated or c.quantifier or c.field.path)
        and isinstance(c.value, str)
    )
    if not key or len(pairs) != len(query.where) or sorted(n for n, _ in pairs) != sorted(key):
        raise GatewayError(
            405,
            "PGRST105",
            "Filters must include all and only primary key columns with 'eq' operators",
        )
    return pairs


async def _planned_count(conn: psycopg.AsyncConnection[Any], explain: sql.Composed) -> int:
    """The planner's estimate of the rows the filters match (`Prefer: count=planned`)."""
    cursor = psycopg.AsyncClientCursor(conn)
    await cursor.execute(explain.as_string(conn))
    row = await cursor.fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return int(plan[0]["Plan"]["Plan Rows"])


def _response(relation: Relation, asked: TableRequest, outcome: Outcome) -> Response:
    method, preferences, media = asked.method, asked.preferences, asked.media
    if not asked.writes:
        return _read_response(asked, outcome)
    headers: dict[str, str] = {}
    total = "*" if outcome.total is None else str(outcome.total)
    if method == "PUT":
        kinds = ("return", "count", "tx", "handling")
        applied = preferences.applied(kinds)
        status = 201 if (outcome.inserted or 0) > 0 else 200
        if asked.returning != "representation":
            status = 204
    elif method == "POST":
        headers["Content-Range"] = f"*/{total}"
        keyed = bool(relation.primary_key) or asked.query.on_conflict is not None
        kinds = ("resolution", "missing", "return", "count", "tx", "handling")
        applied = preferences.applied(kinds if keyed else kinds[1:])
        merged_only = outcome.inserted is not None and outcome.inserted <= 0
        status = 200 if merged_only else 201
        if outcome.location is not None and outcome.page_total == 1:
            headers["Location"] = _location(relation.name, outcome.location)
    else:
        if method == "PATCH":
            upper = outcome.page_total - 1
            headers["Content-Range"] = f"0-{upper}/{total}" if upper >= 0 else f"*/{total}"
            kinds = ("missing", "return", "count", "tx", "handling")
        else:
            headers["Content-Range"] = f"*/{total}"
            kinds = ("return", "count", "tx", "handling")
        applied = preferences.applied(kinds, max_affected=True)
        status = 200 if asked.returning == "representation" else 204
    if applied:
        headers["Preference-Applied"] = applied
    if asked.returning == "representation":
        return Response(outcome.body.encode(), status, headers, media.content_type)
    return Response(b"", status, headers)


def _read_response(asked: TableRequest, outcome: Outcome) -> Response:
    lower = asked.page.offset
    upper = lower + outcome.page_total - 1
    total = outcome.total
    if total is not None and lower > total:
        raise GatewayError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            f"An offset of {lower} was requested, but there are only {total} rows.",
            headers={"Content-Range": f"*/{total}"},
        )
    spread = f"{lower}-{upper}" if total != 0 and lower <= upper else "*"
    headers = {"Content-Range": f"{spread}/{'*' if total is None else total}"}
    applied = asked.preferences.applied(("count", "tx", "handling"))
    if applied:
        headers["Preference-Applied"] = applied
    status = 206 if total is not None and upper - lower + 1 < total else 200
    content = b"" if asked.method == "HEAD" else outcome.body.encode()
    return Response(content, status, headers, asked.media.content_type)


def _location(table: str, key: dict[str, Any]) -> str:
    """`/table?pk=eq.value`, as PostgREST writes the Location of a row it inserted."""
    parts = []
    for column, value in key.items():
        if value is None:
            condition = "is.null"
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            condition = f"eq.{text}"
        parts.append(f"{quote(column, safe='')}={quote(condition, safe='.')}")
    return f"/{table}?{'&'.join(parts)}"

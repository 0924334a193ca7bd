"""`/rest/v1/rpc/{function}`: PostgREST's RPC dialect, as the supabase client speaks it.

Per request: verify the JWT, pick the schema from Content-Profile / Accept-Profile, read the
arguments (JSON body, or the query string for GET and HEAD), and make one transaction that
switches to the caller's role, publishes the claims and headers as PostgREST does, calls the
function and shapes the result. The gateway decides nothing about permissions: a function the
role may not execute fails in Postgres, and RLS does the rest.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import Response

from app.gateway.auth import Caller, identify
from app.gateway.call import Page, as_query, plan_call, plan_void_call
from app.gateway.catalog import Catalog, Routine
from app.gateway.endpoint import answering_errors, api_connection
from app.gateway.errors import GatewayError
from app.gateway.request import Arguments, read_arguments, requested_schema, wants_object
from app.settings import Settings
from app.shared.request_settings import execute_as_request, request_settings

JSON = "application/json; charset=utf-8"
OBJECT_JSON = "application/vnd.pgrst.object+json; charset=utf-8"


class RpcGateway:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool, catalog: Catalog) -> None:
        self.settings = settings
        self.pool = pool
        self.catalog = catalog
        self.secret = settings.supabase_jwt_secret.get_secret_value()
        self.handle = answering_errors(self._handle)

    async def _handle(self, request: Request) -> Response:
        headers = request.headers
        caller = identify(headers.get("authorization"), headers.get("apikey"), self.secret)
        schema, profile_sent = requested_schema(request, self.settings.api_schemas)
        want_object = wants_object(headers.get("accept"))
        want_count = "count=" in (headers.get("prefer") or "")
        arguments = await read_arguments(request, self.settings.rpc_max_body_bytes)
        read_only = request.method in ("GET", "HEAD")
        async with api_connection(
            self.pool, self.settings.pool_timeout_seconds, anonymous=caller.anonymous
        ) as conn:
            routine = await self.catalog.find(
                conn,
                schema,
                request.path_params["function"],
                arguments.keys,
                json_body=arguments.values is None,
            )
            if routine.volatility != "v":
                read_only = True  # STABLE and IMMUTABLE functions never need to write
            settings = self._request_settings(request, caller, schema, read_only)
            # An answer that may be refused after the call (not one object, a range past the
            # count) keeps the transaction open until then, so that the refusal rolls back
            # what the function did; any other call commits with its one round trip.
            refusable = want_object or want_count
            async with conn.transaction() if refusable else contextlib.nullcontext():
                result = await self._call(
                    conn,
                    settings,
                    routine,
                    arguments,
                    want_object=want_object,
                    want_count=want_count,
                )
        response_headers = {"Content-Range": result.content_range(arguments.page)}
        if profile_sent or len(self.settings.api_schemas) > 1:
            response_headers["Content-Profile"] = schema
        if want_count:
            response_headers["Preference-Applied"] = "count=exact"
        if result.body is None:
            return Response(status_code=204, headers=response_headers)
        status = 206 if result.partial() else 200
        content = b"" if request.method == "HEAD" else result.body.encode()
        media_type = OBJECT_JSON if want_object else JSON
        return Response(content, status, response_headers, media_type)

    def _request_settings(
        self, request: Request, caller: Caller, schema: str, read_only: bool
    ) -> list[tuple[str, str]]:
        """Transaction-local settings, as PostgREST sets them before the call."""
        return request_settings(
            request,
            role=caller.role,
            claims=caller.claims,
            path=f"/rpc/{request.path_params['function']}",
            search_path=(schema, *self.settings.api_extra_search_path),
            role_settings=self.catalog.role_settings.of(caller.role),
            read_only=read_only,
        )

    async def _call(
        self,
        conn: psycopg.AsyncConnection[Any],
        settings: list[tuple[str, str]],
        routine: Routine,
        arguments: Arguments,
        *,
        want_object: bool,
        want_count: bool,
    ) -> CallResult:
        body = arguments.body if arguments.values is None else _json_arguments(routine, arguments)
        if routine.returns_void:
            await execute_as_request(
                conn, settings, _rendered_void_call(routine, arguments.keys), {"body": body}
            )
            return CallResult(None, 1, 1 if want_count else None)
        page = arguments.page
        if routine.returns_set:
            cap = self.settings.api_max_rows
            page = Page(min(page.limit, cap) if page.limit is not None else cap, page.offset)
        query = _rendered_call(routine, arguments.keys, want_object, want_count, page)
        row = await execute_as_request(conn, settings, query, {"body": body})
        assert row is not None  # an aggregate always returns one row
        text, page_total, total = row
        if total is not None and page.offset > total:
            raise GatewayError(
                416,
                "PGRST103",
                "Requested range not satisfiable",
                f"An offset of {page.offset} was requested, but there are only {total} rows.",
            )
        if want_object and page_total != 1:
            raise GatewayError(
                406,
                "PGRST116",
                "Cannot coerce the result to a single JSON object",
                f"The result contains {page_total} rows",
            )  # raised inside the transaction, so whatever the function did is rolled back
        return CallResult(text, page_total, total)


@dataclass(frozen=True)
class CallResult:
    body: str | None  # None: the function returns void
    page_total: int
    total: int | None

    def content_range(self, page: Page) -> str:
        total = "*" if self.total is None else str(self.total)
        if self.page_total == 0:
            return f"*/{total}"
        first = page.offset if self.body is not None else 0
        return f"{first}-{first + self.page_total - 1}/{total}"

    def partial(self) -> bool:
        """PostgREST's rule: 206 whenever the page holds fewer rows than the known total."""
        return self.total is not None and self.page_total < self.total


# Composing the SQL of a call costs as much as running it; the same few shapes repeat. A
# reloaded catalog makes new Routine objects, so stale entries are never hit again.
@lru_cache(maxsize=2048)
def _rendered_call(
    routine: Routine, keys: frozenset[str], want_object: bool, want_count: bool, page: Page
) -> str:
    return as_query(
        plan_call(routine, keys, want_object=want_object, want_count=want_count, page=page)
    )


@lru_cache(maxsize=2048)
def _rendered_void_call(routine: Routine, keys: frozenset[str]) -> str:
    return as_query(plan_void_call(routine, keys))


def _json_arguments(routine: Routine, arguments: Arguments) -> str:
    """GET arguments as a JSON object of strings: Postgres' input functions type them."""
    assert arguments.values is not None
    variadic = {p.name for p in routine.parameters if p.variadic}
    return json.dumps(
        {key: values if key in variadic else values[-1] for key, values in arguments.values.items()}
    )

"""What every /rest/v1 endpoint does around its own work: errors answered as PostgREST's JSON,
and a pooled connection whose failures become PostgREST's errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.requests import Request
from starlette.responses import Response

from app.gateway import errors
from app.gateway.errors import GatewayError

JSON = "application/json; charset=utf-8"

Handler = Callable[[Request], Awaitable[Response]]


def error_response(error: GatewayError) -> Response:
    return Response(error.body(), error.status, error.response_headers(), JSON)


def answering_errors(handler: Handler) -> Handler:
    """The handler, with a GatewayError it raises answered as PostgREST answers it."""

    async def handle(request: Request) -> Response:
        try:
            return await handler(request)
        except GatewayError as error:
            return error_response(error)

    return handle


@contextlib.asynccontextmanager
async def api_connection(
    pool: AsyncConnectionPool, wait_seconds: float, *, anonymous: bool
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection from the pool; no free one in time is 503, a database error its status."""
    try:
        async with pool.connection(timeout=wait_seconds) as conn:
            yield conn
    except PoolTimeout as error:
        raise errors.pool_exhausted() from error
    except psycopg.Error as error:
        raise errors.from_postgres(error, anonymous=anonymous) from error

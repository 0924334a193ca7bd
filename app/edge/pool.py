"""The edge's connection pool, as PostgREST's: it logs in as `authenticator`."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from app.settings import Settings


async def check_idle_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """An idle connection has nothing to read unless the server closed it (a restart, `make
    reset`, an admin's pg_terminate_backend). Polling the socket costs no round trip; only a
    connection that has something to say is asked, and the pool replaces it if it fails."""
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        await conn.execute("select 1")


def edge_pool(settings: Settings) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        settings.edge_database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        kwargs={"autocommit": True},
        check=check_idle_connection,
        open=False,
        name="edge",
    )

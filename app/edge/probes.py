"""/health says the process is alive; /ready says it can serve: the database answers and every
migration in the repo is applied there. /ready also reports the sender (`python -m app worker`):
`ok` while one writes heartbeats, `stale` when the last ones stopped writing without stopping
cleanly, `absent` when none runs. A dead sender does not make the edge unready: the edge still
takes webhooks and RPCs, and taking it out of a load balancer would lose those too."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.requests import Request
from starlette.responses import JSONResponse

READY_TIMEOUT_SECONDS = 2.0


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


class Readiness:
    def __init__(self, pool: AsyncConnectionPool, expected_versions: Iterable[str]) -> None:
        self.pool = pool
        self.expected = frozenset(expected_versions)

    async def check(self, request: Request) -> JSONResponse:
        try:
            applied, sender = await self._probe()
        except (PoolTimeout, psycopg.Error) as error:
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            return _unavailable(f"database unreachable: {reason}")
        missing = sorted(self.expected - applied)
        if missing:
            return _unavailable(f"migrations not applied: {', '.join(missing)}")
        return JSONResponse({"status": "ready", "migrations": len(applied), "sender": sender})

    async def _probe(self) -> tuple[frozenset[str], str | None]:
        """The migrations applied and, when they are all there, the sender's state."""
        async with (
            self.pool.connection(timeout=READY_TIMEOUT_SECONDS) as conn,
            conn.transaction(),
        ):
            # The pool logs in as authenticator, which may read nothing itself.
            await conn.execute("select pg_catalog.set_config('role', 'service_role', true)")
            cursor = await conn.execute("select version from supabase_migrations.schema_migrations")
            applied = frozenset(version for (version,) in await cursor.fetchall())
            if self.expected - applied:
                return applied, None
            return applied, await _sender_state(conn)


async def _sender_state(conn: AsyncConnection[Any]) -> str:
    """ok, stale or absent (whatsapp_sender_health); unknown where the function is missing
    (its functions-sql file not applied yet)."""
    cursor = await conn.execute(
        "select pg_catalog.to_regprocedure('public.whatsapp_sender_health()') is not null"
    )
    row = await cursor.fetchone()
    if not (row and row[0]):
        return "unknown"
    cursor = await conn.execute("select public.whatsapp_sender_health() ->> 'state'")
    row = await cursor.fetchone()
    return str(row[0]) if row else "unknown"


def _unavailable(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)

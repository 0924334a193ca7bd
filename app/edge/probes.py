"""/health says the process is alive; /ready says it can serve: the database answers and every
migration in the repo is applied there."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
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
            applied = await self._applied_versions()
        except (PoolTimeout, psycopg.Error) as error:
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            return _unavailable(f"database unreachable: {reason}")
        missing = sorted(self.expected - applied)
        if missing:
            return _unavailable(f"migrations not applied: {', '.join(missing)}")
        return JSONResponse({"status": "ready", "migrations": len(applied)})

    async def _applied_versions(self) -> frozenset[str]:
        async with (
            self.pool.connection(timeout=READY_TIMEOUT_SECONDS) as conn,
            conn.transaction(),
        ):
            # The pool logs in as authenticator, which may read nothing itself.
            await conn.execute("select pg_catalog.set_config('role', 'service_role', true)")
            cursor = await conn.execute("select version from supabase_migrations.schema_migrations")
            return frozenset(version for (version,) in await cursor.fetchall())


def _unavailable(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)

"""Keeps the schema cache current: LISTEN pgrst, reload on 'reload schema' (or no payload),
and reload after every reconnect, since a notification sent while away is lost."""

from __future__ import annotations

import asyncio

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from app.gateway.catalog import Catalog

log = structlog.get_logger("gateway.reload")
RECONNECT_DELAYS_SECONDS = (0.5, 1, 2, 5, 10)


async def listen_for_reloads(conninfo: str, pool: AsyncConnectionPool, catalog: Catalog) -> None:
    failures = 0
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute("listen pgrst")
                await _reload(pool, catalog)
                failures = 0
                async for notify in conn.notifies():
                    if notify.payload in ("", "reload schema"):
                        await _reload(pool, catalog)
        except (psycopg.Error, OSError) as error:
            delay = RECONNECT_DELAYS_SECONDS[min(failures, len(RECONNECT_DELAYS_SECONDS) - 1)]
            failures += 1
            log.warning("schema reload listener disconnected", error=str(error), retry_in=delay)
            await asyncio.sleep(delay)


async def _reload(pool: AsyncConnectionPool, catalog: Catalog) -> None:
    async with pool.connection() as conn:
        await catalog.reload(conn)
    log.info("schema cache loaded", schemas=list(catalog.schemas))

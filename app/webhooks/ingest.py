"""The one database call a webhook makes: `public.ingest_whatsapp_webhook`, as service_role,
in one transaction on the edge's pool, with the settings PostgREST would make.

Failures are sorted for the provider's retry logic: the function refusing the payload's shape
(22023) is the sender's fault and a 400; anything else the database says, or no connection in
time, is ours and a 503 with Retry-After, so the provider sends the same event again later
(Meta retries for days, and the function is idempotent by wamid, so a retry never doubles)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.requests import Request

from app.edge.db_call import request_settings, settings_statement
from app.edge.request_context import valid_id
from app.settings import Settings
from app.webhooks.rejection import Rejected

INGEST_SQL = "select public.ingest_whatsapp_webhook(%s, %s::jsonb, %s)"
ROLE = "service_role"
REFUSED_SQLSTATE = "22023"
RETRY_AFTER_SECONDS = 5
log = structlog.get_logger("webhooks.ingest")


class Ingest:
    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool,
        role_settings: Callable[[], Mapping[str, str]],
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.role_settings = role_settings  # service_role's ALTER ROLE settings, kept current
        self.search_path = (settings.api_schemas[0], *settings.api_extra_search_path)

    async def __call__(self, request: Request, provider: str, payload: str) -> Any:
        """The function's JSON summary, once committed."""
        settings = request_settings(
            request,
            role=ROLE,
            claims={"role": ROLE},
            path=request.url.path,
            search_path=self.search_path,
            role_settings=self.role_settings(),
        )
        arguments = (provider, payload, correlation_id(request))
        try:
            # The settings and the call as one simple-protocol query (bound client-side):
            # Postgres runs the two statements as one transaction and commits it before
            # answering, so one round trip, and 200 only after the commit.
            async with self.pool.connection(timeout=self.settings.pool_timeout_seconds) as conn:
                setup, params = settings_statement(settings)
                cursor = psycopg.AsyncClientCursor(conn)
                await cursor.execute(f"{setup}; {INGEST_SQL}", [*params, *arguments])
                cursor.nextset()
                row = await cursor.fetchone()
        except PoolTimeout as error:
            log.warning("webhook not stored: no database connection", provider=provider)
            raise _unavailable("No database connection") from error
        except psycopg.Error as error:
            raise _from_postgres(provider, error) from error
        return row[0] if row is not None else None


def correlation_id(request: Request) -> str | None:
    """The caller's X-Correlation-Id when it is a sane id, else the edge's request id (which
    the RequestContext middleware always sets, generated when the caller's was absent)."""
    given = request.headers.get("x-correlation-id")
    return given if valid_id(given) else request.headers.get("x-request-id")


def _from_postgres(provider: str, error: psycopg.Error) -> Rejected:
    sqlstate = error.diag.sqlstate
    message = error.diag.message_primary or str(error).strip() or type(error).__name__
    if sqlstate == REFUSED_SQLSTATE:
        # The message may quote the payload (a contact's text): a bounded prefix is logged.
        log.warning("webhook refused by the database", provider=provider, reason=message[:200])
        return Rejected(400, "refused", message)
    log.error(
        "webhook not stored: database error", provider=provider, sqlstate=sqlstate, error=message
    )
    return _unavailable("The database could not store the event; retry later")


def _unavailable(message: str) -> Rejected:
    return Rejected(503, "unavailable", message, {"Retry-After": str(RETRY_AFTER_SECONDS)})

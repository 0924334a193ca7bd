"""The database calls a webhook makes, as service_role, each in one transaction on the edge's
pool, with the settings PostgREST would make: `public.ingest_whatsapp_webhook` for a payload,
`public.dead_letter_whatsapp_webhook` for a signed body that cannot be ingested.

Failures are sorted for the provider's retry logic, which retries anything but a 2xx for days.
A message or status the database cannot store is set aside by the ingest itself (a webhook dead
letter) and the rest is stored. When the whole call is refused for its data (SQLSTATE classes 22,
23 and 54: no retry changes the data), the body is kept as a dead letter and the answer is 200.
Anything else (no connection in time, the database down, a lock or statement timeout, a
serialisation failure, a bug of ours) is a 503 with Retry-After: a retry can cure it, and the
ingest is idempotent by wamid, so a retry never doubles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.requests import Request

from app.settings import Settings
from app.shared.request_context import valid_id
from app.shared.request_settings import execute_as_request, request_settings
from app.shared.role_settings import RoleSettings
from app.webhooks.rejection import Rejected

INGEST_SQL = "select public.ingest_whatsapp_webhook(%s, %s::jsonb, %s)"
DEAD_LETTER_SQL = "select public.dead_letter_whatsapp_webhook(%s, %s, %s, %s, %s)"
ROLE = "service_role"
# Data exceptions, integrity constraint violations, program limits: the data is at fault.
UNSTORABLE_SQLSTATE_CLASSES = ("22", "23", "54")
DETAIL_CHARS = 2000
RETRY_AFTER_SECONDS = 5
log = structlog.get_logger("webhooks.ingest")


class Ingest:
    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool,
        role_settings: RoleSettings,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.role_settings = role_settings  # kept current by the schema cache's reloads
        self.search_path = (settings.api_schemas[0], *settings.api_extra_search_path)

    async def __call__(self, request: Request, provider: str, payload: str) -> dict[str, Any]:
        """The ingest's JSON summary, once committed. When the database refuses the payload as a
        whole, the payload is what the dead letter keeps: Meta's body as signed (or the rest of
        it, see unstorable.py), Twilio's form as JSON, so that a retry can ingest it."""
        try:
            summary = await self._call(
                request, INGEST_SQL, (provider, payload, correlation_id(request))
            )
        except psycopg.Error as error:
            sqlstate = error.diag.sqlstate or ""
            message = error.diag.message_primary or str(error).strip() or type(error).__name__
            if not sqlstate.startswith(UNSTORABLE_SQLSTATE_CLASSES):
                raise _database_fault("webhook not stored", provider, error) from error
            return await self.dead_letter(request, provider, payload.encode(), message, sqlstate)
        return dict(summary)

    async def dead_letter(
        self,
        request: Request,
        provider: str,
        body: bytes,
        detail: str,
        sqlstate: str | None = None,
    ) -> dict[str, Any]:
        """Keeps a signed body that cannot be ingested; the summary of an ingest that stored
        nothing and set one thing aside."""
        # The detail may quote the payload (a contact's text): a bounded prefix is logged.
        log.warning(
            "webhook kept as a dead letter",
            provider=provider,
            sqlstate=sqlstate,
            reason=detail[:200],
        )
        arguments = (
            provider,
            body,
            detail[:DETAIL_CHARS] or "refused",
            sqlstate,
            correlation_id(request),
        )
        try:
            await self._call(request, DEAD_LETTER_SQL, arguments)
        except psycopg.Error as error:
            raise _database_fault("webhook dead letter not stored", provider, error) from error
        return {
            "messages_stored": 0,
            "duplicates": 0,
            "statuses_applied": 0,
            "statuses_ignored": 0,
            "statuses_pending": 0,
            "dead_lettered": 1,
        }

    async def _call(self, request: Request, sql: str, arguments: Sequence[Any]) -> Any:
        settings = request_settings(
            request,
            role=ROLE,
            claims={"role": ROLE},
            path=request.scope["path"],  # the route's own: a URL object would cost more
            search_path=self.search_path,
            role_settings=self.role_settings.of(ROLE),
        )
        try:
            # Committed before the database answers: 200 only after the commit.
            async with self.pool.connection(timeout=self.settings.pool_timeout_seconds) as conn:
                row = await execute_as_request(conn, settings, sql, arguments)
        except PoolTimeout as error:
            log.warning("webhook not stored: no database connection", path=request.scope["path"])
            raise _unavailable("No database connection") from error
        return row[0] if row is not None else None


def correlation_id(request: Request) -> str | None:
    """The caller's X-Correlation-Id when it is a sane id, else the edge's request id (which
    the RequestContext middleware always sets, generated when the caller's was absent)."""
    given = request.headers.get("x-correlation-id")
    return given if valid_id(given) else request.headers.get("x-request-id")


def outcome(summary: Mapping[str, Any]) -> str:
    """The metric label of a webhook answered 200."""
    return "dead_lettered" if summary.get("dead_lettered") else "accepted"


def _database_fault(what: str, provider: str, error: psycopg.Error) -> Rejected:
    message = error.diag.message_primary or str(error).strip() or type(error).__name__
    log.error(
        f"{what}: database error",
        provider=provider,
        sqlstate=error.diag.sqlstate,
        error=message[:200],
    )
    return _unavailable("The database could not store the event; retry later")


def _unavailable(message: str) -> Rejected:
    return Rejected(503, "unavailable", message, {"Retry-After": str(RETRY_AFTER_SECONDS)})

"""Per request: an id (X-Request-Id, else generated, echoed back), one JSON log line, metrics.

A client that hangs up while a route reads its body (Starlette's ClientDisconnect, from
any route) is handled here, once: counted, logged as status 499, never a 500.

A generated id is also added to the request's headers, so an RPC sees it in request.headers
and audit rows can be traced to the log line."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.shared.metrics import EdgeMetrics

_VALID_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,200}$")
# Each known path is its own label; anything else under /webhooks/ must not add a series.
_FIXED_ROUTES = frozenset(
    {"/health", "/ready", "/metrics", "/webhooks/whatsapp", "/webhooks/twilio"}
)
# nginx's code for a request its client abandoned; never sent, only logged and counted.
CLIENT_CLOSED_REQUEST = 499
log = structlog.get_logger("edge.request")


def valid_id(value: str | None) -> bool:
    """Whether a caller's request or correlation id is safe to log and store as given."""
    return value is not None and _VALID_ID.match(value) is not None


def route_label(path: str) -> str:
    """Bounded metric labels: a request for an unknown function must not add a series."""
    if path.startswith("/rest/v1/rpc/"):
        return "/rest/v1/rpc/{function}"
    if path.startswith("/rest/v1/") and "/" not in path.removeprefix("/rest/v1/"):
        return "/rest/v1/{table}"
    if path in _FIXED_ROUTES:
        return path
    return "other"


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: EdgeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        request_id = _header(headers, b"x-request-id")
        if not valid_id(request_id):
            request_id = uuid.uuid4().hex
            headers = [(k, v) for k, v in headers if k != b"x-request-id"]
            headers.append((b"x-request-id", request_id.encode()))
            scope = {**scope, "headers": headers}
        correlation_id = _header(headers, b"x-correlation-id")
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if correlation_id:
            structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        started = time.perf_counter()
        route = route_label(scope["path"])
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The client hung up (or the edge closed a late body) while a route read the
            # request: the client's doing, not an error of ours, and nobody is left to answer.
            # The request line below, at info, says 499.
            status["code"] = CLIENT_CLOSED_REQUEST
            self.metrics.count_client_disconnect(route)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope["method"], route, status["code"], elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status["code"],
                duration_ms=round(elapsed * 1000, 2),
            )


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> Any:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None

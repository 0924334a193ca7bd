"""The two routes that carry the traffic, RPC calls and Meta's webhook, answered without
Starlette's router and exception layer: matching a path against every route and wrapping each
call costs about as much as an RPC's own Python. What they skip does nothing for these
routes (they raise no HTTPException and use no route state); the request id, logs, metrics and
the 500 of an unexpected error stay around them, as around every other route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
RPC_PREFIX = "/rest/v1/rpc/"
RPC_METHODS = frozenset({"GET", "HEAD", "POST"})
META_WEBHOOK = "/webhooks/whatsapp"


class HotRoutes:
    """POST /webhooks/whatsapp and GET|HEAD|POST /rest/v1/rpc/{function} straight to their
    endpoints, exactly as the router would match them; anything else to `app`."""

    def __init__(self, app: ASGIApp, *, rpc: Endpoint, meta_webhook: Endpoint) -> None:
        self.app = app
        self.rpc = rpc
        self.meta_webhook = meta_webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    def _endpoint(self, scope: Scope) -> Endpoint | None:
        if scope.get("root_path"):
            return None  # served under a prefix: the router knows how to strip it
        path: str = scope["path"]
        method: str = scope["method"]
        if path == META_WEBHOOK and method == "POST":
            return self.meta_webhook
        if path.startswith(RPC_PREFIX) and method in RPC_METHODS:
            function = path[len(RPC_PREFIX) :]
            if function and "/" not in function:  # the router's {function}: [^/]+
                scope["path_params"] = {"function": function}
                return self.rpc
        return None

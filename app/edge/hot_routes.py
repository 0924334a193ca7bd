"""The two routes that carry the traffic, RPC calls and Meta's webhook, answered without
Starlette's router and exception layer: matching a path against every route and wrapping each
call costs about as much as an RPC's own Python. What they skip does nothing for these
routes (they raise no HTTPException and use no route state); the request id, logs, metrics and
the 500 of an unexpected error stay around them, as around every other route."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send


class HotRoutes:
    """Requests that `routes` (routes of the app's router, tried first) match go straight to
    their endpoints; anything else to `app`. Each route matches as the router matches it (its
    own `matches`: path, prefix, parameters and methods), so nothing is written twice."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        response = await route.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    def _route(self, scope: Scope) -> Route | None:
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                return route
        return None

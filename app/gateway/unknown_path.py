"""Whatever else is asked under /rest/v1: PostgREST's JSON errors, never a plain-text 404, so
that a client parsing every answer as JSON reports the real problem."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.gateway.endpoint import error_response
from app.gateway.errors import GatewayError


async def unknown_path(request: Request) -> Response:
    path = request.path_params["path"]
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == "rpc" and parts[1]:
        # A known RPC path asked with a method it does not take.
        error = GatewayError(405, "PGRST101", f"Cannot use the {request.method} method on RPC")
    else:
        error = GatewayError(404, "PGRST125", "Invalid path specified in request URL")
    return error_response(error)

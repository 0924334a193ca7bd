"""`GET /rest/v1/`: the OpenAPI description of the exposed schema, as PostgREST serves it at its
root, for the caller's role (a JWT's role, else anon) and the schema Accept-Profile names."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import Response

from app.gateway.auth import identify
from app.gateway.endpoint import answering_errors, api_connection
from app.gateway.errors import GatewayError
from app.gateway.openapi_catalog import read_exposed_schema
from app.gateway.openapi_document import OPENAPI_MEDIA_TYPE, describe
from app.gateway.request import requested_schema
from app.settings import Settings

BASE_PATH = "/rest/v1"
_ACCEPTED = frozenset({OPENAPI_MEDIA_TYPE, "application/json", "application/*", "*/*"})


class OpenApiRoot:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool, version: str) -> None:
        self.settings = settings
        self.pool = pool
        self.version = version
        self.secret = settings.supabase_jwt_secret.get_secret_value()
        self.handle = answering_errors(self._handle)

    async def _handle(self, request: Request) -> Response:
        headers = request.headers
        caller = identify(headers.get("authorization"), headers.get("apikey"), self.secret)
        schema, profile_sent = requested_schema(request, self.settings.api_schemas)
        _require_acceptable(headers.get("accept"))
        async with api_connection(
            self.pool, self.settings.pool_timeout_seconds, anonymous=caller.anonymous
        ) as conn:
            exposed = await read_exposed_schema(conn, schema, caller.role)
        scheme, host = self._public_address(request)
        document = describe(
            exposed, version=self.version, host=host, scheme=scheme, base_path=BASE_PATH
        )
        response_headers = {}
        if profile_sent or len(self.settings.api_schemas) > 1:
            response_headers["Content-Profile"] = schema
        content = b"" if request.method == "HEAD" else json.dumps(document).encode()
        return Response(content, 200, response_headers, f"{OPENAPI_MEDIA_TYPE}; charset=utf-8")

    def _public_address(self, request: Request) -> tuple[str, str]:
        """Where clients reach the API: the public URL behind a proxy, else the request's."""
        if self.settings.public_base_url:
            public = urlsplit(self.settings.public_base_url)
            return public.scheme, public.netloc
        return request.url.scheme, request.url.netloc


def _require_acceptable(accept: str | None) -> None:
    if not accept:
        return
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if not types & _ACCEPTED:
        raise GatewayError(406, "PGRST107", f"None of these media types are available: {accept}")

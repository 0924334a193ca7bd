"""An httpx transport over aiohttp's connection pool, for the sender's many concurrent sends.

Why not httpx's own: before every request, httpcore's pool asks each of its connections whether
it has expired, and an idle connection answers with a readability check on its socket. With
the sender's 50 concurrent sends that is 50 checks per request: measured against the fake
provider, 388 requests/s from one process at 50 connections, against 8,000 for aiohttp (see
README, "The sender"). Providers still speak httpx (requests, responses, timeouts, errors);
only the wire underneath changes.

Why not the httpx-aiohttp package: it turns a server disconnect into httpx.ConnectTimeout,
which says the request never left, and the sender would send again what may have gone out.
Here each aiohttp error becomes the httpx error that says whether the request can have reached
the provider (see app.sender.errors):

- never sent: ClientConnectorError (refused, DNS, TLS) -> ConnectError; ConnectionTimeoutError
  (no connection within the connect or pool timeout) -> ConnectTimeout.
- maybe sent: SocketTimeoutError and ServerTimeoutError -> ReadTimeout; ServerDisconnectedError
  -> RemoteProtocolError; anything else -> ReadError.
- unusable base URL: InvalidURL and non-HTTP URLs -> UnsupportedProtocol.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx

# How long an idle connection stays open for the next send.
KEEPALIVE_SECONDS = 15.0

# Most specific first: the first class the error is an instance of decides.
ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.ReadError),
    (TimeoutError, httpx.ReadTimeout),
    (OSError, httpx.ReadError),
)


def httpx_error(error: BaseException, request: httpx.Request) -> httpx.TransportError:
    kind = next((ours for theirs, ours in ERRORS if isinstance(error, theirs)), httpx.ReadError)
    return kind(f"{type(error).__name__}: {error}", request=request)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one aiohttp session of up to max_connections connections,
    opened on first use. Responses are read whole: the providers' answers are small JSON."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.session: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=KEEPALIVE_SECONDS
            )
            self.session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self.session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout: dict[str, Any] = request.extensions.get("timeout", {})
        try:
            async with self._session().request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=await request.aread() or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            ) as response:
                body = await response.read()
                # aiohttp decoded the body: the encoding headers no longer describe it.
                headers = [
                    (name, value)
                    for name, value in response.headers.items()
                    if name.lower() not in ("content-encoding", "content-length")
                ]
                return httpx.Response(
                    response.status, headers=headers, content=body, request=request
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise httpx_error(error, request) from error

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


def provider_client(max_connections: int, timeout: httpx.Timeout) -> httpx.AsyncClient:
    """The client the sender sends with: httpx over AiohttpTransport."""
    return httpx.AsyncClient(transport=AiohttpTransport(max_connections), timeout=timeout)

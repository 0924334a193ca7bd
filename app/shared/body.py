"""A request body read whole, but refused as soon as it is known to be too large."""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body larger than {limit} bytes")
        self.limit = limit


async def bounded_body(request: Request, limit: int) -> bytes:
    """The body, refused on Content-Length before reading, and while streaming (a chunked body,
    or one that lies about its length): memory stays bounded by `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    return bytes(body)

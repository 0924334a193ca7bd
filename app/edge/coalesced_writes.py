"""A transport that sends a response's head and body in one write.

uvicorn writes a response's head when the app sends `http.response.start` and its body on the
next message: two send() calls, two TCP segments and, on loopback, two wake-ups of the client
for one small answer. Here a write is held until the next one, and the two go out together at
once; a write nothing follows in the same step of the event loop (a HEAD response's head, a
100 Continue, the last piece of a stream) goes out when that step ends. Nothing waits longer
than the current step, and the body leaves before the app's cleanup after it."""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescedWrites:
    """Wraps a transport; every other attribute is the wrapped transport's."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._held is None:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
            return
        held, self._held = self._held, None
        if not self._transport.is_closing():
            self._transport.write(held + data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()  # what was written before close() is sent, as a transport's close() does
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

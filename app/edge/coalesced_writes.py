"""A transport that sends what one step of the event loop writes as one write.

uvicorn writes a response's head when the app sends `http.response.start` and its body on the
next message: two send() calls, two TCP segments and, on loopback, two wake-ups of the client
for one small answer. Here writes are gathered and sent once the step that made them ends (or
sooner, past `FLUSH_BYTES`), so a head and body sent back to back leave in one segment; nothing
waits longer than the current loop step."""

from __future__ import annotations

import asyncio
from typing import Any

# Past this much held, write at once: what one step may hold stays bounded, and the transport's
# own buffer (and with it uvicorn's flow control) sees large bodies as they are written.
FLUSH_BYTES = 65_536


class CoalescedWrites:
    """Wraps a transport; every other attribute is the wrapped transport's."""

    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._held_bytes += len(data)
        if self._held_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held = []
        self._held_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()  # what was written before close() is sent, as a transport's close() does
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._held_bytes = 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

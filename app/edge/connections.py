"""The edge's HTTP/1.1 connections: uvicorn's httptools protocol with the limits it lacks.

httptools reads request heads of any size and uvicorn puts no deadline on reading a request, so
one client could make the edge buffer a 96 MiB header, and a few thousand that trickle a byte
now and then held their sockets until the edge ran out of file descriptors. Each connection
here:

- refuses a head (request line and headers) larger than `max_header_bytes` with a 431, having
  fed the parser no more than that many bytes of it;
- closes a request whose head has not arrived `header_timeout` seconds after its first byte,
  and one whose body has not arrived `body_timeout` seconds after its head (408 when no
  response has started);
- closes when idle for `idle_timeout` seconds: uvicorn's keep-alive timer, also armed on a new
  connection (uvicorn arms it only after a response);
- when the server holds `max_connections`, makes room for a new one by closing the connection
  that has waited longest for a request's head, so a fresh /health gets in however many slow
  clients hold sockets.

Written against uvicorn 0.54's HttpToolsProtocol (its parser callbacks, `cycle`, `pipeline`,
the keep-alive timer); tests/py/test_edge_limits.py exercises each of these through a real
server, so an upgrade that changes them fails there.
"""

from __future__ import annotations

import asyncio
import enum
import http
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.edge.coalesced_writes import CoalescedWrites
from app.settings import Settings

# Descriptors the edge keeps for itself besides client sockets: the database pool, the reload
# listener, the listening socket, the event loop's own, logs and the files Python opens.
FD_RESERVE = 128
log = structlog.get_logger("edge.connections")


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    idle_timeout: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        by_descriptors = open_file_limit() - FD_RESERVE - settings.pool_max_size
        configured = settings.edge_max_connections
        return cls(
            max_header_bytes=settings.edge_max_header_bytes,
            header_timeout=settings.edge_header_timeout_seconds,
            body_timeout=settings.edge_body_timeout_seconds,
            idle_timeout=settings.edge_keep_alive_timeout_seconds,
            max_connections=max(1, min(by_descriptors, configured or by_descriptors)),
        )


def open_file_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_open_file_limit() -> int:
    """The soft descriptor limit raised to the hard one (a shell's default soft limit is often
    1,024, far below what the kernel allows the process); returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            log.warning("could not raise the open file limit", soft=soft, hard=hard)
    return open_file_limit()


class _Phase(enum.Enum):
    BETWEEN = "between"  # no byte of a request head since the last request ended
    HEAD = "head"  # a request has begun; its headers are incomplete
    BODY = "body"  # headers complete; the body is still arriving


# Why the edge closed a connection itself, as counted in edge_connections_closed_total.
HEAD_TOO_LARGE = "head_too_large"
HEAD_TIMEOUT = "head_timeout"
BODY_TIMEOUT = "body_timeout"
IDLE_TIMEOUT = "idle_timeout"
SHED = "shed"


def bounded_protocol(
    limits: ConnectionLimits, on_close: Callable[[str], None]
) -> type[HttpToolsProtocol]:
    """A protocol class for uvicorn's `http=` option; `on_close(reason)` counts each connection
    the edge closes itself. Connections of one class share one waiting list: make one class per
    server."""
    # Connections waiting for a request's head, the longest waiting first (dicts keep order).
    waiting: dict[BoundedHttpToolsProtocol, None] = {}

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._phase = _Phase.BETWEEN
            self._head_bytes = 0  # bytes of the current head fed to the parser
            self._heads_completed = 0
            self._deadline: asyncio.TimerHandle | None = None
            self._deadline_phase: _Phase | None = None

        # Connection events

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            # Every write of the connection goes through it, so their order is kept.
            coalesced = CoalescedWrites(transport, self.loop)
            super().connection_made(coalesced)  # type: ignore[arg-type]
            self._start_waiting()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
            if len(self.connections) > limits.max_connections:
                oldest = next(iter(waiting))
                oldest._close(SHED)

        def connection_lost(self, exc: Exception | None) -> None:
            waiting.pop(self, None)
            self._cancel_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            """Bytes that may belong to a head are fed at most `max_header_bytes` at a time:
            a head still open after that many is refused, and the parser never holds more."""
            while data:
                if self._phase is _Phase.BODY:
                    super().data_received(data)
                    break
                room = limits.max_header_bytes - self._head_bytes
                piece, data = data[:room], data[room:]
                completed = self._heads_completed
                if piece:
                    super().data_received(piece)
                if self.transport.is_closing():
                    return
                if self._heads_completed != completed:
                    self._head_bytes = 0
                    continue
                self._head_bytes += len(piece)
                if data:
                    self._refuse(HEAD_TOO_LARGE, 431, "Request header fields too large")
                    return
            self._arm_deadline()

        def timeout_keep_alive_handler(self) -> None:
            if not self.transport.is_closing():
                on_close(IDLE_TIMEOUT)
            super().timeout_keep_alive_handler()

        # Parser callbacks (httptools calls them from inside data_received)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._phase = _Phase.HEAD
            self._cancel_deadline()  # a pipelined head gets its own deadline

        def on_headers_complete(self) -> None:
            self._phase = _Phase.BODY
            self._heads_completed += 1
            waiting.pop(self, None)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._phase = _Phase.BETWEEN
            if self.cycle is not None and self.cycle.response_complete:
                # Answered before its body had all arrived: idle from now on.
                self._start_waiting()
                if self.timeout_keep_alive_task is None:
                    self.timeout_keep_alive_task = self.loop.call_later(
                        self.timeout_keep_alive, self.timeout_keep_alive_handler
                    )

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.transport.is_closing() or self._phase is _Phase.BODY or self.pipeline:
                return
            self._start_waiting()
            if self._phase is _Phase.HEAD:
                # The next request has begun: its head deadline governs, not the idle timer.
                self._unset_keepalive_if_required()

        # Deadlines

        def _start_waiting(self) -> None:
            waiting.pop(self, None)
            waiting[self] = None

        def _serving(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _arm_deadline(self) -> None:
            """After each read: a head runs against the head deadline from its first byte, a
            body against the body deadline from the end of its head. Bytes between requests
            that begin none (stray CRLFs) count as a head, or they could hold the connection."""
            phase: _Phase | None = self._phase
            if phase is _Phase.BETWEEN and (self._serving() or self.timeout_keep_alive_task):
                phase = None  # the app is working, or the connection is idle on its timer
            if phase is self._deadline_phase:
                return
            self._cancel_deadline()
            if phase is not None:
                seconds = limits.body_timeout if phase is _Phase.BODY else limits.header_timeout
                self._deadline = self.loop.call_later(seconds, self._deadline_passed)
                self._deadline_phase = phase

        def _cancel_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
                self._deadline_phase = None

        def _deadline_passed(self) -> None:
            late_body = self._deadline_phase is _Phase.BODY
            self._deadline = None
            self._deadline_phase = None
            reason = BODY_TIMEOUT if late_body else HEAD_TIMEOUT
            what = "body" if late_body else "header"
            self._refuse(reason, 408, f"Request {what} not received in time")

        # Closing

        def _refuse(self, reason: str, status: int, message: str) -> None:
            """Answer `status` when no response has started on this connection, then close."""
            cycle = self.cycle
            if self._phase is _Phase.BODY:
                # The cycle is this request's: answer unless the app has begun to.
                answer = cycle is not None and not cycle.response_started and not self.pipeline
            else:
                # A response of ours must not interleave with one for an earlier request.
                answer = not self._serving()
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True  # the app's receive() now sees http.disconnect
                cycle.message_event.set()
            if answer:
                self.transport.write(self._response(status, message))
            log.info("connection closed", reason=reason, status=status if answer else None)
            self._close(reason)

        def _close(self, reason: str) -> None:
            waiting.pop(self, None)
            self._cancel_deadline()
            if not self.transport.is_closing():
                on_close(reason)
                self.transport.close()

        def _response(self, status: int, message: str) -> bytes:
            body = message.encode()
            lines = [
                f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}".encode(),
                *(name + b": " + value for name, value in self.server_state.default_headers),
                b"content-type: text/plain; charset=utf-8",
                b"content-length: " + str(len(body)).encode(),
                b"connection: close",
            ]
            return b"\r\n".join(lines) + b"\r\n\r\n" + body

    return BoundedHttpToolsProtocol

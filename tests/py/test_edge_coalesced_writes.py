"""A response's head and body leave the edge in one write; nothing written waits past the
event loop's current step, and closing sends what was written first."""

from __future__ import annotations

import asyncio
from typing import Any

from app.edge.coalesced_writes import CoalescedWrites


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.events.append("close")
        self.closing = True

    def abort(self) -> None:
        self.events.append("abort")
        self.closing = True

    def get_extra_info(self, name: str) -> Any:
        return f"extra {name}"


def test_a_head_and_its_body_go_in_one_write() -> None:
    asyncio.run(_a_head_and_its_body_go_in_one_write())


async def _a_head_and_its_body_go_in_one_write() -> None:
    transport = RecordingTransport()
    writes = CoalescedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    writes.write(memoryview(b"{}"))
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)
    assert len(transport.writes) == 1


def test_a_write_nothing_follows_leaves_when_the_step_ends() -> None:
    asyncio.run(_a_write_nothing_follows_leaves_when_the_step_ends())


async def _a_write_nothing_follows_leaves_when_the_step_ends() -> None:
    transport = RecordingTransport()
    writes = CoalescedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    writes.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert transport.writes == []
    await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_close_sends_what_was_written_and_abort_drops_it() -> None:
    asyncio.run(_close_sends_what_was_written_and_abort_drops_it())


async def _close_sends_what_was_written_and_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    closed, aborted = RecordingTransport(), RecordingTransport()
    CoalescedWrites(closed, loop).write(b"431")  # type: ignore[arg-type]
    writes = CoalescedWrites(closed, loop)  # type: ignore[arg-type]
    writes.write(b"408")
    writes.close()
    assert b"408" in closed.writes
    assert closed.events == ["close"]
    dropped = CoalescedWrites(aborted, loop)  # type: ignore[arg-type]
    dropped.write(b"lost")
    dropped.abort()
    await asyncio.sleep(0)
    assert aborted.writes == []
    assert dropped.get_extra_info("peername") == "extra peername"

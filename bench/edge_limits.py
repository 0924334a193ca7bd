"""What slow and oversized clients cost the edge, against the edge's own process.

Prints:
  - a 96 MiB header: how long until the edge answered, how much of it was sent, and how much
    the edge's peak memory grew;
  - N sockets trickling a head one byte every 2 s: seconds until the edge had closed them all;
  - /health latency from fresh connections (as a load balancer probes), with no slow clients,
    with N slow clients that reconnect whenever the edge closes them, and with more slow
    clients than an edge limited to 1,024 descriptors can hold.

    .venv/bin/python -m bench.edge_limits [--trickling 3000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from app.edge.connections import raise_open_file_limit
from bench.http_load import KeepAliveConnection
from tests.support.edge import EdgeProcess, edge_process
from tests.support.raw_http import HEAD_START, send_oversized_head
from tests.support.server import TestServer, start_test_server

HEADER_BYTES = 96 * 1024 * 1024
TRICKLE_EVERY = 2.0  # seconds between bytes, as in the report that found the problem
HEALTH = b"GET /health HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"


@dataclass
class Probes:
    name: str
    latencies: list[float]
    failed: int

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def oversized_header(edge: EdgeProcess) -> str:
    before = edge.memory("VmRSS")
    started = time.perf_counter()
    received, sent, closed = send_oversized_head(edge.url, HEADER_BYTES)
    took = time.perf_counter() - started
    grew = (edge.memory("VmHWM") - before) / 2**20
    status = received.split(b"\r\n", 1)[0].decode("latin-1") or "no answer"
    return (
        f"96 MiB header: {status!r} after {took:.3f} s, {sent / 2**20:.0f} MiB of it sent,"
        f" {'closed' if closed else 'left open'}; edge peak RSS +{grew:.1f} MiB"
    )


async def trickle(port: int, stop: asyncio.Event, closed_at: list[float]) -> None:
    """One slow client: a head begun, then a byte every TRICKLE_EVERY seconds, until the edge
    closes the connection (the time goes to `closed_at`) or `stop` is set."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        closed_at.append(time.perf_counter())
        return
    try:
        writer.write(HEAD_START)
        while not stop.is_set():
            try:
                if not await asyncio.wait_for(reader.read(4096), TRICKLE_EVERY):
                    break
            except TimeoutError:
                writer.write(b"a")
            except OSError:
                break
        else:
            return
        closed_at.append(time.perf_counter())
    finally:
        writer.close()


async def open_in_waves(port: int, count: int, stop: asyncio.Event, closed_at: list[float]) -> list:
    """Tasks of `count` tricklers, opened 500 at a time so the listen backlog never overflows."""
    tasks = []
    for first in range(0, count, 500):
        for _ in range(min(500, count - first)):
            tasks.append(asyncio.create_task(trickle(port, stop, closed_at)))
        await asyncio.sleep(0.05)
    return tasks


async def trickling_closed(edge: EdgeProcess, count: int, wait: float) -> str:
    stop, closed_at = asyncio.Event(), []
    started = time.perf_counter()
    tasks = await open_in_waves(edge.port, count, stop, closed_at)
    await asyncio.wait(tasks, timeout=wait)
    open_left = count - len(closed_at)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    if open_left:
        return (
            f"{count} sockets trickling 1 byte every {TRICKLE_EVERY:.0f} s:"
            f" {open_left} still open after {wait:.0f} s"
        )
    return (
        f"{count} sockets trickling 1 byte every {TRICKLE_EVERY:.0f} s: all closed by the edge"
        f" {max(closed_at) - started:.1f} s after the first opened"
    )


async def slow_army(port: int, count: int, stop: asyncio.Event) -> None:
    """`count` slow clients held open: each one the edge closes is replaced at once."""

    async def soldier() -> None:
        while not stop.is_set():
            await trickle(port, stop, [])
            # As slowloris does: a closed socket is opened again on the next round, not at
            # once (a client reconnecting in a tight loop is a connection-rate flood).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TRICKLE_EVERY)

    soldiers = []
    for first in range(0, count, 500):
        soldiers += [asyncio.create_task(soldier()) for _ in range(min(500, count - first))]
        await asyncio.sleep(0.05)
    await stop.wait()
    await asyncio.gather(*soldiers, return_exceptions=True)


async def probe_health(name: str, port: int, seconds: float) -> Probes:
    latencies, failed = [], 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            connection = await asyncio.wait_for(KeepAliveConnection.open("127.0.0.1", port), 5)
            status, _ = await asyncio.wait_for(connection.request(HEALTH), 5)
            connection.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            failed += 1
            continue
        if status == 200:
            latencies.append(time.perf_counter() - started)
        else:
            failed += 1
    return Probes(name, latencies, failed)


async def health_under(name: str, edge: EdgeProcess, slow: int, seconds: float) -> Probes:
    stop = asyncio.Event()
    army = asyncio.create_task(slow_army(edge.port, slow, stop))
    await asyncio.sleep(2 if slow else 0)  # the slow clients are in
    try:
        return await probe_health(name, edge.port, seconds)
    finally:
        stop.set()
        await army


@contextlib.contextmanager
def bench_edge(server: TestServer, database: str, open_files: int | None = None) -> Iterator:
    env = {"LOG_LEVEL": "warning"}
    with edge_process(server, database, env=env, open_files=open_files) as edge:
        yield edge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trickling", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=3.0, help="of /health probes per row")
    parser.add_argument("--wait", type=float, default=40.0, help="for tricklers to be closed")
    args = parser.parse_args()
    raise_open_file_limit()  # this process holds every slow client's socket

    server = start_test_server()
    rows: list[Probes] = []
    try:
        database = server.clone("bench")
        with bench_edge(server, database) as edge:
            print(oversized_header(edge))
            print(asyncio.run(trickling_closed(edge, args.trickling, args.wait)))
            rows.append(asyncio.run(health_under("none", edge, 0, args.seconds)))
            rows.append(
                asyncio.run(health_under(f"{args.trickling}", edge, args.trickling, args.seconds))
            )
        with bench_edge(server, database, open_files=1024) as edge:
            name = "2000, edge fds 1024"
            rows.append(asyncio.run(health_under(name, edge, 2000, args.seconds)))
    finally:
        server.close()

    print(f"/health from fresh connections, {args.seconds:.0f} s per row, {os.cpu_count()} cores")
    print(f"{'slow clients':<22}{'probes':>8}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for row in rows:
        print(
            f"{row.name:<22}{len(row.latencies):>8}{row.failed:>8}"
            f"{row.percentile(0.5):>9.2f}{row.percentile(0.99):>9.2f}"
        )


if __name__ == "__main__":
    main()

"""RPC gateway throughput and latency against raw Postgres, measured in one process.

Builds a throwaway cluster (as the tests do), starts the edge as its own process, and runs the
same call three ways with the same concurrency:
  raw       `select public.bench_add($1, $2)` on psycopg connections (the floor)
  raw+tx    what the gateway sent per request until 2026-12-07: BEGIN, the set_config of role
            and claims, the call shaped into JSON, COMMIT (four round trips)
  raw+1     what it sends now: the set_config and the call as one simple-protocol query, bound
            client-side, committed by Postgres before it answers (one round trip; the floor
            for the gateway)
  gateway   POST /rest/v1/rpc/bench_add over HTTP with an anon key
  pgbench   `select public.bench_add(:n, 1)` with -M prepared, as many clients (the ceiling the
            issue measures the gateway against; latencies from pgbench's per-transaction log)
  asgi      the same POST to an ASGI app answering a constant (bench/constant_asgi.py), served as
            the edge is: what any Python edge can reach here with this load generator
Prints requests/s, p50 and p99 latency, and each row's throughput as a ratio to raw and to
pgbench.

    .venv/bin/python -m bench.rpc_gateway [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg_pool import AsyncConnectionPool

from app import keys
from app.local.stack import StackError, wait_until_ready
from bench.http_load import KeepAliveConnection, post_json
from bench.pgbench import pgbench
from tests.support.server import (
    AUTHENTICATOR_PASSWORD,
    JWT_SECRET,
    TestServer,
    free_port,
    start_test_server,
)

PGBENCH_SCRIPT = """\
\\set n random(1, 1000000)
select public.bench_add(:n, 1);
"""
FUNCTIONS = """
create function public.bench_add(a int, b int) returns int
language sql immutable set search_path = '' as 'select a + b';
grant execute on function public.bench_add(int, int) to anon;
"""
GATEWAY_SETUP = (
    "select pg_catalog.set_config('transaction_read_only', 'on', true),"
    " pg_catalog.set_config('statement_timeout', '3s', true),"
    ' pg_catalog.set_config(\'search_path\', \'"public", "public", "extensions"\', true),'
    " pg_catalog.set_config('role', 'anon', true),"
    " pg_catalog.set_config('request.jwt.claims', '{\"role\": \"anon\"}', true),"
    " pg_catalog.set_config('request.headers', '{}', true),"
    " pg_catalog.set_config('request.cookies', '{}', true),"
    " pg_catalog.set_config('request.method', 'POST', true),"
    " pg_catalog.set_config('request.path', '/rpc/bench_add', true)"
)
GATEWAY_CALL = (
    "with pgrst_source as (select pgrst_call.pgrst_scalar from"
    " pg_catalog.json_to_record(%s::json) as pgrst_body (a integer, b integer),"
    " lateral (select public.bench_add(a := pgrst_body.a, b := pgrst_body.b) as pgrst_scalar)"
    " as pgrst_call)"
    " select coalesce(pg_catalog.json_agg(_postgrest_t.pgrst_scalar) -> 0, 'null')::text,"
    " pg_catalog.count(_postgrest_t), null::bigint from (select * from pgrst_source) _postgrest_t"
)


@dataclass
class Result:
    name: str
    latencies: list[float]
    seconds: float
    # CPU the serving process spent in the timed window (user and system), when it was asked.
    server_cpu_seconds: float = float("nan")

    @property
    def server_cpu_us_per_request(self) -> float:
        return self.server_cpu_seconds / max(1, len(self.latencies)) * 1e6

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, user and system (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    name: str,
    call: Callable[[int], Awaitable[None]],
    seconds: float,
    concurrency: int,
    server_pid: int | None = None,
) -> Result:
    """`call` from `concurrency` workers for `seconds`; with `server_pid`, also the CPU that
    process spent meanwhile: a figure the machine's other load disturbs less than a rate."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(worker_id: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call(worker_id * 1_000_000 + n)
            latencies.append(time.perf_counter() - started)
            n += 1

    for warm in range(50):  # connections open, plans cached, before the clock starts
        await call(warm * 1_000_000 % (concurrency * 1_000_000))
    cpu_before = cpu_seconds(server_pid) if server_pid else float("nan")
    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(server_pid) - cpu_before if server_pid else float("nan")
    return Result(name, latencies, elapsed, cpu)


async def run_benchmarks(
    server: TestServer, database: str, seconds: float, concurrency: int
) -> list[Result]:
    url = server.url(database)
    results: list[Result] = []
    async with AsyncConnectionPool(
        url, min_size=concurrency, max_size=concurrency, kwargs={"autocommit": True}
    ) as pool:

        async def raw(n: int) -> None:
            async with pool.connection() as conn:
                await conn.execute("select public.bench_add(%s, %s)", (n, 1))

        async def raw_tx(n: int) -> None:
            async with pool.connection() as conn, conn.transaction():
                await conn.execute(GATEWAY_SETUP)
                await conn.execute(GATEWAY_CALL, (f'{{"a": {n}, "b": 1}}',))

        results.append(await measure("raw", raw, seconds, concurrency))
        results.append(await measure("raw+tx", raw_tx, seconds, concurrency))

        async def raw_one_trip(n: int) -> None:
            async with pool.connection() as conn:
                cursor = psycopg.AsyncClientCursor(conn)
                call = cursor.mogrify(GATEWAY_CALL, (f'{{"a": {n}, "b": 1}}',))
                await cursor.execute(f"{GATEWAY_SETUP}; {call}")

        results.append(await measure("raw+1", raw_one_trip, seconds, concurrency))

    edge_port = free_port()
    edge = start_edge(server, database, edge_port, pool_size=concurrency)
    try:
        headers = {"apikey": keys.api_key(JWT_SECRET, "anon")}
        connections = [
            await KeepAliveConnection.open("127.0.0.1", edge_port) for _ in range(concurrency)
        ]

        async def gateway(n: int) -> None:
            request = post_json(
                "127.0.0.1", edge_port, "/rest/v1/rpc/bench_add", {"a": n, "b": 1}, headers
            )
            status, body = await connections[n // 1_000_000 % concurrency].request(request)
            if status != 200 or int(body) != n + 1:
                raise RuntimeError(f"{status}: {body!r}")

        results.append(await measure("gateway", gateway, seconds, concurrency, edge.pid))
        for connection in connections:
            connection.close()
    finally:
        edge.terminate()
        edge.wait(timeout=15)
    results.append(await through_constant_asgi(server, database, seconds, concurrency))
    return results


async def through_constant_asgi(
    server: TestServer, database: str, seconds: float, concurrency: int
) -> Result:
    """The gateway's request, answered by bench/constant_asgi.py instead."""
    port = free_port()
    process = start_edge(server, database, port, concurrency, module="bench.constant_asgi")
    try:
        connections = [
            await KeepAliveConnection.open("127.0.0.1", port) for _ in range(concurrency)
        ]
        headers = {"apikey": keys.api_key(JWT_SECRET, "anon")}

        async def constant(n: int) -> None:
            request = post_json(
                "127.0.0.1", port, "/rest/v1/rpc/bench_add", {"a": n, "b": 1}, headers
            )
            status, body = await connections[n // 1_000_000 % concurrency].request(request)
            if status != 200:
                raise RuntimeError(f"{status}: {body!r}")

        result = await measure("asgi", constant, seconds, concurrency, process.pid)
        for connection in connections:
            connection.close()
        return result
    finally:
        process.terminate()
        process.wait(timeout=15)


def through_pgbench(url: str, seconds: float, concurrency: int) -> Result:
    run = pgbench(url, PGBENCH_SCRIPT, seconds=seconds, concurrency=concurrency, latencies=True)
    return Result("pgbench", [ms / 1000 for ms in run.latencies_ms], seconds)


def start_edge(
    server: TestServer,
    database: str,
    port: int,
    pool_size: int,
    env: dict[str, str] | None = None,
    *,
    module: str = "app",
) -> subprocess.Popen:
    settings = {
        **os.environ,
        "DATABASE_URL": server.url(database),
        "EDGE_DATABASE_URL": server.url(database, "authenticator", AUTHENTICATOR_PASSWORD),
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "EDGE_PORT": str(port),
        "POOL_MIN_SIZE": str(pool_size),
        "POOL_MAX_SIZE": str(pool_size),
        "LOG_LEVEL": "warning",
        "EASYMO_LOCAL_DIR": "/nonexistent",  # never the developer's stack.env
        **(env or {}),
    }
    command = ["-m", "app", "serve"] if module == "app" else ["-m", module]
    edge = subprocess.Popen([sys.executable, *command], env=settings)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", edge)
    except StackError:
        edge.terminate()
        raise
    return edge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    server = start_test_server()
    try:
        database = server.clone("bench")
        with psycopg.connect(server.url(database), autocommit=True) as conn:
            conn.execute(FUNCTIONS)
        ceiling = through_pgbench(server.url(database), args.seconds, args.concurrency)
        results = asyncio.run(run_benchmarks(server, database, args.seconds, args.concurrency))
    finally:
        server.close()

    floor = results[0].throughput
    results.insert(0, ceiling)
    print(f"{os.cpu_count()} cores, concurrency {args.concurrency}, {args.seconds:.0f}s per row")
    print(
        f"{'path':<10}{'requests':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs raw':>8}"
        f"{'vs pgbench':>11}{'server CPU us/req':>18}"
    )
    for result in results:
        print(
            f"{result.name:<10}{len(result.latencies):>10}{result.throughput:>10.0f}"
            f"{result.percentile(0.5):>9.2f}{result.percentile(0.99):>9.2f}"
            f"{result.throughput / floor:>8.2f}{result.throughput / ceiling.throughput:>11.2f}"
            f"{result.server_cpu_us_per_request:>18.0f}"
        )
    gateway = next(r for r in results if r.name == "gateway")
    print(f"gateway mean latency {statistics.mean(gateway.latencies) * 1000:.2f} ms")
    print("target: gateway >= 0.7 of pgbench; asgi is what a Python edge can reach at all")


if __name__ == "__main__":
    main()

"""Table API throughput and latency against raw Postgres, measured in one process.

Builds a throwaway cluster (as the tests do), starts the edge as its own process, and reads one
row by primary key, and writes one row, with the same concurrency:
  raw read    `select ... where id = $1` shaped into JSON, on psycopg connections (the floor)
  raw+1 read  the set_config of role and claims and the same read as one simple-protocol
              query, bound client-side (what the gateway sends: the floor for it)
  table read  GET /rest/v1/bench_rows?id=eq.N&select=id,label over HTTP as authenticated, the
              row read through an RLS policy
  raw write   `update ... set hits = hits + 1 where id = $1`
  table write PATCH /rest/v1/bench_rows?id=eq.N with {"label": ...} (return=minimal)
Prints requests/s, p50 and p99 latency, and each row's throughput as a ratio to its raw floor.

    .venv/bin/python -m bench.table_api [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

import psycopg
from psycopg_pool import AsyncConnectionPool

from app import keys
from bench.http_load import KeepAliveConnection, get
from bench.rpc_gateway import Result, measure, start_edge
from tests.support.server import JWT_SECRET, TestServer, free_port, start_test_server

ROWS = 10_000
OWNER = "00000000-0000-4000-8000-000000000001"
TABLE = f"""
create table public.bench_rows (
    id integer primary key,
    owner_id uuid not null,
    label text not null,
    hits integer not null default 0
);
alter table public.bench_rows enable row level security;
create policy bench_rows_own on public.bench_rows for all to authenticated
using (owner_id = (select auth.uid()));
grant select, update (label) on public.bench_rows to authenticated;
insert into public.bench_rows (id, owner_id, label)
select g, '{OWNER}', 'row ' || g from generate_series(1, {ROWS}) as g;
analyze public.bench_rows;
"""
READ = (
    "with pgrst_source as (select bench_rows.id, bench_rows.label from public.bench_rows"
    " where bench_rows.id = %s) select coalesce(pg_catalog.json_agg(_postgrest_t), '[]')::text"
    " from (select * from pgrst_source) as _postgrest_t"
)
SETUP = (
    "select pg_catalog.set_config('transaction_read_only', 'on', true),"
    ' pg_catalog.set_config(\'search_path\', \'"public", "public", "extensions"\', true),'
    " pg_catalog.set_config('role', 'authenticated', true),"
    " pg_catalog.set_config('request.jwt.claims', %s, true),"
    " pg_catalog.set_config('request.headers', '{}', true),"
    " pg_catalog.set_config('request.cookies', '{}', true),"
    " pg_catalog.set_config('request.method', 'GET', true),"
    " pg_catalog.set_config('request.path', '/bench_rows', true)"
)


def row_id(n: int) -> int:
    return n % ROWS + 1


async def run_benchmarks(
    server: TestServer, database: str, seconds: float, concurrency: int
) -> list[tuple[Result, Result]]:
    claims = json.dumps({"role": "authenticated", "sub": OWNER})
    async with AsyncConnectionPool(
        server.url(database),
        min_size=concurrency,
        max_size=concurrency,
        kwargs={"autocommit": True},
    ) as pool:

        async def raw_read(n: int) -> None:
            async with pool.connection() as conn:
                await conn.execute(READ, (row_id(n),))

        async def raw_one_trip(n: int) -> None:
            async with pool.connection() as conn:
                cursor = psycopg.AsyncClientCursor(conn)
                setup = cursor.mogrify(SETUP, (claims,))
                await cursor.execute(f"{setup}; {cursor.mogrify(READ, (row_id(n),))}")

        async def raw_write(n: int) -> None:
            async with pool.connection() as conn:
                await conn.execute(
                    "update public.bench_rows set label = %s where id = %s",
                    (f"label {n}", row_id(n)),
                )

        floor_read = await measure("raw read", raw_read, seconds, concurrency)
        one_trip = await measure("raw+1 read", raw_one_trip, seconds, concurrency)
        floor_write = await measure("raw write", raw_write, seconds, concurrency)

    port = free_port()
    edge = start_edge(server, database, port, pool_size=concurrency)
    try:
        token = keys.user_token(JWT_SECRET, OWNER)
        headers = {"apikey": keys.api_key(JWT_SECRET, "anon"), "Authorization": f"Bearer {token}"}
        connections = [
            await KeepAliveConnection.open("127.0.0.1", port) for _ in range(concurrency)
        ]

        async def table_read(n: int) -> None:
            request = get(
                "127.0.0.1", port, f"/rest/v1/bench_rows?id=eq.{row_id(n)}&select=id,label", headers
            )
            status, body = await connections[n // 1_000_000 % concurrency].request(request)
            if status != 200 or json.loads(body)[0]["id"] != row_id(n):
                raise RuntimeError(f"{status}: {body!r}")

        async def table_write(n: int) -> None:
            body = json.dumps({"label": f"label {n}"}).encode()
            request = (
                f"PATCH /rest/v1/bench_rows?id=eq.{row_id(n)} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                + "\r\n"
            ).encode() + body
            status, answer = await connections[n // 1_000_000 % concurrency].request(request)
            if status != 204:
                raise RuntimeError(f"{status}: {answer!r}")

        read = await measure("table read", table_read, seconds, concurrency)
        write = await measure("table write", table_write, seconds, concurrency)
        for connection in connections:
            connection.close()
    finally:
        edge.terminate()
        edge.wait(timeout=15)
    return [(floor_read, floor_read), (one_trip, floor_read), (read, floor_read),
            (floor_write, floor_write), (write, floor_write)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    server = start_test_server()
    try:
        database = server.clone("bench")
        with psycopg.connect(server.url(database), autocommit=True) as conn:
            conn.execute(TABLE)  # type: ignore[arg-type]  # the bench's own SQL
        rows = asyncio.run(run_benchmarks(server, database, args.seconds, args.concurrency))
    finally:
        server.close()

    print(f"{os.cpu_count()} cores, concurrency {args.concurrency}, {args.seconds:.0f}s per row")
    print(f"{'path':<13}{'requests':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs raw':>8}")
    for result, floor in rows:
        print(
            f"{result.name:<13}{len(result.latencies):>10}{result.throughput:>10.0f}"
            f"{result.percentile(0.5):>9.2f}{result.percentile(0.99):>9.2f}"
            f"{result.throughput / floor.throughput:>8.2f}"
        )


if __name__ == "__main__":
    main()

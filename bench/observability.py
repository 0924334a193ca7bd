"""Observability costs: metric writes, row auditing, and the recent-metrics view at scale.

Builds a throwaway cluster (as the tests do; fsync and synchronous_commit off) and gives each
part a fresh clone of the migrated template:
  metrics   write throughput with the same concurrency, as service_role (SET ROLE on superuser
            connections): a plain INSERT of one row (baseline) against record_metric(), and a
            plain 100-row INSERT (baseline) against record_metrics() with batches of 100;
            rows/s counts samples, p50/p99 are per call
  audit     pgbench (-M prepared) inserts, then updates, into two identical payments-shaped
            tables, one with private.enable_audit(); best of two runs each, tps and the ratio
            audited/unaudited
  recent    monitoring.recent_metrics_by_service over --rows samples spread over the 30 days
            ending now, read as analyst: load time, latency over 20 runs, and its plan

    .venv/bin/python -m bench.observability [--seconds 5] [--rows 10000000] [--concurrency 4]
        [--only metrics|audit|recent]

A smoke test (about 40 s): --rows 200000 --seconds 2. The default 10M rows take minutes to load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from bench.pgbench import PgbenchRun, pgbench
from tests.support.server import TestServer, start_test_server

PARTS = ("metrics", "audit", "recent")
BATCH = 100


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# Metrics write throughput ---------------------------------------------------------------------

METRIC_TYPES = ("latency", "error_rate", "throughput", "cpu")
UNITS = {"latency": "ms", "error_rate": "ratio", "throughput": "rps", "cpu": "percent"}
OPERATIONS = ("http.request", "db.query", "cache.get", "queue.publish", "payment.provider")

Sample = tuple[str, str, str, float, str, str]
COLUMNS = "service_name, metric_type, metric_name, value, unit, tags"
PLAIN_INSERT = (
    f"insert into public.system_metrics ({COLUMNS}) values (%s, %s, %s, %s, %s, %s::jsonb)"
)
RECORD_METRIC = "select public.record_metric(%s, %s, %s, %s, %s, %s::jsonb)"
RECORD_METRICS = "select public.record_metrics(%s::jsonb)"
MULTI_INSERT = f"insert into public.system_metrics ({COLUMNS}) values " + ", ".join(
    ["(%s, %s, %s, %s, %s, %s::jsonb)"] * BATCH
)


def make_sample(rng: random.Random) -> Sample:
    metric_type = rng.choice(METRIC_TYPES)
    value = {
        "latency": 5 + rng.expovariate(1 / 40),
        "error_rate": rng.uniform(0, 0.05),
        "throughput": rng.uniform(50, 1000),
        "cpu": rng.uniform(5, 95),
    }[metric_type]
    tags = json.dumps({"region": rng.choice(("af-south-1", "eu-west-1")), "pod": rng.randrange(8)})
    return (
        f"svc-{rng.randrange(50):02d}",
        metric_type,
        f"{rng.choice(OPERATIONS)}.{metric_type}",
        round(value, 3),
        UNITS[metric_type],
        tags,
    )


@dataclass
class WriteResult:
    name: str
    rows_per_call: int
    latencies: list[float]
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return len(self.latencies) * self.rows_per_call / self.seconds


async def measure_writes(
    name: str,
    url: str,
    *,
    call: Callable[[psycopg.AsyncConnection[Any], int], Awaitable[None]],
    rows_per_call: int,
    seconds: float,
    concurrency: int,
) -> WriteResult:
    connections = [
        await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(concurrency)
    ]
    try:
        for conn in connections:
            await conn.execute("set role service_role")
            for warm in range(10):  # past psycopg's prepare threshold before the clock starts
                await call(conn, warm)
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def worker(conn: psycopg.AsyncConnection[Any], worker_id: int) -> None:
            n = worker_id
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await call(conn, n)
                latencies.append(time.perf_counter() - started)
                n += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(conn, i) for i, conn in enumerate(connections)))
        return WriteResult(name, rows_per_call, latencies, time.perf_counter() - started)
    finally:
        for conn in connections:
            await conn.close()


async def metric_writes(url: str, seconds: float, concurrency: int) -> list[WriteResult]:
    # Payloads are built before the clock starts: the client shares the server's two cores.
    rng = random.Random(20260401)  # noqa: S311 - the same payloads every run, not secrets
    singles = [make_sample(rng) for _ in range(1000)]
    batches = [[make_sample(rng) for _ in range(BATCH)] for _ in range(20)]
    batch_json = [
        json.dumps(
            [
                {
                    "service_name": s[0],
                    "metric_type": s[1],
                    "metric_name": s[2],
                    "value": s[3],
                    "unit": s[4],
                    "tags": json.loads(s[5]),
                }
                for s in batch
            ]
        )
        for batch in batches
    ]
    batch_params = [[field for sample in batch for field in sample] for batch in batches]

    async def plain_insert(conn: psycopg.AsyncConnection[Any], n: int) -> None:
        await conn.execute(PLAIN_INSERT, singles[n % len(singles)])

    async def record_metric(conn: psycopg.AsyncConnection[Any], n: int) -> None:
        await conn.execute(RECORD_METRIC, singles[n % len(singles)])

    async def multi_insert(conn: psycopg.AsyncConnection[Any], n: int) -> None:
        await conn.execute(MULTI_INSERT, batch_params[n % len(batches)])

    async def record_metrics(conn: psycopg.AsyncConnection[Any], n: int) -> None:
        cursor = await conn.execute(RECORD_METRICS, (batch_json[n % len(batches)],))
        row = await cursor.fetchone()
        if row is None or row[0] != BATCH:
            raise RuntimeError(f"record_metrics returned {row!r}")

    runs: list[tuple[str, Callable[[psycopg.AsyncConnection[Any], int], Awaitable[None]], int]] = [
        ("insert 1 row", plain_insert, 1),
        ("record_metric", record_metric, 1),
        (f"insert {BATCH} rows", multi_insert, BATCH),
        (f"record_metrics x{BATCH}", record_metrics, BATCH),
    ]
    return [
        await measure_writes(
            name, url, call=call, rows_per_call=rows, seconds=seconds, concurrency=concurrency
        )
        for name, call, rows in runs
    ]


def report_metrics(server: TestServer, seconds: float, concurrency: int) -> None:
    database = server.clone("bench_metrics")
    results = asyncio.run(metric_writes(server.url(database), seconds, concurrency))
    with psycopg.connect(server.url(database)) as conn:
        row = conn.execute("select count(*) from public.system_metrics").fetchone()
    written = sum(len(r.latencies) * r.rows_per_call for r in results)
    print(
        f"\n1. Metrics write throughput: {concurrency} connections as service_role,"
        f" {seconds:g}s each"
    )
    print(f"{'path':<22}{'calls':>9}{'rows/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs base':>9}")
    baseline = results[0]
    for result in results:
        if result.rows_per_call != baseline.rows_per_call:
            baseline = result
        print(
            f"{result.name:<22}{len(result.latencies):>9}{result.rows_per_second:>10.0f}"
            f"{percentile(result.latencies, 0.5) * 1000:>9.2f}"
            f"{percentile(result.latencies, 0.99) * 1000:>9.2f}"
            f"{result.rows_per_second / baseline.rows_per_second:>9.2f}"
        )
    warm_rows = sum(10 * concurrency * r.rows_per_call for r in results)
    print(f"rows in system_metrics: {row[0] if row else 0} ({written} timed + {warm_rows} warm-up)")


# Audit overhead -------------------------------------------------------------------------------

PAYMENTS = """
create table public.{name} (
    id bigint generated always as identity primary key,
    user_id uuid not null,
    amount numeric(20, 2) not null,
    currency text not null,
    status text not null,
    metadata jsonb not null default '{{}}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index {name}_user_created on public.{name} (user_id, created_at);
insert into public.{name} (user_id, amount, currency, status, metadata)
select
    md5((g.i % 100000)::text)::uuid,
    (random() * 50000)::numeric(20, 2),
    'RWF',
    (array['pending', 'succeeded', 'failed', 'refunded'])[1 + g.i % 4],
    jsonb_build_object('channel', 'momo', 'reference', 'seed-' || g.i)
from generate_series(1, {seed_rows}) as g (i);
"""
SEED_ROWS = 100_000
INSERT_SCRIPT = """\
\\set uid random(1, 100000)
\\set cents random(100, 5000000)
insert into public.{table} (user_id, amount, currency, status, metadata)
values (md5(:uid::text)::uuid, :cents / 100.0, 'RWF', 'pending',
    '{{"channel": "momo", "reference": "bench", "phone": "+250788000000"}}');
"""
UPDATE_SCRIPT = f"""\
\\set id random(1, {SEED_ROWS})
\\set s random(1, 4)
update public.{{table}}
set status = (array['pending', 'succeeded', 'failed', 'refunded'])[:s], updated_at = now()
where id = :id;
"""


def report_audit(server: TestServer, seconds: float, concurrency: int) -> None:
    database = server.clone("bench_audit")
    url = server.url(database)
    plain, audited = "bench_payments", "bench_payments_audited"
    with psycopg.connect(url, autocommit=True) as conn:
        for table in (plain, audited):
            conn.execute(PAYMENTS.format(name=table, seed_rows=SEED_ROWS).encode())
        # After seeding, so both tables start with the same rows and the log holds none of them.
        conn.execute("select private.enable_audit(%s, '{metadata}')", (f"public.{audited}",))
        conn.execute(f"vacuum analyze public.{plain}, public.{audited}".encode())
        audit_before = conn.execute("select count(*) from public.system_audit_logs").fetchone()

    print(
        f"\n2. Audit overhead: pgbench -M prepared -c {concurrency} -j {min(2, concurrency)}"
        f" -T {max(1, round(seconds))}, one statement per transaction, best of 2 runs,"
        f" tables seeded with {SEED_ROWS} rows"
    )
    print(
        f"{'workload':<10}{'plain tps':>11}{'audited tps':>13}{'plain ms':>10}{'audit ms':>10}"
        f"{'ratio':>8}"
    )
    for workload, script in (("insert", INSERT_SCRIPT), ("update", UPDATE_SCRIPT)):
        best: dict[str, PgbenchRun] = {}
        for _ in range(2):
            for table in (plain, audited):
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("checkpoint")
                run = pgbench(
                    url, script.format(table=table), seconds=seconds, concurrency=concurrency
                )
                if table not in best or run.tps > best[table].tps:
                    best[table] = run
        print(
            f"{workload:<10}{best[plain].tps:>11.0f}{best[audited].tps:>13.0f}"
            f"{best[plain].latency_ms:>10.2f}{best[audited].latency_ms:>10.2f}"
            f"{best[audited].tps / best[plain].tps:>8.2f}"
        )
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*), count(*) filter (where new_data ->> 'metadata' = '[redacted]')"
            " from public.system_audit_logs where resource_type = %s",
            (f"public.{audited}",),
        ).fetchone()
    before = audit_before[0] if audit_before else 0
    if row:
        print(f"audit rows written: {row[0]} ({row[1]} with metadata redacted; {before} before)")
    print("target ratio >= 0.5 (supa_audit keeps about 0.25)")


# recent_metrics_by_service at scale -----------------------------------------------------------

CHUNK_ROWS = 1_000_000
SPAN = timedelta(days=30)
# Sample i of n lands at start + (i + 1) / n of the span, so the newest is at the span's end;
# 1000 series (50 services x 4 types x 5 operations) take turns, as interleaved arrivals would.
LOAD = f"""
insert into public.system_metrics (
    service_name, metric_type, metric_name, value, unit, tags, created_at
)
select
    'svc-' || lpad((s.series / 20)::text, 2, '0'),
    (array['{"', '".join(METRIC_TYPES)}'])[t.k],
    (array['{"', '".join(OPERATIONS)}'])[1 + s.series %% 5]
    || '.' || (array['{"', '".join(METRIC_TYPES)}'])[t.k],
    case t.k
        when 1 then 5 + 40 * -ln(1 - random())
        when 2 then 0.05 * random()
        when 3 then 50 + 950 * random()
        else 5 + 90 * random()
    end,
    (array['{"', '".join(UNITS[t] for t in METRIC_TYPES)}'])[t.k],
    case when g.i %% 2 = 0 then '{{"region": "af-south-1"}}'::jsonb
        else '{{"region": "eu-west-1"}}'::jsonb end,
    %(start)s::timestamptz + %(span)s::interval * ((g.i + 1)::float8 / %(rows)s)
from generate_series(%(low)s::bigint, %(high)s::bigint) as g (i)
cross join lateral (select g.i %% 1000 as series) as s
cross join lateral (select 1 + (s.series / 5) %% 4 as k) as t
"""
RECENT = "select * from monitoring.recent_metrics_by_service"
LAST_HOUR = (
    "select count(*) from public.system_metrics"
    " where created_at > now() - interval '1 hour' and created_at <= now()"
)


def report_recent(server: TestServer, rows: int) -> None:
    database = server.clone("bench_recent")
    print(f"\n3. monitoring.recent_metrics_by_service over {rows} rows spread over 30 days")
    with psycopg.connect(server.url(database), autocommit=True) as conn:
        row = conn.execute("select now()").fetchone()
        if row is None:
            raise RuntimeError("no clock")
        start = row[0] - SPAN
        # Children from the span's first month on, so no row goes through the default partition.
        conn.execute("select count(*) from private.maintain_partitions(p_as_of => %s)", (start,))
        started = time.perf_counter()
        for low in range(0, rows, CHUNK_ROWS):
            high = min(rows, low + CHUNK_ROWS) - 1
            conn.execute(
                LOAD, {"start": start, "span": SPAN, "rows": rows, "low": low, "high": high}
            )
        loaded = time.perf_counter() - started
        conn.execute("vacuum analyze public.system_metrics")
        vacuumed = time.perf_counter() - started - loaded
        print(
            f"load {loaded:.1f}s ({rows / loaded:.0f} rows/s, chunks of {CHUNK_ROWS}),"
            f" vacuum analyze {vacuumed:.1f}s"
        )
        for line in conn.execute(
            "select partition_name, estimated_rows, pg_size_pretty(total_bytes)"
            " from monitoring.partition_children where table_name = 'public.system_metrics'"
            " and estimated_rows > 0 or partition_name = 'system_metrics_default'"
            " order by partition_name"
        ).fetchall():
            print(f"  {line[0]:<30}{line[1]:>12} rows{line[2]:>12}")

        conn.execute("set role analyst")
        for _ in range(2):
            conn.execute(RECENT).fetchall()
        latencies: list[float] = []
        groups = 0
        samples = 0
        for _ in range(20):
            began = time.perf_counter()
            result = conn.execute(RECENT).fetchall()
            latencies.append(time.perf_counter() - began)
            groups = len(result)
            samples = sum(r[4] for r in result)
        print(
            f"as analyst, 20 runs after 2 warm-ups: p50 {percentile(latencies, 0.5) * 1000:.1f} ms,"
            f" p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms;"
            f" {groups} groups over {samples} samples"
        )
        conn.execute("reset role")
        row = conn.execute(LAST_HOUR).fetchone()
        print(
            f"rows in the last hour: {row[0] if row else 0} (an even spread gives"
            f" {rows / (30 * 24):.0f}; fewer by the share of the hour the load took)"
        )
        conn.execute("set role analyst")
        print("explain (analyze, buffers, costs off, timing off):")
        for (line,) in conn.execute(
            f"explain (analyze, buffers, costs off, timing off) {RECENT}".encode()
        ).fetchall():
            print(f"  {line}")


# Main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per timed run (parts 1, 2)")
    parser.add_argument("--rows", type=int, default=10_000_000, help="samples loaded (part 3)")
    parser.add_argument("--concurrency", type=int, default=4, help="connections (parts 1, 2)")
    parser.add_argument("--only", choices=PARTS, help="run one part")
    args = parser.parse_args()
    parts = [args.only] if args.only else list(PARTS)

    server = start_test_server()
    try:
        with psycopg.connect(server.admin_url) as conn:
            settings = conn.execute(
                "select current_setting('server_version'), current_setting('fsync'),"
                " current_setting('synchronous_commit'), current_setting('shared_buffers')"
            ).fetchone()
        if settings:
            print(
                f"{os.cpu_count()} cores; PostgreSQL {settings[0]}; fsync {settings[1]},"
                f" synchronous_commit {settings[2]}, shared_buffers {settings[3]}",
                flush=True,
            )
        for part in parts:
            if part == "metrics":
                report_metrics(server, args.seconds, args.concurrency)
            elif part == "audit":
                report_audit(server, args.seconds, args.concurrency)
            else:
                report_recent(server, args.rows)
            print(flush=True, end="")
    finally:
        server.close()


if __name__ == "__main__":
    main()

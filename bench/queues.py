"""message_queue throughput against a bare Postgres queue, and its drift as completed work piles
up, on one throwaway cluster with fsync and synchronous_commit on.

  enqueue       enqueue_message (validation, NOTIFY) against an INSERT into a bare table
  claim 1       claim_messages(1) + ack_messages in one transaction against DELETE ... WHERE id =
                (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING, the usual bare queue
  claim 10      the same, 10 at a time (messages/s)
  drift         enqueue + claim 1 + ack per transaction for --drift-seconds: the first and last
                10 s, as completed rows pile up (a queue that keeps them in the table it claims
                from slows down as they grow)

pgbench -M prepared, -c 8 -j 2 by default. The bare queue has no priority, idempotency, retries
or dead letters: the ratio is what those cost.

    .venv/bin/python -m bench.queues [--seconds 20] [--drift-seconds 60] [--clients 8]
"""

from __future__ import annotations

import argparse
import os

import psycopg

from bench.pgbench import PgbenchRun, pgbench
from tests.support.server import start_test_server

BARE_QUEUE = """
create table bench_bare_queue (
    id bigint generated always as identity primary key,
    payload jsonb not null,
    enqueued_at timestamptz not null default now()
);
"""
ENQUEUE = "select public.enqueue_message('bench', 'job', '{\"n\": 1}', 5);\n"
BARE_ENQUEUE = "insert into bench_bare_queue (payload) values ('{\"n\": 1}');\n"
CLAIM = (
    "select public.ack_messages(coalesce(array_agg(c.id), '{{}}'), 'w')"
    " from public.claim_messages('bench', {batch}, 30, 'w') as c;\n"
)
BARE_CLAIM = (
    "delete from bench_bare_queue where id in (select id from bench_bare_queue order by id"
    " limit {batch} for update skip locked) returning id, payload;\n"
)


def fill(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "select public.enqueue_message('bench', 'job', jsonb_build_object('n', n), 5)"
            " from generate_series(1, %s) as n",
            (rows,),
        )
        conn.execute(
            "insert into bench_bare_queue (payload)"
            " select jsonb_build_object('n', n) from generate_series(1, %s) as n",
            (rows,),
        )
    vacuum(url)


def vacuum(url: str) -> None:
    """Each row starts from vacuumed tables on both sides, as pgbench's own runs do: otherwise a
    row measures how many dead rows the one before it left behind."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze public.message_queue, bench_bare_queue")


def row(name: str, ours: PgbenchRun, bare: PgbenchRun, per_call: int) -> None:
    print(
        f"{name:<10}{ours.tps * per_call:>12.0f}{ours.latency_ms:>9.2f}"
        f"{bare.tps * per_call:>12.0f}{bare.latency_ms:>9.2f}{ours.tps / bare.tps:>8.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--drift-seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    server = start_test_server(durable=True)
    try:
        url = server.url(server.clone("bench_queues"))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(BARE_QUEUE)
        run = {"seconds": args.seconds, "concurrency": args.clients}
        enqueue = pgbench(url, ENQUEUE, **run), pgbench(url, BARE_ENQUEUE, **run)
        # Enough for both claim runs never to find the queue empty.
        fill(url, 600_000)
        claim1 = (
            pgbench(url, CLAIM.format(batch=1), **run),
            pgbench(url, BARE_CLAIM.format(batch=1), **run),
        )
        vacuum(url)
        claim10 = (
            pgbench(url, CLAIM.format(batch=10), **run),
            pgbench(url, BARE_CLAIM.format(batch=10), **run),
        )
        vacuum(url)
        drift = pgbench(
            url,
            ENQUEUE + CLAIM.format(batch=1),
            seconds=args.drift_seconds,
            concurrency=args.clients,
            progress=10,
        )
        with psycopg.connect(url) as conn:
            completed = conn.execute("select count(*) from public.message_queue_completed")
            done = completed.fetchone()
    finally:
        server.close()

    print(f"{os.cpu_count()} cores, {args.clients} clients, {args.seconds:.0f}s per row, fsync on")
    print(f"{'':<10}{'ours/s':>12}{'ms':>9}{'bare/s':>12}{'ms':>9}{'ratio':>8}")
    row("enqueue", *enqueue, 1)
    row("claim 1", *claim1, 1)
    row("claim 10", *claim10, 10)
    first, last = drift.interval_tps[0], drift.interval_tps[-1]
    print(
        f"drift: enqueue+claim+ack {first:.0f}/s in the first 10 s, {last:.0f}/s in the last"
        f" ({last / first:.2f}), {done[0] if done else 0} completed rows by the end"
    )
    print("targets: enqueue 7,750/s; claim 1 + ack 2,840/s; claim 10 + ack 14,050/s; drift >= 0.8")


if __name__ == "__main__":
    main()

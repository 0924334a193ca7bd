"""service_heartbeat from 8 clients on 200 registered instances against a plain one-row update,
on one throwaway cluster with fsync and synchronous_commit on.

  heartbeat     service_heartbeat(name, 'healthy', metrics, instance) on a random instance of 200:
                validation, one HOT update of last_heartbeat_at and metrics
  plain         UPDATE of the same two columns of a random row of a bare 200-row table (primary
                key only, default fillfactor)

pgbench -M prepared, -c 8 -j 2 by default, each transaction's latency logged for p50/p99. The
two alternate in --rounds rounds (heartbeat first in odd rounds, plain first in even ones), so
load from elsewhere on the machine and the cluster's drift (checkpoints, autovacuum) fall on
both alike; each figure is over all its rounds. Both run as the owner (service_heartbeat is
SECURITY DEFINER: the role changes nothing). Target: heartbeat at least 0.7 of plain.

    .venv/bin/python -m bench.service_registry [--seconds 20] [--rounds 4] [--clients 8]
        [--instances 200]
"""

from __future__ import annotations

import argparse
import os

import psycopg

from bench.pgbench import PgbenchRun, pgbench
from tests.support.server import start_test_server

PLAIN_TABLE = """
create table bench_plain (
    id integer primary key,
    last_heartbeat_at timestamptz not null default now(),
    metrics jsonb not null default '{}'
)
"""
HEARTBEAT = (
    "\\set i random(1, {instances})\n"
    "select public.service_heartbeat('bench', 'healthy', '{{\"in_flight\": 3}}', 'i' || :i);\n"
)
PLAIN = (
    "\\set i random(1, {instances})\n"
    "update bench_plain set last_heartbeat_at = now(), metrics = '{{\"in_flight\": 3}}'"
    " where id = :i;\n"
)


def prepare(url: str, instances: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PLAIN_TABLE)
        conn.execute(
            "insert into bench_plain (id) select n from generate_series(1, %s) as n", (instances,)
        )
        conn.execute(
            "select public.register_service('bench', 'worker', '1', null, null, '[]', null,"
            " 'i' || n, 10) from generate_series(1, %s) as n",
            (instances,),
        )
        conn.execute(
            "select public.service_heartbeat('bench', 'healthy', null, 'i' || n)"
            " from generate_series(1, %s) as n",
            (instances,),
        )
        conn.execute("vacuum analyze public.service_registry, bench_plain")


def hot_share(url: str) -> tuple[int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select pg_stat_force_next_flush()")
        row = conn.execute(
            "select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables"
            " where relid = 'public.service_registry'::regclass"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def merged(runs: list[PgbenchRun]) -> PgbenchRun:
    """Several runs as one: transactions over the time they took, every latency."""
    transactions = sum(r.transactions for r in runs)
    seconds = sum(r.transactions / r.tps for r in runs)
    latencies = [ms for r in runs for ms in r.latencies_ms]
    return PgbenchRun(
        transactions / seconds, sum(latencies) / len(latencies), transactions, [], latencies
    )


def line(name: str, run: PgbenchRun) -> None:
    print(
        f"{name:<10}{run.tps:>10.0f}{run.percentile(50):>9.2f}{run.percentile(99):>9.2f}"
        f"{run.transactions:>10}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--instances", type=int, default=200)
    args = parser.parse_args()

    server = start_test_server(durable=True)
    try:
        url = server.url(server.clone("bench_service_registry"))
        prepare(url, args.instances)
        run = {
            "seconds": args.seconds / args.rounds,
            "concurrency": args.clients,
            "latencies": True,
        }
        heartbeats: list[PgbenchRun] = []
        plains: list[PgbenchRun] = []
        before = hot_share(url)
        for n in range(args.rounds):
            order = [(HEARTBEAT, heartbeats), (PLAIN, plains)]
            for script, runs in order if n % 2 == 0 else reversed(order):
                runs.append(pgbench(url, script.format(instances=args.instances), **run))
        after = hot_share(url)
    finally:
        server.close()

    heartbeat, plain = merged(heartbeats), merged(plains)
    updates, hot = after[0] - before[0], after[1] - before[1]
    print(
        f"{os.cpu_count()} cores, {args.clients} clients, {args.instances} instances,"
        f" {args.seconds:.0f}s per row in {args.rounds} rounds, fsync on"
    )
    print(f"{'':<10}{'tps':>10}{'p50 ms':>9}{'p99 ms':>9}{'calls':>10}")
    line("heartbeat", heartbeat)
    line("plain", plain)
    print(f"ratio heartbeat/plain: {heartbeat.tps / plain.tps:.2f} (target >= 0.7)")
    print(f"HOT: {hot} of {updates} registry updates during the heartbeat run")


if __name__ == "__main__":
    main()

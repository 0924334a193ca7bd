"""Exactly once under a crash: 8 worker processes drain 100,000 messages from message_queue
(claim 10, note each delivery in a file of its own, ack), and one of them is killed with
SIGKILL midway. Its claims come back when their visibility timeout ends and other workers take
them. Prints the rate, the deliveries (a message the killed worker held may be delivered twice:
that is what at-least-once delivery with a visibility timeout means) and the acks, which must
be exactly one per message, with none lost.

    .venv/bin/python -m bench.queue_drain [--messages 100000] [--workers 8]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg

from tests.support.server import start_test_server

VISIBILITY_TIMEOUT_S = 5


def work(url: str, log: Path, worker: str) -> None:
    """One worker: until a claim comes back empty, claim 10, write the ids down (the
    delivery), ack them."""
    with psycopg.connect(url, autocommit=True) as conn, log.open("a") as delivered:
        conn.execute("set role service_role")
        idle_since: float | None = None
        while True:
            ids = [
                row[0]
                for row in conn.execute(
                    "select id from public.claim_messages('drain', 10, %s, %s)",
                    (VISIBILITY_TIMEOUT_S, worker),
                )
            ]
            if not ids:
                # Stay a while: a dead worker's claims come back after the timeout.
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 2 * VISIBILITY_TIMEOUT_S:
                    return
                time.sleep(0.2)
                continue
            idle_since = None
            delivered.write("".join(f"{i}\n" for i in ids))
            delivered.flush()
            conn.execute("select public.ack_messages(%s, %s)", (ids, worker))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--work", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.work:
        work(args.work[0], Path(args.work[1]), args.work[2])
        return

    server = start_test_server(durable=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    try:
        url = server.url(server.clone("bench_drain"))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "select public.enqueue_message('drain', 'job', jsonb_build_object('n', n))"
                " from generate_series(1, %s) as n",
                (args.messages,),
            )
        started = time.monotonic()
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    *("-m", "bench.queue_drain", "--work"),
                    *(url, str(folder / f"w{n}.log"), f"w{n}"),
                ]
            )
            for n in range(args.workers)
        ]
        # Midway, the first worker dies holding its claims.
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                row = conn.execute("select count(*) from public.message_queue_completed").fetchone()
                if row and row[0] >= args.messages // 2:
                    break
                time.sleep(0.05)
        os.kill(workers[0].pid, signal.SIGKILL)
        for worker in workers:
            worker.wait()
        elapsed = time.monotonic() - started
        with psycopg.connect(url) as conn:
            acked, distinct, left = conn.execute(
                "select count(*), count(distinct id),"
                " (select count(*) from public.message_queue)"
                " from public.message_queue_completed"
            ).fetchone() or (0, 0, 0)
    finally:
        server.close()

    deliveries: Counter[int] = Counter()
    for log in folder.glob("w*.log"):
        deliveries.update(int(line) for line in log.read_text().split())
    twice = sum(1 for n in deliveries.values() if n > 1)
    print(
        f"{os.cpu_count()} cores, {args.workers} workers, {args.messages} messages,"
        f" worker w0 killed with SIGKILL at half-way; fsync on"
    )
    print(f"drained in {elapsed:.1f} s ({args.messages / elapsed:.0f} msg/s, incl. the timeout)")
    print(
        f"acked {acked} rows for {distinct} distinct messages; {left} left in the queue;"
        f" delivered {len(deliveries)} distinct, {twice} of them twice (the killed worker's)"
    )
    ok = acked == distinct == args.messages == len(deliveries) and left == 0
    print("exactly once: " + ("yes" if ok else "NO"))


if __name__ == "__main__":
    main()

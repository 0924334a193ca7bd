"""The sender end to end: a backlog in whatsapp_message_queue drained by `python -m app worker`
processes into the fake provider, against the same fake fed by the sender's own HTTP client
(httpx over app.sender.transport) with no queue, from as many processes, --batch-size requests
at once each: the ratio is what claiming, per-recipient lanes and recording cost.

Both sides run as separate processes on this machine, with the fake in a process of its own,
and the cluster with fsync and synchronous_commit on. Every message is a template (no 24-hour
window to open), `--per-recipient` messages to each of `--messages / --per-recipient`
recipients, so lanes are busy as they would be in a broadcast.

With --kill, one worker is killed with SIGKILL half-way, and the bench then checks that every
message was recorded sent exactly once and none was lost, against the fake's own count of sends
per queue id (a send the killed worker made but never recorded goes out again: the Cloud API has
no idempotency key). With --restart, Postgres is restarted (`pg_ctl restart -m fast`) half-way
instead, under live workers: they hold what they sent across the restart, so the count of
messages sent twice must be 0.

    .venv/bin/python -m bench.sender [--messages 20000] [--workers 4] [--per-recipient 5]
    .venv/bin/python -m bench.sender --messages 100000 --workers 8 --kill
    .venv/bin/python -m bench.sender --messages 2000 --restart
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

import httpx
import psycopg
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.local.cluster import Cluster
from app.sender.outbound import OutboundMessage
from app.sender.providers import MetaCloudApi, meta_request_body
from app.sender.sandbox import create_sandbox_app
from app.sender.transport import provider_client
from tests.support.fake_provider import (
    META_ACCESS_TOKEN,
    META_PHONE_NUMBER_ID,
    TWILIO_ACCOUNT_SID,
    TWILIO_API_TOKEN,
)
from tests.support.sender import TEMPLATE, enqueue_templates, sends_per_queue_id, worker_env
from tests.support.server import (
    AUTHENTICATOR_PASSWORD,
    free_port,
    start_cluster_server,
    start_test_server,
)


def fake_meta(fake_url: str) -> MetaCloudApi:
    """The provider the workers send with (the worker's own defaults, pointed at the fake)."""
    return MetaCloudApi(
        base_url=fake_url, phone_number_id=META_PHONE_NUMBER_ID, access_token=META_ACCESS_TOKEN
    )


def serve_fake(port: int, *, keep_all: bool) -> None:
    """The fake provider alone, as the subprocess the bench starts. With `keep_all` it keeps
    every request and answers GET /bench/deliveries with how many sends carried each queue id
    (`biz_opaque_callback_data`), counted the provider's side."""
    app, state = create_sandbox_app(
        META_ACCESS_TOKEN,
        TWILIO_ACCOUNT_SID,
        TWILIO_API_TOKEN,
        max_recorded=None if keep_all else 1000,
    )

    async def deliveries(request: Request) -> JSONResponse:
        sends = sends_per_queue_id(r.json for r in state.requests)
        return JSONResponse({str(queue_id): n for queue_id, n in sends.items()})

    app.router.routes.append(Route("/bench/deliveries", deliveries, methods=["GET"]))
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, backlog=4096)


def start_fake(*, keep_all: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "bench.sender", "--serve-fake", str(port)),
            *(["--kill"] if keep_all else []),
        ]
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.post(fake_meta(url).messages_url, timeout=1)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        else:
            return process, url


class SentCounter:
    """Counts the messages sent over one connection, opened again after a restart."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection[tuple[int]] | None = None

    def __call__(self) -> int | None:
        """Messages sent; None while the database is away."""
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=2)
            row = self.conn.execute(
                "select count(*) from public.whatsapp_message_queue where status = 'sent'"
            ).fetchone()
        except psycopg.OperationalError:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return None
        return row[0] if row else 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def drain(
    url: str,
    edge_url: str,
    fake_url: str,
    workers: int,
    messages: int,
    *,
    batch_size: int,
    kill: bool,
    restart: Cluster | None = None,
) -> float:
    """Seconds until every message is sent. With `kill`, the first worker is killed with
    SIGKILL once half are sent; with `restart`, that cluster is restarted then. Claims cut off
    come back after their lease, so the lease is short then (10 s, with a 2 s HTTP timeout: the
    sender requires twice the timeout plus 5 s)."""
    disrupt = kill or restart is not None
    env = worker_env(
        edge_url,
        fake_url,
        SENDER_WORKERS="1",
        SENDER_BATCH_SIZE=str(batch_size),
        LOG_LEVEL="warning",
        **({"SENDER_LEASE_SECONDS": "10", "SENDER_HTTP_TIMEOUT_SECONDS": "2"} if disrupt else {}),
    )
    started = time.monotonic()
    processes = [
        subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env) for _ in range(workers)
    ]
    disrupted = not disrupt
    sent_so_far = SentCounter(url)
    try:
        while True:
            sent = sent_so_far()
            if sent is not None and sent >= messages:
                return time.monotonic() - started
            if any(p.poll() is not None for p in processes[1 if kill and disrupted else 0 :]):
                raise RuntimeError("a worker exited before the queue was drained")
            if not disrupted and sent is not None and sent >= messages // 2:
                if kill:
                    processes[0].kill()
                elif restart is not None:
                    restart.restart()
                disrupted = True
            time.sleep(0.05)
    finally:
        sent_so_far.close()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()


async def post_directly(fake_url: str, messages: int, concurrency: int) -> None:
    # What the worker sends for the first recipient's first message, built by the same code.
    provider = fake_meta(fake_url)
    body = meta_request_body(OutboundMessage(1, "+250780000000", "template", TEMPLATE))
    headers = provider.headers
    target = provider.messages_url
    remaining = messages
    async with provider_client(concurrency, httpx.Timeout(15.0)) as client:

        async def one() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                (await client.post(target, json=body, headers=headers)).raise_for_status()

        await asyncio.gather(*(one() for _ in range(concurrency)))


def baseline(fake_url: str, workers: int, messages: int, batch_size: int) -> float:
    """The same number of sends from `workers` processes of batch_size concurrent requests."""
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                *("-m", "bench.sender", "--post", fake_url),
                *(str(messages // workers), str(batch_size)),
            ]
        )
        for _ in range(workers)
    ]
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError("a baseline process failed")
    return time.monotonic() - started


def latencies(url: str) -> tuple[float, float]:
    """p50 and p99 seconds from due to sent; on a drained backlog it is the queueing delay."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select extract(epoch from sent_at - scheduled_at)::float8"
            " from public.whatsapp_message_queue where status = 'sent'"
        ).fetchall()
    values = sorted(r[0] for r in rows)
    return statistics.median(values), values[int(len(values) * 0.99) - 1]


def exactly_once(url: str, fake_url: str, messages: int, why_twice: str | None) -> None:
    """After a drain with a killed worker or a restarted database: our records against the
    provider's. `why_twice` explains messages sent twice; None: there must be none."""
    with psycopg.connect(url) as conn:
        statuses = dict(
            conn.execute(
                "select status, count(*) from public.whatsapp_message_queue group by status"
            ).fetchall()
        )
        tracked, distinct = conn.execute(
            "select count(*), count(distinct metadata ->> 'queue_id')"
            " from public.message_tracking where direction = 'OUTBOUND'"
        ).fetchone() or (0, 0)
    sends = httpx.get(f"{fake_url}/bench/deliveries", timeout=60).json()
    twice = sum(1 for n in sends.values() if n > 1)
    print(f"queue: {statuses}; OUTBOUND message_tracking rows {tracked} ({distinct} queue ids)")
    print(
        f"provider: {sum(sends.values())} sends for {len(sends)} distinct queue ids,"
        f" {twice} sent twice" + (f" ({why_twice})" if why_twice else "")
    )
    ok = statuses == {"sent": messages} and tracked == distinct == messages == len(sends)
    print("recorded exactly once, none lost: " + ("yes" if ok else "NO"))
    if why_twice is None:
        print("none sent twice: " + ("yes" if twice == 0 else "NO"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--per-recipient", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=50, help="each worker's claims")
    parser.add_argument(
        "--kill", action="store_true", help="SIGKILL one worker half-way, then check each once"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="restart Postgres half-way (pg_ctl restart -m fast), then check each once",
    )
    parser.add_argument("--serve-fake", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--post", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.serve_fake, keep_all=args.kill)
        return
    if args.post:
        asyncio.run(post_directly(args.post[0], int(args.post[1]), int(args.post[2])))
        return

    check = args.kill or args.restart
    # --restart restarts the server: a cluster of its own, whatever TEST_DATABASE_URL says.
    server = start_cluster_server(durable=True) if args.restart else start_test_server(durable=True)
    fake, fake_url = start_fake(keep_all=check)
    try:
        database = server.clone("bench_sender")
        url = server.url(database)
        enqueue_templates(url, args.messages, args.per_recipient)
        edge_url = server.url(database, "authenticator", AUTHENTICATOR_PASSWORD)
        ours = drain(
            url,
            edge_url,
            fake_url,
            args.workers,
            args.messages,
            batch_size=args.batch_size,
            kill=args.kill,
            restart=server.cluster if args.restart else None,
        )
        p50, p99 = latencies(url)
        if args.kill:
            exactly_once(
                url,
                fake_url,
                args.messages,
                "sent by the killed worker, which died before recording them",
            )
        elif args.restart:
            exactly_once(url, fake_url, args.messages, None)
        raw = baseline(fake_url, args.workers, args.messages, args.batch_size)
    finally:
        fake.terminate()
        fake.wait()
        server.close()

    print(
        f"{os.cpu_count()} cores, {args.messages} messages to {args.messages // args.per_recipient}"
        f" recipients, {args.workers} worker processes, fsync on"
    )
    print(
        f"sender: {args.messages / ours:.0f} msg/s ({ours:.1f} s), due to sent p50 {p50:.2f} s"
        f" p99 {p99:.2f} s"
    )
    print(f"the same client straight to the fake: {args.messages / raw:.0f} msg/s ({raw:.1f} s)")
    print(f"ratio {raw / ours:.2f}; target: at least 1,000 msg/s with 4 workers")


if __name__ == "__main__":
    main()

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
no idempotency key).

    .venv/bin/python -m bench.sender [--messages 20000] [--workers 4] [--per-recipient 5]
    .venv/bin/python -m bench.sender --messages 100000 --workers 8 --kill
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter

import httpx
import psycopg
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

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
from tests.support.server import AUTHENTICATOR_PASSWORD, JWT_SECRET, free_port, start_test_server

TEMPLATE = {"name": "ride_update", "language": {"code": "en"}}


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
        # The start-up probe carries no queue id: it is not a send.
        sends = Counter(
            str(queue_id)
            for r in state.requests
            if (queue_id := (r.json or {}).get("biz_opaque_callback_data")) is not None
        )
        return JSONResponse(sends)

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


def fill(url: str, messages: int, per_recipient: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "select public.enqueue_whatsapp_message("
            " '+25078' || lpad(((n - 1) / %s)::text, 7, '0'), 'template', %s::jsonb)"
            " from generate_series(1, %s) as n",
            (per_recipient, json.dumps(TEMPLATE), messages),
        )
        conn.execute("vacuum analyze public.whatsapp_message_queue")


def drain(
    url: str,
    edge_url: str,
    fake_url: str,
    workers: int,
    messages: int,
    *,
    batch_size: int,
    kill: bool,
) -> float:
    """Seconds until every message is sent. With `kill`, the first worker is killed with
    SIGKILL once half are sent; its claims come back after their lease, so the lease is short
    (10 s, with a 2 s HTTP timeout: the sender requires twice the timeout plus 5 s)."""
    env = {
        **os.environ,
        "EDGE_DATABASE_URL": edge_url,
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "WHATSAPP_API_BASE_URL": fake_url,
        "WHATSAPP_ACCESS_TOKEN": META_ACCESS_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": META_PHONE_NUMBER_ID,
        "SENDER_WORKERS": "1",
        "SENDER_BATCH_SIZE": str(batch_size),
        "LOG_LEVEL": "warning",
        **({"SENDER_LEASE_SECONDS": "10", "SENDER_HTTP_TIMEOUT_SECONDS": "2"} if kill else {}),
    }
    started = time.monotonic()
    processes = [
        subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env) for _ in range(workers)
    ]
    killed = not kill
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "select count(*) from public.whatsapp_message_queue where status = 'sent'"
                ).fetchone()
                sent = row[0] if row else 0
                if sent >= messages:
                    return time.monotonic() - started
                if any(p.poll() is not None for p in processes[1 if killed and kill else 0 :]):
                    raise RuntimeError("a worker exited before the queue was drained")
                if not killed and sent >= messages // 2:
                    processes[0].kill()
                    killed = True
                time.sleep(0.05)
    finally:
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


def exactly_once(url: str, fake_url: str, messages: int) -> None:
    """After a drain with a killed worker: our records against the provider's."""
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
        f" {twice} sent twice (sent by the killed worker, which died before recording them)"
    )
    ok = statuses == {"sent": messages} and tracked == distinct == messages == len(sends)
    print("recorded exactly once, none lost: " + ("yes" if ok else "NO"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--per-recipient", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=50, help="each worker's claims")
    parser.add_argument(
        "--kill", action="store_true", help="SIGKILL one worker half-way, then check each once"
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

    server = start_test_server(durable=True)
    fake, fake_url = start_fake(keep_all=args.kill)
    try:
        database = server.clone("bench_sender")
        url = server.url(database)
        fill(url, args.messages, args.per_recipient)
        edge_url = server.url(database, "authenticator", AUTHENTICATOR_PASSWORD)
        ours = drain(
            url,
            edge_url,
            fake_url,
            args.workers,
            args.messages,
            batch_size=args.batch_size,
            kill=args.kill,
        )
        p50, p99 = latencies(url)
        if args.kill:
            exactly_once(url, fake_url, args.messages)
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

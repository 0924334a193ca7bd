"""WhatsApp webhook ingest: messages per second and latency through the edge, against the
same RPC driven by pgbench (the ceiling), on one throwaway cluster.

  pgbench   `select public.ingest_whatsapp_webhook('meta', <batch>, null)` with -M prepared,
            batches built in SQL, as many clients as senders
  edge      POST /webhooks/whatsapp, signed with X-Hub-Signature-256, from 1, 8 and 32
            concurrent senders over keep-alive connections to the edge in its own process

Both send batches of 1 and of 20 text messages, each with new wamids, from contacts spread over
100,000 phone numbers (so users, sessions and conversations are both made and found). Prints
messages/s, p50 and p99 per POST (per call for pgbench) and the edge's ratio to pgbench.

    .venv/bin/python -m bench.whatsapp_ingest [--seconds 5] [--senders 1,8,32] [--batches 1,20]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import random
import time
from dataclasses import dataclass

import psycopg

from bench.http_load import KeepAliveConnection
from bench.pgbench import pgbench
from bench.rpc_gateway import Result, measure, start_edge
from tests.support.server import TestServer, free_port, start_test_server
from tests.support.whatsapp import meta_text, meta_webhook

APP_SECRET = "bench-app-secret"  # noqa: S105 (a throwaway cluster's)
CONTACTS = 100_000

# A batch of :n text messages from :n contacts, built in SQL so pgbench pays what the edge's
# client pays (one payload per call) and nothing is shared between calls.
PGBENCH_SCRIPT = """\
\\set r random(1, 2000000000)
select public.ingest_whatsapp_webhook('meta', jsonb_build_object(
    'object', 'whatsapp_business_account',
    'entry', jsonb_build_array(jsonb_build_object('id', 'WABA', 'changes', jsonb_build_array(
        jsonb_build_object('field', 'messages', 'value', jsonb_build_object(
            'messaging_product', 'whatsapp',
            'metadata', jsonb_build_object(
                'display_phone_number', '15550001111', 'phone_number_id', 'PNID'
            ),
            'contacts', (select jsonb_agg(jsonb_build_object(
                'wa_id', (250780000000 + (:r + g) % {contacts})::text,
                'profile', jsonb_build_object('name', 'Bench')
            )) from generate_series(1, {batch}) as g),
            'messages', (select jsonb_agg(jsonb_build_object(
                'from', (250780000000 + (:r + g) % {contacts})::text,
                'id', 'wamid.pgbench.' || :client_id || '.' || :r || '.' || g,
                'timestamp', extract(epoch from now())::bigint::text,
                'type', 'text',
                'text', jsonb_build_object('body', 'Muraho')
            )) from generate_series(1, {batch}) as g)
        ))
    )))
), null);
"""


@dataclass
class Row:
    path: str
    senders: int
    batch: int
    messages_per_second: float
    p50_ms: float
    p99_ms: float
    edge_cpu_us: float = float("nan")  # the edge process's CPU per POST


def meta_batch(rng: random.Random, tag: str, batch: int) -> bytes:
    contacts = [str(250780000000 + rng.randrange(CONTACTS)) for _ in range(batch)]
    now = int(time.time())
    payload = meta_webhook(
        contacts=[{"wa_id": c, "profile": {"name": "Bench"}} for c in contacts],
        messages=[
            meta_text(c, f"wamid.edge.{tag}.{i}", now, "Muraho") for i, c in enumerate(contacts)
        ],
    )
    return json.dumps(payload).encode()


def signed_post(port: int, body: bytes) -> bytes:
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    head = (
        "POST /webhooks/whatsapp HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Hub-Signature-256: sha256={signature}\r\n\r\n"
    )
    return head.encode() + body


async def through_edge(
    port: int, senders: int, batch: int, seconds: float, edge_pid: int | None = None
) -> Result:
    rng = random.Random(senders * 100 + batch)  # noqa: S311 (test data, not secrets)
    connections = [await KeepAliveConnection.open("127.0.0.1", port) for _ in range(senders)]
    run = f"{senders}x{batch}.{rng.randrange(1 << 30)}"
    posts = itertools.count()  # measure() repeats n while warming up; wamids must not repeat

    async def post(n: int) -> None:
        request = signed_post(port, meta_batch(rng, f"{run}.{next(posts)}", batch))
        status, body = await connections[n // 1_000_000 % senders].request(request)
        if status != 200 or json.loads(body).get("messages_stored") != batch:
            raise RuntimeError(f"{status}: {body!r}")

    try:
        return await measure(f"edge {senders}x{batch}", post, seconds, senders, edge_pid)
    finally:
        for connection in connections:
            connection.close()


def through_pgbench(url: str, senders: int, batch: int, seconds: float) -> Row:
    script = PGBENCH_SCRIPT.format(contacts=CONTACTS, batch=batch)
    result = pgbench(url, script, seconds=seconds, concurrency=senders)
    return Row("pgbench", senders, batch, result.tps * batch, result.latency_ms, float("nan"))


def run(server: TestServer, senders: list[int], batches: list[int], seconds: float) -> list[Row]:
    database = server.clone("bench_ingest")
    url = server.url(database)
    rows = [through_pgbench(url, s, b, seconds) for b in batches for s in senders]
    port = free_port()
    edge = start_edge(
        server, database, port, pool_size=max(senders), env={"WHATSAPP_APP_SECRET": APP_SECRET}
    )
    try:
        for batch in batches:
            for count in senders:
                result = asyncio.run(through_edge(port, count, batch, seconds, edge.pid))
                rows.append(
                    Row(
                        "edge",
                        count,
                        batch,
                        result.throughput * batch,
                        result.percentile(0.5),
                        result.percentile(0.99),
                        result.server_cpu_us_per_request,
                    )
                )
    finally:
        edge.terminate()
        edge.wait(timeout=15)
    with psycopg.connect(url) as conn:
        stored = conn.execute("select count(*) from public.message_tracking").fetchone()
    print(f"messages stored in all: {stored[0] if stored else 0}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--senders", default="1,8,32")
    parser.add_argument("--batches", default="1,20")
    args = parser.parse_args()
    senders = [int(s) for s in args.senders.split(",")]
    batches = [int(b) for b in args.batches.split(",")]

    server = start_test_server()
    try:
        rows = run(server, senders, batches, args.seconds)
    finally:
        server.close()

    ceiling = {(r.senders, r.batch): r.messages_per_second for r in rows if r.path == "pgbench"}
    print(f"{os.cpu_count()} cores, {args.seconds:.0f}s per row; pgbench p50 is its mean")
    print(
        f"{'path':<9}{'senders':>8}{'batch':>6}{'msg/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'vs pgbench':>11}{'edge CPU us/POST':>17}"
    )
    for row in rows:
        ratio = row.messages_per_second / ceiling[(row.senders, row.batch)]
        print(
            f"{row.path:<9}{row.senders:>8}{row.batch:>6}{row.messages_per_second:>9.0f}"
            f"{row.p50_ms:>9.2f}{row.p99_ms:>9.2f}{ratio:>11.2f}{row.edge_cpu_us:>17.0f}"
        )
    print("target: edge >= 1000 msg/s with p99 < 100 ms, and >= 0.5 of pgbench")


if __name__ == "__main__":
    main()

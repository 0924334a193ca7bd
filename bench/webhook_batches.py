"""Large signed Meta webhook batches: seconds to store one, through the edge and against the
same call on a direct connection, in one process on a throwaway cluster (fsync on).

  edge      POST /webhooks/whatsapp, signed with X-Hub-Signature-256, Content-Type
            application/json, to the edge in its own process (logged in as authenticator, it
            calls the ingest as service_role, under authenticator's statement_timeout)
  baseline  `select public.ingest_whatsapp_webhook('meta', <body>::jsonb, null)` as postgres
            on a psycopg connection: the floor, with no statement_timeout

Shapes are MESSAGESxCONTACTS: by default 10,000 short texts from 1,000 contacts (ten each) and
5,000 from 5,000. Every batch has its own wamids and 90% new contacts (the rest wrote in an
earlier batch of the same shape and path), so users, sessions and conversations are made, as
a provider's real batch makes them. One batch per shape and path warms caches and plans,
uncounted; then each round sends one batch per shape and path, the path that goes first
alternating. Bodies are compact JSON, as Meta sends them; a 10,000-message one (about 1.25 MB)
is over the edge's default webhook body limit (1 MiB, a 413), so the edge here runs with
WEBHOOK_MAX_BODY_BYTES raised past the largest body (to a whole MiB), and says so.

Prints, per shape and path, p50 and max seconds per batch, messages/s at p50 and the edge's
p50 as a ratio to the baseline's; then the statement_timeout the edge's ingest runs under and
how much of it the slowest edge batch took. Exits non-zero unless every POST answered 200 and
every batch, either way, stored all its messages.

    .venv/bin/python -m bench.webhook_batches [--shapes 10000x1000,5000x5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import statistics
import time
from dataclasses import dataclass, field

import httpx
import psycopg
from psycopg import sql

from app.settings import Settings
from bench.rpc_gateway import start_edge
from tests.support.server import AUTHENTICATOR_PASSWORD, TestServer, free_port, start_test_server
from tests.support.whatsapp import meta_text, meta_webhook

APP_SECRET = "bench-app-secret"  # noqa: S105 (a throwaway cluster's)
PATHS = ("edge", "baseline")
BASELINE_SQL = "select public.ingest_whatsapp_webhook('meta', %s::jsonb, null)"
NEW_CONTACTS = 0.9
FIRST_NUMBER = 250_780_000_000
NUMBERS = 10_000_000  # Rwandan mobile numbers contacts are drawn from: room for every run
POST_TIMEOUT_SECONDS = 120.0  # well past the 8 s statement_timeout: the edge answers first
MIB = 1024 * 1024
DEFAULT_BODY_LIMIT: int = Settings.model_fields["webhook_max_body_bytes"].default

# service_role's own statement_timeout, which the edge re-applies per request as PostgREST does
# (a database's setting before the cluster-wide one); without one, authenticator's from login.
SERVICE_ROLE_TIMEOUT_SQL = """
select pg_catalog.split_part(c.setting, '=', 2) as value
from pg_catalog.pg_db_role_setting as s
inner join pg_catalog.pg_roles as r on s.setrole = r.oid
cross join lateral unnest(s.setconfig) as c (setting)
where
    r.rolname = 'service_role'
    and pg_catalog.split_part(c.setting, '=', 1) = 'statement_timeout'
    and s.setdatabase in (
        0, (select d.oid from pg_catalog.pg_database as d where d.datname = current_database())
    )
order by s.setdatabase desc
limit 1
"""


@dataclass(frozen=True)
class Shape:
    messages: int
    contacts: int

    @classmethod
    def parse(cls, text: str) -> Shape:
        messages, _, contacts = text.partition("x")
        try:
            shape = cls(int(messages), int(contacts))
        except ValueError:
            raise ValueError(f"{text!r} is not MESSAGESxCONTACTS") from None
        if not 0 < shape.contacts <= shape.messages:
            raise ValueError(f"{text!r}: contacts must be from 1 to the messages")
        return shape

    def __str__(self) -> str:
        return f"{self.messages}x{self.contacts}"


class Contacts:
    """Phone numbers of one shape and path: each batch's are mostly new, the rest from that
    path's earlier batches; `taken` is shared by all, so no two paths make the same user."""

    def __init__(self, rng: random.Random, taken: set[int]) -> None:
        self.rng = rng
        self.taken = taken
        self.seen: list[str] = []

    def batch(self, count: int) -> list[str]:
        returning = min(len(self.seen), count - round(count * NEW_CONTACTS))
        numbers = self.rng.sample(self.seen, returning)
        new: list[str] = []
        while len(new) < count - returning:
            number = FIRST_NUMBER + self.rng.randrange(NUMBERS)
            if number not in self.taken:
                self.taken.add(number)
                new.append(str(number))
        self.seen += new
        return numbers + new


@dataclass
class Row:
    shape: Shape
    path: str
    seconds: list[float] = field(default_factory=list)
    body_bytes: int = 0

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds)


def meta_batch(shape: Shape, contacts: list[str], tag: str) -> bytes:
    now = int(time.time())
    payload = meta_webhook(
        contacts=[{"wa_id": c, "profile": {"name": "Bench"}} for c in contacts],
        messages=[
            meta_text(contacts[i % len(contacts)], f"wamid.{tag}.{i}", now, "Muraho")
            for i in range(shape.messages)
        ],
    )
    return json.dumps(payload, separators=(",", ":")).encode()


def edge_client(port: int) -> httpx.Client:
    """A connection per POST: a kept-alive one may be closed by the edge (5 s idle) while the
    baseline runs, and a POST on it would fail for a reason that is not the batch. One client
    all the same: a new httpx client costs more than a small batch does."""
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        limits=httpx.Limits(max_keepalive_connections=0),
        timeout=POST_TIMEOUT_SECONDS,
    )


def through_edge(client: httpx.Client, body: bytes, expected: int) -> float:
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}
    started = time.perf_counter()
    response = client.post("/webhooks/whatsapp", content=body, headers=headers)
    elapsed = time.perf_counter() - started
    stored = response.json().get("messages_stored") if response.status_code == 200 else None
    if stored != expected:
        raise SystemExit(
            f"edge: {response.status_code} after {elapsed:.2f} s, {stored} of {expected} "
            f"messages stored: {response.text[:500]}"
        )
    return elapsed


def through_baseline(conn: psycopg.Connection, body: bytes, expected: int) -> float:
    started = time.perf_counter()
    row = conn.execute(BASELINE_SQL, (body.decode(),)).fetchone()
    elapsed = time.perf_counter() - started
    summary = row[0] if row is not None else {}
    if summary.get("messages_stored") != expected:
        raise SystemExit(f"baseline: {expected} messages expected stored, got {summary}")
    return elapsed


def edge_statement_timeout(server: TestServer, database: str) -> tuple[str, float]:
    """The statement_timeout the edge's ingest runs under, as shown and in seconds (0: none)."""
    url = server.url(database, "authenticator", AUTHENTICATOR_PASSWORD)
    with psycopg.connect(url, autocommit=True) as conn:
        own = conn.execute(SERVICE_ROLE_TIMEOUT_SQL).fetchone()
        source = "authenticator's, set at login"
        if own is not None:
            conn.execute(sql.SQL("set statement_timeout = {}").format(sql.Literal(own[0])))
            source = "service_role's, set per request"
        row = conn.execute(
            "select current_setting('statement_timeout'), setting::int"
            " from pg_catalog.pg_settings where name = 'statement_timeout'"
        ).fetchone()
    assert row is not None
    return f"{row[0]} ({source})", row[1] / 1000


def run(
    server: TestServer, database: str, shapes: list[Shape], rounds: int
) -> tuple[list[Row], int]:
    """The rows, edge's before baseline's per shape, and the edge's webhook body limit."""
    rng = random.Random(len(shapes) * 1000 + rounds)  # noqa: S311 (test data, not secrets)
    taken: set[int] = set()
    contacts = {(s, p): Contacts(rng, taken) for s in shapes for p in PATHS}
    rows = {(s, p): Row(s, p) for s in shapes for p in PATHS}

    def body(shape: Shape, path: str, batch: str) -> bytes:
        numbers = contacts[shape, path].batch(shape.contacts)
        # Tags of one length on both paths, so both store bodies of the same size.
        built = meta_batch(shape, numbers, f"{path[0]}{shape}.{batch}")
        rows[shape, path].body_bytes = max(rows[shape, path].body_bytes, len(built))
        return built

    # The warm-up bodies are built first: the largest says what body limit the edge needs.
    warm_up = {(s, p): body(s, p, "w") for s in shapes for p in PATHS}
    largest = max(len(b) for b in warm_up.values())
    limit = max(DEFAULT_BODY_LIMIT, -(-largest // MIB) * MIB)  # whole MiB: room for longer tags
    port = free_port()
    edge = start_edge(
        server,
        database,
        port,
        pool_size=1,
        env={"WHATSAPP_APP_SECRET": APP_SECRET, "WEBHOOK_MAX_BODY_BYTES": str(limit)},
    )
    try:
        with (
            edge_client(port) as client,
            psycopg.connect(server.url(database), autocommit=True) as conn,
        ):

            def send(shape: Shape, path: str, sent: bytes) -> float:
                if path == "edge":
                    return through_edge(client, sent, shape.messages)
                return through_baseline(conn, sent, shape.messages)

            for (shape, path), sent in warm_up.items():
                send(shape, path, sent)
            for n in range(rounds):
                for shape in shapes:
                    for path in PATHS if n % 2 == 0 else PATHS[::-1]:
                        sent = body(shape, path, str(n))
                        rows[shape, path].seconds.append(send(shape, path, sent))
    finally:
        edge.terminate()
        edge.wait(timeout=15)
    return list(rows.values()), limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="10000x1000,5000x5000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    try:
        shapes = list(dict.fromkeys(Shape.parse(s) for s in args.shapes.split(",")))
    except ValueError as error:
        parser.error(f"--shapes: {error}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    server = start_test_server(durable=True)
    try:
        database = server.clone("bench_batches")
        rows, limit = run(server, database, shapes, args.rounds)
        timeout, timeout_seconds = edge_statement_timeout(server, database)
    finally:
        server.close()

    baseline = {r.shape: r.p50 for r in rows if r.path == "baseline"}
    print(
        f"{os.cpu_count()} cores, fsync on, {args.rounds} rounds per row after one uncounted "
        "warm-up batch; every batch 90% new contacts"
    )
    print(
        f"{'shape':<12}{'path':<10}{'KB/batch':>9}{'p50 s':>8}{'max s':>8}{'msg/s':>8}"
        f"{'edge/baseline':>15}"
    )
    for row in rows:
        ratio = f"{row.p50 / baseline[row.shape]:.2f}" if row.path == "edge" else ""
        print(
            f"{row.shape!s:<12}{row.path:<10}{row.body_bytes / 1000:>9.0f}{row.p50:>8.2f}"
            f"{max(row.seconds):>8.2f}{row.shape.messages / row.p50:>8.0f}{ratio:>15}"
        )
    largest = max(r.body_bytes for r in rows)
    if largest > DEFAULT_BODY_LIMIT:
        print(
            f"largest body {largest} bytes: over the edge's default webhook limit of "
            f"{DEFAULT_BODY_LIMIT} (a 413); this edge ran with WEBHOOK_MAX_BODY_BYTES={limit}"
        )
    slowest = max(max(r.seconds) for r in rows if r.path == "edge")
    share = f": {slowest / timeout_seconds:.0%} of it" if timeout_seconds else ""
    print(
        f"the edge's ingest runs under statement_timeout {timeout}; "
        f"slowest edge batch {slowest:.2f} s{share}"
    )


if __name__ == "__main__":
    main()

"""WhatsApp ingest and the outbox under real concurrent connections: retries of one batch racing
each other, batches locking the same contacts in opposite orders, a status racing the outbound
row it is about, and relays claiming one outbox."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.support.db import query
from tests.support.races import run_together, service_connection
from tests.support.whatsapp import meta_text, meta_webhook

CONTACT_A = "250788700001"
CONTACT_B = "250788700002"
NAMES = {CONTACT_A: "Aline", CONTACT_B: "Bosco"}
BASE_TIME = 1767225600  # 2026-01-01 00:00:00 UTC, as Meta sends it: unix seconds


@contextmanager
def breaking_on_error(barrier: threading.Barrier) -> Iterator[None]:
    """A worker that fails breaks the rounds' barrier, so its partner stops instead of waiting."""
    try:
        yield
    except BaseException:
        barrier.abort()
        raise


def meta_batch(messages: list[tuple[str, str, int]]) -> dict[str, Any]:
    """A Meta Cloud API webhook carrying text messages (contact, wamid, seconds after BASE_TIME),
    in the order given."""
    contacts = list(dict.fromkeys(contact for contact, _, _ in messages))
    return meta_webhook(
        contacts=[{"profile": {"name": NAMES[contact]}, "wa_id": contact} for contact in contacts],
        messages=[
            meta_text(contact, wamid, BASE_TIME + offset, f"message {wamid}")
            for contact, wamid, offset in messages
        ],
    )


def meta_status(wamid: str, status: str) -> dict[str, Any]:
    """A Meta Cloud API webhook carrying one status of an outbound message."""
    return meta_webhook(
        statuses=[
            {
                "id": wamid,
                "status": status,
                "timestamp": str(BASE_TIME + 60),
                "recipient_id": CONTACT_A,
            }
        ]
    )


def ingest(conn: psycopg.Connection[Any], payload: dict[str, Any]) -> dict[str, int]:
    row = conn.execute(
        "select public.ingest_whatsapp_webhook('meta', %s)", (Jsonb(payload),)
    ).fetchone()
    assert row is not None
    return row[0]


def event_counts(url: str, event_type: str, key: str) -> dict[str, int]:
    """How many outbox events of event_type there are for each value of payload ->> key."""
    return dict(
        query(
            url,
            "select payload ->> %s, count(*)::int from public.outbox_events"
            " where event_type = %s group by 1",
            (key, event_type),
        )
    )


# One batch, five deliveries at once ------------------------------------------------------------


def test_five_connections_ingesting_one_batch_store_each_message_once(database_url):
    # Three messages from two contacts, the contacts interleaved.
    batch = meta_batch(
        [
            (CONTACT_A, "wamid.race-a1", 1),
            (CONTACT_B, "wamid.race-b1", 2),
            (CONTACT_A, "wamid.race-a2", 3),
        ]
    )
    summaries: list[dict[str, int]] = []

    def delivery() -> None:
        with service_connection(database_url) as conn:
            summaries.append(ingest(conn, batch))

    errors = run_together([delivery] * 5)

    assert errors == []
    assert len(summaries) == 5
    assert sum(s["messages_stored"] for s in summaries) == 3
    assert sum(s["duplicates"] for s in summaries) == 12
    stored = query(
        database_url,
        "select t.wamid, u.phone_number from public.message_tracking as t"
        " join public.users as u on u.id = t.user_id order by t.wamid",
    )
    assert stored == [
        ("wamid.race-a1", "+" + CONTACT_A),
        ("wamid.race-a2", "+" + CONTACT_A),
        ("wamid.race-b1", "+" + CONTACT_B),
    ]
    users = query(
        database_url,
        "select u.phone_number, u.display_name, count(p.user_id)::int from public.users as u"
        " left join public.user_preferences as p on p.user_id = u.id"
        " group by u.id order by u.phone_number",
    )
    assert users == [("+" + CONTACT_A, "Aline", 1), ("+" + CONTACT_B, "Bosco", 1)]
    sessions = query(
        database_url,
        "select phone_number, message_count, status from public.whatsapp_sessions"
        " order by phone_number",
    )
    assert sessions == [("+" + CONTACT_A, 2, "active"), ("+" + CONTACT_B, 1, "active")]
    conversations = query(
        database_url,
        "select wa_id, status, last_message_id from public.conversation_mappings order by wa_id",
    )
    assert conversations == [
        (CONTACT_A, "active", "wamid.race-a2"),
        (CONTACT_B, "active", "wamid.race-b1"),
    ]
    assert event_counts(database_url, "conversation.started", "wa_id") == {
        CONTACT_A: 1,
        CONTACT_B: 1,
    }
    assert event_counts(database_url, "whatsapp.message_received", "wamid") == {
        "wamid.race-a1": 1,
        "wamid.race-a2": 1,
        "wamid.race-b1": 1,
    }
    assert event_counts(database_url, "user.registered", "phone_number") == {
        "+" + CONTACT_A: 1,
        "+" + CONTACT_B: 1,
    }


# Two batches, the same contacts in opposite orders -----------------------------------------------


def test_batches_naming_two_contacts_in_opposite_orders_never_deadlock(database_url):
    rounds = 20
    barrier = threading.Barrier(2)
    failures: list[str] = []

    def sender(name: str, order: tuple[str, str]) -> Callable[[], None]:
        def work() -> None:
            with breaking_on_error(barrier), service_connection(database_url) as conn:
                for round_no in range(rounds):
                    batch = meta_batch(
                        [
                            (contact, f"wamid.{name}-{round_no}-{contact}", round_no * 10 + i)
                            for i, contact in enumerate(order)
                        ]
                    )
                    barrier.wait(timeout=30)
                    try:
                        summary = ingest(conn, batch)
                    except psycopg.Error as error:
                        failures.append(f"{name} round {round_no}: {error.sqlstate} {error}")
                        continue
                    if summary["messages_stored"] != 2:
                        failures.append(f"{name} round {round_no}: {summary}")

        return work

    errors = run_together(
        [sender("forward", (CONTACT_A, CONTACT_B)), sender("backward", (CONTACT_B, CONTACT_A))]
    )

    assert errors == []
    assert failures == [], "no batch failed (40P01 would be a deadlock) and each stored both"
    per_contact = query(
        database_url,
        "select u.phone_number, count(*)::int from public.message_tracking as t"
        " join public.users as u on u.id = t.user_id group by 1 order by 1",
    )
    assert per_contact == [("+" + CONTACT_A, 2 * rounds), ("+" + CONTACT_B, 2 * rounds)]
    sessions = query(
        database_url,
        "select phone_number, message_count from public.whatsapp_sessions order by phone_number",
    )
    assert sessions == [("+" + CONTACT_A, 2 * rounds), ("+" + CONTACT_B, 2 * rounds)]
    (received, started) = query(
        database_url,
        "select count(*) filter (where event_type = 'whatsapp.message_received')::int,"
        " count(*) filter (where event_type = 'conversation.started')::int"
        " from public.outbox_events",
    )[0]
    assert received == 4 * rounds
    assert started == 2


# A status racing the outbound row it is about --------------------------------------------------


def test_a_status_racing_its_outbound_row_is_always_applied(database_url):
    rounds = 30
    barrier = threading.Barrier(2)
    jitter = random.Random(20260401)  # reproducible interleavings  # noqa: S311
    # Per round: before the status, before the insert, and between the insert and its commit.
    delays = [tuple(jitter.uniform(0, 0.004) for _ in range(3)) for _ in range(rounds)]
    failures: list[str] = []
    outcomes: Counter[str] = Counter()

    def status_sender() -> None:
        with breaking_on_error(barrier), service_connection(database_url) as conn:
            for round_no in range(rounds):
                barrier.wait(timeout=30)
                time.sleep(delays[round_no][0])
                summary = ingest(conn, meta_status(f"wamid.out-{round_no}", "delivered"))
                outcomes.update(k for k, v in summary.items() if v and k.startswith("statuses"))

    def outbound_writer() -> None:
        # The sender records the wamid once the provider answered, in a transaction of its own.
        with breaking_on_error(barrier), psycopg.connect(database_url, autocommit=True) as conn:
            for round_no in range(rounds):
                barrier.wait(timeout=30)
                time.sleep(delays[round_no][1])
                with conn.transaction():
                    conn.execute(
                        "insert into public.message_tracking"
                        " (wamid, direction, message_type, status, body)"
                        " values (%s, 'OUTBOUND', 'text', 'sent', 'Your ride is here')",
                        (f"wamid.out-{round_no}",),
                    )
                    time.sleep(delays[round_no][2])

    errors = run_together([status_sender, outbound_writer])

    assert errors == []
    rows = query(
        database_url,
        "select wamid, status, delivered_at is not null from public.message_tracking"
        " where direction = 'OUTBOUND' order by wamid",
    )
    for round_no in range(rounds):
        wamid = f"wamid.out-{round_no}"
        if (wamid, "delivered", True) not in rows:
            failures.append(f"{wamid} is not delivered")
    assert failures == []
    assert len(rows) == rounds
    pending = query(database_url, "select wamid, status from private.pending_message_statuses")
    assert pending == []
    (updates,) = query(
        database_url,
        "select count(*)::int from public.outbox_events"
        " where event_type = 'whatsapp.status_updated'",
    )[0]
    assert updates == rounds, "each status was applied once, whichever came first"
    assert sum(outcomes.values()) == rounds


# Relays sharing one outbox ---------------------------------------------------------------------


def test_four_relays_claim_each_committed_event_exactly_once(database_url):
    query(
        database_url,
        "select private.emit_event('race', n::text, 'race.event', jsonb_build_object('n', n))"
        " from generate_series(1, 100) as n",
    )
    event_ids = sorted(i for (i,) in query(database_url, "select id from public.outbox_events"))
    assert len(event_ids) == 100
    claims: dict[str, list[int]] = {f"relay-{n}": [] for n in range(1, 5)}
    marked: dict[str, int] = {}

    def relay(name: str) -> Callable[[], None]:
        def work() -> None:
            with service_connection(database_url) as conn:
                while batch := conn.execute(
                    "select id from public.claim_outbox_events(10, %s)", (name,)
                ).fetchall():
                    claims[name].extend(i for (i,) in batch)
                row = conn.execute(
                    "select public.mark_outbox_published(%s::bigint[], %s)", (claims[name], name)
                ).fetchone()
                assert row is not None
                marked[name] = row[0]

        return work

    errors = run_together([relay(name) for name in claims])

    assert errors == []
    every_claim = [i for ids in claims.values() for i in ids]
    assert sorted(every_claim) == event_ids, "every event was claimed, and only once"
    holders = dict(query(database_url, "select id, claimed_by from public.outbox_events"))
    for name, ids in claims.items():
        assert all(holders[i] == name for i in ids), f"{name} holds what it claimed"
    assert marked == {name: len(ids) for name, ids in claims.items()}
    (unpublished,) = query(
        database_url, "select count(*) from public.outbox_events where published_at is null"
    )[0]
    assert unpublished == 0

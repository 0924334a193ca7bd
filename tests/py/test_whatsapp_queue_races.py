"""whatsapp_message_queue under real concurrent connections: one idempotency key enqueued from 50
connections at once, workers draining many recipients' lanes at once (each message sent once, in
order per recipient, never two of one recipient in flight), and a worker killed mid-batch."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.support.db import query
from tests.support.races import (
    one_value_at_once,
    run_together,
    service_connection,
    service_connections,
)

WELCOME = Jsonb({"name": "welcome", "language": {"code": "en"}})


def phone(n: int) -> str:
    return f"+25078810{n:04d}"


def open_windows(url: str, recipients: int) -> None:
    """The recipients wrote just now: free-form messages may be sent to them."""
    query(
        url,
        "insert into public.conversation_mappings (wa_id, last_inbound_at)"
        " select '25078810' || lpad(n::text, 4, '0'), now() from generate_series(1, %s) as n",
        (recipients,),
    )


def enqueue_lanes(url: str, recipients: int, per_recipient: int) -> dict[str, list[int]]:
    """per_recipient text messages to each recipient, in turns; returns each one's ids in
    enqueue order."""
    lanes: dict[str, list[int]] = defaultdict(list)
    with service_connection(url) as conn:
        for k in range(per_recipient):
            for r in range(1, recipients + 1):
                row = conn.execute(
                    "select public.enqueue_whatsapp_message(%s, 'text', %s)",
                    (phone(r), Jsonb({"body": f"message {k}"})),
                ).fetchone()
                assert row is not None
                lanes[phone(r)].append(row[0])
    return lanes


class Ledger:
    """What the workers did, and the check that no recipient is held twice at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: set[str] = set()
        self.claims: dict[str, list[int]] = defaultdict(list)  # per recipient, in claim order
        self.sent: list[int] = []
        self.retried: set[int] = set()
        self.violations: list[str] = []

    def claimed(self, worker: str, rows: list[tuple[int, str]]) -> None:
        with self.lock:
            recipients = [recipient for _, recipient in rows]
            if len(set(recipients)) != len(recipients):
                self.violations.append(f"{worker} got one recipient twice in a claim: {rows}")
            for message_id, recipient in rows:
                if recipient in self.held:
                    self.violations.append(f"{worker} got {message_id} while {recipient} is held")
                self.held.add(recipient)
                self.claims[recipient].append(message_id)

    def released(self, rows: list[tuple[int, str]]) -> None:
        """Before the results are recorded: until they commit, no claim returns the next
        message of these recipients, so a claim returning one while it is held is a real
        second message in flight."""
        with self.lock:
            for _, recipient in rows:
                self.held.discard(recipient)

    def busy(self) -> bool:
        with self.lock:
            return bool(self.held)


def drain(
    conn: psycopg.Connection[Any],
    worker: str,
    ledger: Ledger,
    retry_share: float = 0.2,
    deadline: float = 90.0,
) -> None:
    """Claims batches of 5 and records them ('sent', or once per message 'retry' at random
    first) until a claim is empty while no worker holds anything."""
    rng = random.Random(worker)  # which messages retry, reproducible per worker  # noqa: S311
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        rows = [
            (message_id, recipient)
            for message_id, recipient in conn.execute(
                "select id, recipient_phone from public.claim_whatsapp_messages(5, 60, %s)",
                (worker,),
            ).fetchall()
        ]
        if not rows:
            if not ledger.busy():
                return
            time.sleep(0.005)
            continue
        ledger.claimed(worker, rows)
        results: list[dict[str, Any]] = []
        sent: list[int] = []
        for message_id, _ in rows:
            with ledger.lock:
                retry = message_id not in ledger.retried and rng.random() < retry_share
                if retry:
                    ledger.retried.add(message_id)
            if retry:
                results.append({"id": message_id, "outcome": "retry", "retry_in_s": 0})
            else:
                sent.append(message_id)
                results.append(
                    {
                        "id": message_id,
                        "outcome": "sent",
                        "provider": "meta",
                        "provider_message_id": f"wamid.{message_id}",
                    }
                )
        ledger.released(rows)
        row = conn.execute(
            "select public.record_whatsapp_sends(%s, %s)", (Jsonb(results), worker)
        ).fetchone()
        assert row is not None
        counts = row[0]
        assert counts["sent"] == len(sent), counts
        assert counts["retrying"] == len(results) - len(sent), counts
        assert counts["ignored"] == 0, counts
        with ledger.lock:
            ledger.sent.extend(sent)
    raise TimeoutError(f"{worker} still draining after {deadline} s")


def drain_with(url: str, workers: int, ledger: Ledger, retry_share: float = 0.2) -> None:
    with service_connections(url, workers) as conns:
        jobs: list[Callable[[], None]] = [
            lambda c=c, i=i: drain(c, f"w{i}", ledger, retry_share) for i, c in enumerate(conns)
        ]
        errors = run_together(jobs)
    assert errors == []
    assert ledger.violations == []


def test_fifty_enqueues_with_one_key_return_one_id(database_url: str) -> None:
    ids, errors = one_value_at_once(
        database_url,
        "select public.enqueue_whatsapp_message(%s, 'template', %s, 5, null, null, %s)",
        (phone(1), WELCOME, "welcome-42"),
    )

    assert errors == []
    assert len(ids) == 50
    assert len(set(ids)) == 1
    assert query(database_url, "select count(*) from public.whatsapp_message_queue") == [(1,)]


def test_workers_drain_every_lane_in_order_one_message_per_recipient_at_a_time(
    database_url: str,
) -> None:
    recipients, per_recipient = 20, 15
    open_windows(database_url, recipients)
    lanes = enqueue_lanes(database_url, recipients, per_recipient)
    ledger = Ledger()

    drain_with(database_url, 8, ledger)

    total = recipients * per_recipient
    every_id = sorted(i for ids in lanes.values() for i in ids)
    assert sorted(ledger.sent) == every_id, "every message sent exactly once"
    assert ledger.retried, "some messages went through a retry first"
    for recipient, ids in lanes.items():
        claims = ledger.claims[recipient]
        # A retried message is claimed again before the next one: the claims never go back.
        assert claims == sorted(claims), f"{recipient} claimed out of order: {claims}"
        assert list(dict.fromkeys(claims)) == ids, f"{recipient} claimed {claims}, not {ids}"
    assert query(
        database_url,
        "select status, count(*), count(distinct provider_message_id), min(attempts),"
        " max(attempts) from public.whatsapp_message_queue group by status",
    ) == [("sent", total, total, 1, 2)]
    retried = query(
        database_url,
        "select id from public.whatsapp_message_queue where attempts = 2 order by id",
    )
    assert [i for (i,) in retried] == sorted(ledger.retried)
    assert query(
        database_url,
        "select count(*), count(distinct (metadata ->> 'queue_id'))"
        " from public.message_tracking where direction = 'OUTBOUND'",
    ) == [(total, total)]


def test_a_killed_workers_messages_are_sent_once_after_its_leases_run_out(
    database_url: str,
) -> None:
    recipients, per_recipient = 10, 3
    open_windows(database_url, recipients)
    lanes = enqueue_lanes(database_url, recipients, per_recipient)

    # The worker claims a batch and dies before recording anything.
    with service_connection(database_url) as doomed:
        lost = [
            (message_id, recipient)
            for message_id, recipient in doomed.execute(
                "select id, recipient_phone from public.claim_whatsapp_messages(5, 600, 'doomed')"
            ).fetchall()
        ]
    assert len(lost) == 5
    lost_ids = sorted(message_id for message_id, _ in lost)
    stuck = {recipient for _, recipient in lost}

    # The others send everything else: the dead worker's recipients wait for its leases.
    ledger = Ledger()
    drain_with(database_url, 4, ledger, retry_share=0)
    assert sorted(ledger.sent) == sorted(
        i for recipient, ids in lanes.items() if recipient not in stuck for i in ids
    )
    assert query(
        database_url,
        "select count(*) from public.whatsapp_message_queue where status = 'pending'",
    ) == [(len(stuck) * per_recipient,)]

    # Its leases run out (moved into the past, rather than waited for).
    query(
        database_url,
        "update public.whatsapp_message_queue set visible_at = now() - interval '1 second'"
        " where claimed_by = 'doomed' and status = 'pending'",
    )
    drain_with(database_url, 4, ledger, retry_share=0)

    total = recipients * per_recipient
    assert sorted(ledger.sent) == sorted(i for ids in lanes.values() for i in ids)
    assert Counter(ledger.sent).most_common(1)[0][1] == 1
    for recipient in stuck:
        assert ledger.claims[recipient] == lanes[recipient], "in order after the takeover"
    assert query(
        database_url,
        "select id, attempts from public.whatsapp_message_queue where attempts > 1 order by id",
    ) == [(i, 2) for i in lost_ids]
    assert query(
        database_url,
        "select status, count(*), count(distinct provider_message_id)"
        " from public.whatsapp_message_queue group by status",
    ) == [("sent", total, total)]

    # The dead worker's results, arriving late, change nothing.
    with service_connection(database_url) as late:
        row = late.execute(
            "select public.record_whatsapp_sends(%s, 'doomed')",
            (
                Jsonb(
                    [
                        {
                            "id": i,
                            "outcome": "sent",
                            "provider": "meta",
                            "provider_message_id": f"wamid.late.{i}",
                        }
                        for i in lost_ids
                    ]
                ),
            ),
        ).fetchone()
    assert row is not None
    assert row[0]["ignored"] == len(lost_ids)
    assert query(
        database_url,
        "select count(*) from public.message_tracking where wamid like 'wamid.late.%%'",
    ) == [(0,)]

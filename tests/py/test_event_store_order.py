"""The global order no reader can skip (issue 17's gap problem), on real connections: 8 writers
append to shared aggregates (single events and batches) inside transactions that pause at random
before they commit or roll back, so that commits land out of position order, while readers poll
after the last position they saw. Each reader of read_all_events gets every committed event once,
none rolled back, in rising position order; a consumer group of 2 on read_subscription and
ack_subscription splits the events by aggregate, each once, each aggregate's in version order."""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.support.db import query
from tests.support.races import run_together, service_connection

WRITERS = 8
TRANSACTIONS_PER_WRITER = 30
AGGREGATES = [("trip", f"trip-{n}") for n in range(10)] + [
    ("order", f"order-{n}") for n in range(10)
]
# Once the writers are done, a reader stops after finding nothing new for this long.
QUIET_SECONDS = 1.0

Event = tuple[str, int, str, str, int]  # event_id, global_position, type, id, version
READ_COLUMNS = "event_id::text, global_position, aggregate_type, aggregate_id, version"


@dataclass
class Commit:
    """A committed transaction: its lowest position and when its commit began and returned."""

    position: int
    began: float
    returned: float


@dataclass
class Workload:
    """What the writers did: the ids they committed and rolled back, and their commits."""

    committed: set[str] = field(default_factory=set)
    rolled_back: set[str] = field(default_factory=set)
    commits: list[Commit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)


def append_some(
    conn: psycopg.Connection[Any], rng: random.Random, writer: int
) -> list[dict[str, Any]]:
    """One append_event, or an append_events batch of 2 to 4, to a random aggregate: the
    answers."""
    aggregate_type, aggregate_id = rng.choice(AGGREGATES)
    if rng.random() < 0.3:
        batch = [
            {
                "event_type": "Batched",
                "payload": {"writer": writer, "n": n},
                "event_id": str(uuid.uuid4()),
            }
            for n in range(rng.randint(2, 4))
        ]
        row = conn.execute(
            "select public.append_events(%s, %s, %s)",
            (aggregate_id, aggregate_type, Jsonb(batch)),
        ).fetchone()
        assert row is not None
        return list(row[0]["events"])
    row = conn.execute(
        "select public.append_event(p_aggregate_id := %s, p_aggregate_type := %s,"
        " p_event_type := 'Single', p_payload := %s, p_event_id := %s)",
        (aggregate_id, aggregate_type, Jsonb({"writer": writer}), uuid.uuid4()),
    ).fetchone()
    assert row is not None
    return [row[0]]


def writer(url: str, index: int, workload: Workload) -> None:
    """Transactions of one or two appends with pauses between them and before the end; one in
    five rolled back."""
    rng = random.Random(index)  # noqa: S311  # a test's pauses, not a secret
    with psycopg.connect(url) as conn:
        conn.execute("set role service_role")
        conn.execute("set lock_timeout = '10s'")
        conn.commit()
        for _ in range(TRANSACTIONS_PER_WRITER):
            answers: list[dict[str, Any]] = []
            try:
                for _ in range(rng.randint(1, 2)):
                    answers += append_some(conn, rng, index)
                    time.sleep(rng.uniform(0, 0.03))
                time.sleep(rng.uniform(0, 0.08))
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                # Two writers took two aggregates in opposite orders, or this transaction's id
                # is below a later writer's of its second aggregate: both are retried by callers.
                conn.rollback()
                with workload.lock:
                    workload.rolled_back.update(a["event_id"] for a in answers)
                continue
            ids = {a["event_id"] for a in answers}
            if rng.random() < 0.2:
                conn.rollback()
                with workload.lock:
                    workload.rolled_back.update(ids)
                continue
            began = time.monotonic()
            conn.commit()
            returned = time.monotonic()
            with workload.lock:
                workload.committed.update(ids)
                workload.commits.append(
                    Commit(min(a["global_position"] for a in answers), began, returned)
                )


def poll_until_quiet(
    url: str, read: Callable[[psycopg.Connection[Any]], list[Event]], workload: Workload
) -> tuple[list[Event], int]:
    """Calls read until the writers are done and nothing new came for QUIET_SECONDS: what it
    got, in order, and how many of them came while the writers were still writing."""
    received: list[Event] = []
    during_writes = 0
    quiet_since: float | None = None
    with service_connection(url) as conn:
        while True:
            writing = not workload.done.is_set()
            events = read(conn)
            if events:
                received += events
                during_writes += len(events) if writing else 0
                quiet_since = None
                continue
            if writing:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > QUIET_SECONDS:
                return received, during_writes
            time.sleep(0.005)


def run(url: str, readers: list[Callable[[], None]]) -> Workload:
    """The writers and the readers at once; the readers see workload.done when the writers
    are."""
    workload = Workload()

    def writers() -> None:
        try:
            errors = run_together([lambda n=n: writer(url, n, workload) for n in range(WRITERS)])
            assert errors == [], errors
        finally:
            workload.done.set()

    errors = run_together([writers, *[lambda r=r: r(workload) for r in readers]], timeout=60)
    assert errors == [], errors
    return workload


def stored_ids(url: str) -> set[str]:
    return {row[0] for row in query(url, "select event_id::text from public.event_store")}


def commits_out_of_position_order(commits: list[Commit]) -> int:
    """Pairs of transactions where the one with the lower position began its commit only after
    the other's commit had returned: the order a reader of "after the last position" could skip
    in."""
    return sum(
        1
        for early in commits
        for late in commits
        if early.position < late.position and early.began > late.returned
    )


def check_workload(url: str, workload: Workload) -> set[str]:
    """The writers did what the test needs; the committed event ids."""
    committed = stored_ids(url)
    assert committed == workload.committed
    assert workload.rolled_back, "some transactions must have rolled back"
    assert not (committed & workload.rolled_back)
    assert commits_out_of_position_order(workload.commits) > 0
    return committed


def test_every_reader_of_the_global_order_gets_each_committed_event_once_in_order(
    database_url: str,
) -> None:
    got: dict[int, tuple[list[Event], int]] = {}

    def reader(index: int, workload: Workload) -> None:
        last = 0

        def read(conn: psycopg.Connection[Any]) -> list[Event]:
            nonlocal last
            rows: list[Event] = conn.execute(
                f"select {READ_COLUMNS} from public.read_all_events(%s, 100)", (last,)
            ).fetchall()
            if rows:
                last = rows[-1][1]
            return rows

        got[index] = poll_until_quiet(database_url, read, workload)

    workload = run(database_url, [lambda w, i=i: reader(i, w) for i in range(2)])
    committed = check_workload(database_url, workload)

    for index in range(2):
        received, during_writes = got[index]
        ids = [event[0] for event in received]
        positions = [event[1] for event in received]
        assert during_writes > 0, f"reader {index} read only after the writers were done"
        assert [i for i, n in Counter(ids).items() if n > 1] == []
        assert set(ids) - committed == set(), f"reader {index} got events never committed"
        assert committed - set(ids) == set(), f"reader {index} skipped committed events"
        assert all(a < b for a, b in itertools.pairwise(positions))


def consumer_of(aggregate_type: str, aggregate_id: str, count: int) -> int:
    """private.event_consumer as a client computes it: the first 60 bits of
    md5('<type>:<id>') modulo the count."""
    digest = hashlib.md5(f"{aggregate_type}:{aggregate_id}".encode(), usedforsecurity=False)
    return int(digest.hexdigest()[:15], 16) % count


def test_a_consumer_group_of_two_splits_by_aggregate_each_event_once_in_version_order(
    database_url: str,
) -> None:
    assert {consumer_of(t, i, 2) for t, i in AGGREGATES} == {0, 1}, "both consumers get work"
    got: dict[int, tuple[list[Event], int]] = {}

    def consumer(index: int, workload: Workload) -> None:
        def read(conn: psycopg.Connection[Any]) -> list[Event]:
            rows: list[Event] = conn.execute(
                f"select {READ_COLUMNS} from public.read_subscription('projector', 100, %s, 2)",
                (index,),
            ).fetchall()
            if rows:
                conn.execute(
                    "select public.ack_subscription('projector', %s, %s)", (rows[-1][1], index)
                )
            return rows

        got[index] = poll_until_quiet(database_url, read, workload)

    workload = run(database_url, [lambda w, i=i: consumer(i, w) for i in range(2)])
    committed = check_workload(database_url, workload)

    everything = [event for index in range(2) for event in got[index][0]]
    ids = [event[0] for event in everything]
    assert [i for i, n in Counter(ids).items() if n > 1] == [], "an event reached the group twice"
    assert set(ids) == committed
    for index in range(2):
        received, during_writes = got[index]
        positions = [event[1] for event in received]
        assert during_writes > 0, f"consumer {index} read only after the writers were done"
        assert {consumer_of(e[2], e[3], 2) for e in received} == {index}
        assert all(a < b for a, b in itertools.pairwise(positions))
        assert query(
            database_url,
            "select position from public.event_subscriptions"
            " where name = 'projector' and consumer_index = %s",
            (index,),
        ) == [(positions[-1],)]
    # Positions rise with versions, so each aggregate reaches its consumer in version order.
    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for _, _, aggregate_type, aggregate_id, version in everything:
        versions[aggregate_type, aggregate_id].append(version)
    out_of_order = {
        aggregate: seen
        for aggregate, seen in versions.items()
        if seen != list(range(1, len(seen) + 1))
    }
    assert out_of_order == {}, f"aggregates whose events came out of version order: {out_of_order}"

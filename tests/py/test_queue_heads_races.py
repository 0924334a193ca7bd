"""Queue heads under real connections: a message whose transaction stays open while a worker's
claims move the head on is claimed once it commits, wherever it is due. A head that passed it
would hide it from every claim (59_queues.sql)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from tests.support.db import query
from tests.support.races import service_connection

ENQUEUE = "select public.enqueue_message('heads', 'job', '{}', 5)"
# Each case: seconds of the worker's claims before the open transaction's enqueue, the enqueue,
# and seconds of them after it, before the transaction commits.
CASES = {
    "open after its enqueue": (0.0, ENQUEUE, 2.5),
    "scheduled an hour ago": (0.0, ENQUEUE.replace(", 5)", ", 5, now() - interval '1 hour')"), 2.5),
    "enqueued late in an old transaction": (2.5, ENQUEUE, 0.0),
}


def head_moves(url: str) -> int:
    rows = query(
        url,
        "select count(*) from private.queue_heads where queue = 'message_queue'"
        " and queue_name = 'heads' and advanced_at > now() - interval '5 s'",
    )
    return int(rows[0][0])


def work(worker: psycopg.Connection[Any], seconds: float) -> int:
    """Enqueue, claim and ack one message at a time, pausing past the 100 ms between head moves;
    returns how many claims found something."""
    found = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        worker.execute(ENQUEUE)
        claimed = worker.execute(
            "select coalesce(array_agg(c.id), '{}') from public.claim_messages('heads', 1, 30, 'w')"
            " as c"
        ).fetchone()
        assert claimed is not None
        found += len(claimed[0])
        worker.execute("select public.ack_messages(%s, 'w')", (claimed[0],))
        time.sleep(0.15)
    return found


@pytest.mark.parametrize("case", CASES)
def test_a_message_of_a_transaction_open_while_the_head_moves_is_claimed(
    database_url: str, case: str
) -> None:
    before, enqueue, after = CASES[case]
    with service_connection(database_url) as writer, service_connection(database_url) as worker:
        worker.execute(ENQUEUE)  # the queue's head, before the writer's transaction begins
        with writer.transaction():
            writer.execute("select 1")
            found = work(worker, before)
            row = writer.execute(enqueue).fetchone()
            assert row is not None
            message_id = row[0]
            found += work(worker, after)
        assert head_moves(database_url) == 1, "the worker's claims moved the head"
        assert found > 0

        claimed: list[int] = []
        for _ in range(10):
            rows = worker.execute(
                "select id from public.claim_messages('heads', 10, 30, 'w')"
            ).fetchall()
            claimed += [r[0] for r in rows]
            if message_id in claimed or not rows:
                break
        assert message_id in claimed
        assert query(
            database_url,
            "select count(*) from public.message_queue as q"
            " join private.queue_heads as h on h.queue = 'message_queue'"
            " and h.queue_name = q.queue_name and h.priority = q.priority"
            " where q.status = 'pending' and (q.visible_at, q.id) < (h.visible_from, h.id_from)",
        ) == [(0,)]


def test_an_old_transaction_enqueueing_many_writes_the_head_once(database_url: str) -> None:
    """Every row of a transaction older than half a second takes the head's lock path; holding
    the head already, it must not write it again for each row (a new version per row of one
    transaction is a chain every later row walks: 200,000 took minutes instead of seconds)."""
    query(database_url, ENQUEUE)  # the head exists, written by another transaction
    with service_connection(database_url) as writer, writer.transaction():
        writer.execute("select pg_sleep(0.6)")
        writer.execute(
            "select count(public.enqueue_message('heads', 'job', jsonb_build_object('n', n), 5))"
            " from generate_series(1, 300) as n"
        )
        updates = writer.execute(
            "select n_tup_upd, n_tup_hot_upd from pg_stat_xact_all_tables"
            " where schemaname = 'private' and relname = 'queue_heads'"
        ).fetchone()
    assert updates == (1, 1)
    assert query(database_url, "select count(*) from public.message_queue") == [(301,)]

"""message_queue under real concurrent connections: one idempotency key enqueued from 50
connections at once, and workers claiming one queue at once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg

from tests.support.db import query
from tests.support.races import one_value_at_once, run_together, service_connections


def test_fifty_enqueues_with_one_key_return_one_id(database_url: str) -> None:
    ids, errors = one_value_at_once(
        database_url, "select public.enqueue_message('mail', 'welcome', '{}', 5, null, 'signup-42')"
    )

    assert errors == []
    assert len(ids) == 50
    assert len(set(ids)) == 1
    assert query(database_url, "select count(*) from public.message_queue")[0][0] == 1


def test_workers_claiming_at_once_get_each_message_once(database_url: str) -> None:
    query(
        database_url,
        "select public.enqueue_message('jobs', 'work', jsonb_build_object('n', n), 1 + n %% 10)"
        " from generate_series(1, 400) as n",
    )
    claimed: list[int] = []

    def drain(conn: psycopg.Connection[Any], worker: str) -> None:
        while True:
            rows = conn.execute(
                "select id from public.claim_messages('jobs', 7, 60, %s)", (worker,)
            ).fetchall()
            if not rows:
                return
            for (message_id,) in rows:
                claimed.append(message_id)
                ok = conn.execute("select public.ack_message(%s, %s)", (message_id, worker))
                assert ok.fetchone() == (True,)

    with service_connections(database_url, 8) as conns:
        errors = run_together([lambda c=c, i=i: drain(c, f"w{i}") for i, c in enumerate(conns)])

    assert errors == []
    assert len(claimed) == 400
    assert Counter(claimed).most_common(1)[0][1] == 1
    assert query(database_url, "select count(*) from public.message_queue")[0][0] == 0
    assert query(database_url, "select count(*) from public.message_queue_completed")[0][0] == 400


def test_the_enqueue_that_fills_an_empty_queue_wakes_listeners(database_url: str) -> None:
    with (
        psycopg.connect(database_url, autocommit=True) as listener,
        service_connections(database_url, 1) as (producer,),
    ):
        listener.execute("listen message_queue")

        def enqueue(queue: str) -> None:
            producer.execute("select public.enqueue_message(%s, 'work', '{}')", (queue,))

        def heard() -> list[str]:
            return [n.payload for n in listener.notifies(timeout=0.5, stop_after=10)]

        enqueue("jobs")
        assert heard() == ["jobs"]
        # Busy workers claim until a claim is empty: more work needs no wake-up.
        enqueue("jobs")
        enqueue("jobs")
        assert heard() == []
        enqueue("mail")
        assert heard() == ["mail"]
        # Everything claimed, the queue has nothing visible: the next message wakes again.
        producer.execute("select count(*) from public.claim_messages('jobs', 10, 60, 'w')")
        enqueue("jobs")
        assert heard() == ["jobs"]

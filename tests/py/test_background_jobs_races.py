"""background_jobs under real concurrent connections: one idempotency key scheduled from 50
connections at once, and workers claiming and completing the same jobs at once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg

from tests.support.db import query
from tests.support.races import one_value_at_once, run_together, service_connections


def test_fifty_schedules_with_one_key_return_one_id(database_url: str) -> None:
    ids, errors = one_value_at_once(
        database_url,
        "select public.schedule_job('report', 'daily report', '{}', null, 5, 'report-0401')",
    )

    assert errors == []
    assert len(ids) == 50
    assert len(set(ids)) == 1
    assert query(database_url, "select count(*) from public.background_jobs")[0][0] == 1


def test_workers_claiming_at_once_run_each_job_once(database_url: str) -> None:
    query(
        database_url,
        "select public.schedule_job('work', 'job ' || n, jsonb_build_object('n', n), null,"
        " 1 + n %% 10) from generate_series(1, 400) as n",
    )
    claimed: list[int] = []

    def drain(conn: psycopg.Connection[Any], worker: str) -> None:
        while True:
            rows = conn.execute(
                "select id from public.claim_jobs(array['work'], 7, %s)", (worker,)
            ).fetchall()
            if not rows:
                return
            for (job_id,) in rows:
                claimed.append(job_id)
                done = conn.execute(
                    "select status, worker_id from public.complete_job(%s, %s, %s)",
                    (job_id, '{"ok": true}', worker),
                )
                assert done.fetchone() == ("completed", worker)

    with service_connections(database_url, 8) as conns:
        errors = run_together([lambda c=c, i=i: drain(c, f"w{i}") for i, c in enumerate(conns)])

    assert errors == []
    assert len(claimed) == 400
    assert Counter(claimed).most_common(1)[0][1] == 1
    assert query(
        database_url,
        "select status, attempts, count(*) from public.background_jobs group by status, attempts",
    ) == [("completed", 1, 400)]


def test_the_job_that_gives_its_type_due_work_wakes_listeners(database_url: str) -> None:
    with (
        psycopg.connect(database_url, autocommit=True) as listener,
        service_connections(database_url, 1) as (scheduler,),
    ):
        listener.execute("listen background_jobs")

        def schedule(job_type: str, when: str | None = None) -> None:
            scheduler.execute(
                "select public.schedule_job(%s, null, '{}', %s::timestamptz)", (job_type, when)
            )

        def heard() -> list[str]:
            return [n.payload for n in listener.notifies(timeout=0.5, stop_after=10)]

        schedule("report")
        assert heard() == ["report"]
        # Busy workers claim until a claim is empty: more due work needs no wake-up.
        schedule("report")
        assert heard() == []
        # A job due later wakes nobody: workers poll for those.
        schedule("email", "tomorrow")
        assert heard() == []
        schedule("email")
        assert heard() == ["email"]
        # Everything claimed, the type has nothing due: the next job wakes again.
        scheduler.execute("select count(*) from public.claim_jobs(array['report'], 10, 'w')")
        schedule("report")
        assert heard() == ["report"]

"""Feature flags raced on real connections: many first evaluations of one user at once record
one answer and raise nothing; evaluations of different users never wait on each other's rows;
concurrent upserts of one flag leave one row."""

from __future__ import annotations

import psycopg

from tests.support.db import query
from tests.support.races import one_value_at_once, run_together, service_connections


def test_first_evaluations_racing_record_one_answer(database_url: str) -> None:
    query(
        database_url,
        "insert into public.feature_flags (key, name, enabled, rollout_strategy)"
        " values ('race', 'Race', true, 'all')",
    )
    values, errors = one_value_at_once(
        database_url, "select public.is_feature_enabled('race', 'user-1')", count=40
    )
    assert errors == []
    assert values == [True] * 40
    assert query(
        database_url,
        "select subject, enabled from public.feature_flag_evaluations where flag_key = 'race'",
    ) == [("user-1", True)]
    assert query(database_url, "select last_value from counters.feature_flag_1_evaluations") == [
        (40,)
    ]


def test_evaluations_of_other_users_never_wait_on_a_users_row(database_url: str) -> None:
    """A transaction holding one user's answer row does not hold up anyone else."""
    query(
        database_url,
        "insert into public.feature_flags (key, name, enabled, rollout_strategy)"
        " values ('hot', 'Hot', true, 'all')",
    )
    with psycopg.connect(database_url) as holder, service_connections(database_url, 8) as conns:
        holder.execute("select public.is_feature_enabled('hot', 'user-held')")  # open, uncommitted
        for conn in conns:
            conn.execute("set lock_timeout = '2s'")
        errors = run_together(
            [
                lambda c=c, n=n: c.execute(
                    "select public.evaluate_feature_flags(%s)", (f"user-{n}",)
                )
                for n, c in enumerate(conns)
            ]
        )
        holder.rollback()
    assert errors == []
    assert query(
        database_url, "select count(*) from public.feature_flag_evaluations where flag_key = 'hot'"
    ) == [(8,)]


def test_concurrent_upserts_of_one_flag_leave_one_row(database_url: str) -> None:
    values, errors = one_value_at_once(
        database_url,
        "select public.upsert_feature_flag('same', 'Same', true, 'percentage', 'all', 30)"
        " ->> 'key'",
        count=20,
    )
    assert errors == []
    assert values == ["same"] * 20
    assert query(
        database_url,
        "select count(*), min(rollout_percentage) from public.feature_flags where key = 'same'",
    ) == [(1, 30)]

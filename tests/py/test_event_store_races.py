"""The event store's appends raced on real connections: 50 appends with one expected version (on
an aggregate at version 3, and on a new one with 0) let exactly one through and give the others
PT409 with the current version; 50 appends with no expected version make versions 1 to 50 with
positions rising with the version; one event id appended from 20 connections at once is written
once and every caller gets the same answer; an append to one aggregate never waits for an
open transaction holding another aggregate of the same type; and an aggregate's later version
never takes a lower position than its earlier one."""

from __future__ import annotations

import itertools
import json
import uuid
from functools import partial
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.db import query
from tests.support.races import one_value_at_once, run_together, service_connections

APPEND = (
    "select public.append_event(p_aggregate_id := %s, p_aggregate_type := 'trip',"
    " p_event_type := %s, p_payload := %s, p_expected_version := %s, p_event_id := %s)"
)


def append(
    conn: psycopg.Connection[Any],
    aggregate: str,
    event_type: str = "TripUpdated",
    payload: dict[str, Any] | None = None,
    *,
    expected: int | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    row = conn.execute(
        APPEND, (aggregate, event_type, Jsonb(payload or {}), expected, event_id)
    ).fetchone()
    assert row is not None
    return row[0]


def stream(url: str, aggregate: str) -> list[tuple[int, int]]:
    """The aggregate's (version, global_position) in version order."""
    return [
        (int(version), int(position))
        for version, position in query(
            url,
            "select version, global_position from public.event_store"
            " where aggregate_type = 'trip' and aggregate_id = %s order by version",
            (aggregate,),
        )
    ]


def race_expected_version(
    url: str, aggregate: str, expected: int | None
) -> tuple[list[dict[str, Any]], list[psycopg.Error], list[BaseException]]:
    """50 connections append to aggregate at once, each expecting version `expected`: the
    answers, the database errors and anything else raised."""
    answers: list[dict[str, Any]] = []
    refusals: list[psycopg.Error] = []

    def caller(conn: psycopg.Connection[Any], n: int) -> None:
        try:
            answers.append(append(conn, aggregate, payload={"caller": n}, expected=expected))
        except psycopg.Error as error:
            refusals.append(error)

    with service_connections(url, 50) as conns:
        errors = run_together([partial(caller, c, n) for n, c in enumerate(conns)])
    return answers, refusals, errors


def test_fifty_appends_expecting_version_three_let_one_through(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("set role service_role")
        for version in range(3):
            append(conn, "trip-race", payload={"setup": version}, expected=version)

    answers, refusals, errors = race_expected_version(database_url, "trip-race", 3)

    assert errors == []
    assert len(answers) == 1
    assert answers[0]["version"] == 4
    assert len(refusals) == 49
    assert {error.sqlstate for error in refusals} == {"PT409"}
    assert {
        json.dumps(json.loads(error.diag.message_detail or "null"), sort_keys=True)
        for error in refusals
    } == {json.dumps({"current_version": 4, "expected_version": 3}, sort_keys=True)}
    assert [version for version, _ in stream(database_url, "trip-race")] == [1, 2, 3, 4]
    (winner,) = answers
    assert query(
        database_url,
        "select event_id::text, global_position from public.event_store where version = 4",
    ) == [(winner["event_id"], winner["global_position"])]
    # The ids were generated: none is kept for retries.
    assert query(database_url, "select count(*) from private.event_ids") == [(0,)]
    assert query(
        database_url,
        "select version from private.event_streams where aggregate_id = 'trip-race'",
    ) == [(4,)]


def test_fifty_appends_expecting_a_new_aggregate_let_one_through(database_url: str) -> None:
    answers, refusals, errors = race_expected_version(database_url, "trip-new", 0)

    assert errors == []
    assert [answer["version"] for answer in answers] == [1]
    assert len(refusals) == 49
    assert {error.sqlstate for error in refusals} == {"PT409"}
    assert {
        json.loads(error.diag.message_detail or "null")["current_version"] for error in refusals
    } == {1}
    assert stream(database_url, "trip-new") == [(1, answers[0]["global_position"])]
    assert query(database_url, "select count(*) from private.event_ids") == [(0,)]


def test_fifty_appends_without_expected_version_make_versions_one_to_fifty(
    database_url: str,
) -> None:
    answers, refusals, errors = race_expected_version(database_url, "trip-hot", None)

    assert errors == []
    assert refusals == []
    assert sorted(answer["version"] for answer in answers) == list(range(1, 51))
    events = stream(database_url, "trip-hot")
    assert [version for version, _ in events] == list(range(1, 51))
    assert {(a["version"], a["global_position"]) for a in answers} == set(events)
    # A reader in position order must meet one aggregate's events in version order: each
    # appender gets its transaction id only after it holds the aggregate's lock.
    positions = [position for _, position in events]
    assert positions == sorted(positions), (
        "global_position does not rise with version: "
        f"{[(v, p) for (v, p), (_, q) in itertools.pairwise(events) if q < p]}"
    )
    assert len(set(positions)) == 50


def test_one_event_id_from_twenty_connections_is_written_once(database_url: str) -> None:
    event_id = str(uuid.uuid4())
    values, errors = one_value_at_once(
        database_url,
        APPEND,
        ("trip-retry", "TripRequested", Jsonb({"pickup": "Kimironko"}), None, event_id),
        count=20,
    )

    assert errors == []
    assert len(values) == 20
    assert values[0]["event_id"] == event_id
    assert values[0]["version"] == 1
    assert all(value == values[0] for value in values)
    assert query(
        database_url,
        "select event_id::text, version, global_position, payload from public.event_store",
    ) == [(event_id, 1, values[0]["global_position"], {"pickup": "Kimironko"})]
    assert query(database_url, "select event_id::text from private.event_ids") == [(event_id,)]
    assert query(database_url, "select version from private.event_streams") == [(1,)]


def test_an_append_never_waits_for_another_aggregates_open_transaction(database_url: str) -> None:
    with (
        psycopg.connect(database_url) as holder,
        service_connections(database_url, 2) as (other, same),
    ):
        holder.execute("set role service_role")
        held = append(holder, "trip-held", "TripRequested")  # open, uncommitted
        # A wait fails the append rather than hanging the test.
        other.execute("set lock_timeout = '2s'")
        other.execute("set statement_timeout = '2s'")
        same.execute("set lock_timeout = '500ms'")
        same.execute("set statement_timeout = '5s'")

        beside = append(other, "trip-beside", "TripRequested")
        # While the held transaction runs, the later commit is not readable: its position may
        # still be preceded by the held event.
        read_while_open = other.execute(
            "select event_id::text from public.read_all_events(0, 100)"
        ).fetchall()
        # The control: the held aggregate itself does wait, so the holder really holds its row.
        with pytest.raises(psycopg.errors.LockNotAvailable):
            append(same, "trip-held", "TripAccepted")
        holder.commit()
        read_after = other.execute(
            "select event_id::text, aggregate_id from public.read_all_events(0, 100)"
        ).fetchall()

    assert beside["version"] == 1
    assert held["version"] == 1
    assert held["global_position"] < beside["global_position"]
    assert read_while_open == []
    assert read_after == [(held["event_id"], "trip-held"), (beside["event_id"], "trip-beside")]
    assert query(
        database_url,
        "select aggregate_id, version from public.event_store order by global_position",
    ) == [("trip-held", 1), ("trip-beside", 1)]


def test_a_later_version_never_gets_a_lower_position(database_url: str) -> None:
    """One transaction appends to trip-a (so it has its id), another then appends version 1 of
    trip-b and commits; the first's append to trip-b would sit below version 1, so it is
    refused with 40001 and nothing of it is kept; retried, it lands above."""
    with psycopg.connect(database_url) as early, service_connections(database_url, 1) as (late,):
        early.execute("set role service_role")
        append(early, "trip-a")  # takes its transaction id, and so its positions
        first = append(late, "trip-b")
        with pytest.raises(psycopg.errors.SerializationFailure, match="retry it"):
            append(early, "trip-b")
        early.rollback()
        early.execute("set role service_role")
        append(early, "trip-a")
        second = append(early, "trip-b")
        early.commit()
        read = late.execute(
            "select aggregate_id, version from public.read_all_events(0, 100)"
            " where aggregate_type = 'trip' order by global_position"
        ).fetchall()

    assert (first["version"], second["version"]) == (1, 2)
    assert read == [("trip-b", 1), ("trip-a", 1), ("trip-b", 2)]
    assert first["global_position"] < second["global_position"]

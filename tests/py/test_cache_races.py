"""The general cache raced on real connections: set_cache of one key from 30 connections at once,
5 times each, raises nothing and leaves one entry holding the value of the write that committed
last; get_cache from 8 connections while invalidate_cache_by_tag runs never returns a value once
the invalidation has committed; and hits from 8 connections at once are all counted."""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.support.db import query
from tests.support.races import run_together, service_connection, service_connections

SET = "select public.set_cache(%s, %s, 600, 'races', %s)"
GET = "select public.get_cache(%s, 'races')"


def test_concurrent_sets_of_one_key_leave_the_last_committed_value(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute("create sequence public.race_commit_order")
        owner.execute("grant usage on sequence public.race_commit_order to service_role")
    committed: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def writer(conn: psycopg.Connection[Any], n: int) -> None:
        for round_ in range(5):
            value = {"writer": n, "round": round_}
            with conn.transaction():
                conn.execute(SET, ("fare:remera:kacyiru", Jsonb(value), ["zone:kigali"]))
                # The upsert holds the row's lock to the commit, so the order in which writers
                # take this number, after it, is the order in which they commit.
                row = conn.execute("select nextval('public.race_commit_order')").fetchone()
            assert row is not None
            with lock:
                committed.append((int(row[0]), value))

    with service_connections(database_url, 30) as conns:
        errors = run_together([partial(writer, c, n) for n, c in enumerate(conns)])

    assert errors == []
    assert len(committed) == 150
    last = max(committed)[1]
    assert query(database_url, "select key, value, cache_type, tags from public.cache_entries") == [
        ("fare:remera:kacyiru", last, "races", ["zone:kigali"])
    ]
    with service_connection(database_url) as conn:
        row = conn.execute(GET, ("fare:remera:kacyiru",)).fetchone()
    assert row is not None
    assert row[0] == last


def test_no_read_returns_a_value_after_its_invalidation_committed(database_url: str) -> None:
    keys = [f"route:driver-7:{n}" for n in range(200)]
    with service_connection(database_url) as conn:
        for key in keys:
            conn.execute(SET, (key, Jsonb({"key": key}), ["driver:7"]))
    committed_by: list[float] = []
    reads: list[tuple[float, Any]] = []  # when each read started, what it returned
    lock = threading.Lock()
    done = threading.Event()

    def reader(conn: psycopg.Connection[Any], offset: int) -> None:
        n = offset
        while not done.is_set():
            started = time.monotonic()
            row = conn.execute(GET, (keys[n % len(keys)],)).fetchone()
            assert row is not None
            with lock:
                reads.append((started, row[0]))
            n += 7

    def invalidator(conn: psycopg.Connection[Any]) -> None:
        try:
            time.sleep(0.5)
            row = conn.execute("select public.invalidate_cache_by_tag('driver:7')").fetchone()
            # Autocommit: the delete has committed by the time the call returns.
            committed_by.append(time.monotonic())
            assert row is not None
            assert row[0] == len(keys)
            time.sleep(0.5)
        finally:
            done.set()

    with service_connections(database_url, 9) as conns:
        errors = run_together(
            [partial(invalidator, conns[0])]
            + [partial(reader, c, n) for n, c in enumerate(conns[1:])]
        )

    assert errors == []
    assert committed_by, "the invalidation ran"
    before = [value for started, value in reads if started < committed_by[0]]
    after = [value for started, value in reads if started > committed_by[0]]
    assert any(value is not None for value in before), "values were read before"
    assert len(after) > 100, "and many reads started after the commit"
    assert [value for value in after if value is not None] == []
    assert query(database_url, "select count(*) from public.cache_entries") == [(0,)]


def test_hits_from_many_connections_are_all_counted(database_url: str) -> None:
    counts = (
        "select private.counter_value('cache_hits_' || private.cache_counter('races')),"
        " private.counter_value('cache_misses_' || private.cache_counter('races'))"
    )
    with service_connection(database_url) as conn:
        conn.execute(SET, ("fare:gisozi:remera", Jsonb({"fare": 900}), []))
    before = query(database_url, counts)[0]

    def reader(conn: psycopg.Connection[Any]) -> None:
        for _ in range(200):
            row = conn.execute(GET, ("fare:gisozi:remera",)).fetchone()
            assert row is not None
            assert row[0] == {"fare": 900}
        for _ in range(50):
            conn.execute(GET, ("fare:absent",))

    with service_connections(database_url, 8) as conns:
        errors = run_together([partial(reader, c) for c in conns])

    assert errors == []
    after = query(database_url, counts)[0]
    assert (after[0] - before[0], after[1] - before[1]) == (1600, 400)

"""Real connections racing each other, for the tests of idempotency and concurrency claims."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg


def run_together(workers: list[Callable[[], None]], timeout: float = 120) -> list[BaseException]:
    """Starts every worker at once (behind a barrier); returns what they raised."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def start(work: Callable[[], None]) -> None:
        barrier.wait()
        try:
            work()
        except BaseException as error:  # the test fails on what a worker raised
            errors.append(error)

    threads = [threading.Thread(target=start, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return errors


@contextmanager
def service_connection(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection as services' RPCs run: service_role, each statement committed."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set role service_role")
        yield conn


@contextmanager
def service_connections(url: str, count: int) -> Iterator[list[psycopg.Connection[Any]]]:
    """count connections as service_role, opened before the race so that the calls, not the
    connecting, run together."""
    with ExitStack() as stack:
        yield [stack.enter_context(service_connection(url)) for _ in range(count)]


def one_value_at_once(
    url: str, sql: str, params: tuple[Any, ...] = (), count: int = 50
) -> tuple[list[Any], list[BaseException]]:
    """The same one-value statement from `count` service_role connections at once: the values
    they got, and what they raised."""
    values: list[Any] = []

    def call(conn: psycopg.Connection[Any]) -> None:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]  # tests' own SQL
        assert row is not None
        values.append(row[0])

    with service_connections(url, count) as conns:
        errors = run_together([lambda c=c: call(c) for c in conns])
    return values, errors


def wait_until_blocked(url: str, pid: int, timeout: float = 10.0) -> None:
    """Until backend `pid` waits for a lock another transaction holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("select cardinality(pg_blocking_pids(%s))", (pid,)).fetchone()
        if row and row[0] > 0:
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited for a lock")


def in_thread(work: Any) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # the test reads it
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome

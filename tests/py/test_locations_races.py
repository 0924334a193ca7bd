"""Position reports racing on real connections: a driver's first reports, arriving at once from
many connections, make one current row; reports with different fix times, in any order, leave
the newest; a place saved or a first position reported while the user is being erased is refused
once the erasure commits, and nothing of it is kept (a payment method too, written the same way)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.support.db import query
from tests.support.races import (
    in_thread,
    one_value_at_once,
    run_together,
    service_connection,
    service_connections,
    wait_until_blocked,
)

DRIVER = "d1000000-0000-4000-8000-000000000001"


def add_driver(database_url: str) -> None:
    query(
        database_url,
        "insert into public.users (id, phone_number) values (%s, '+250788400001')",
        (DRIVER,),
    )


def current_rows(database_url: str) -> list[tuple[object, ...]]:
    return query(
        database_url,
        "select extensions.st_y(coordinates::extensions.geometry), recorded_at"
        " from public.locations where user_id = %s and location_type = 'current'",
        (DRIVER,),
    )


def test_first_reports_at_once_make_one_current_row(database_url: str) -> None:
    add_driver(database_url)
    fix = datetime.now(UTC) - timedelta(seconds=5)

    applied, errors = one_value_at_once(
        database_url,
        "select public.update_current_location(%s, -1.95, 30.06, p_recorded_at := %s)",
        (DRIVER, fix),
        count=30,
    )

    assert errors == []
    # The same fix from every connection: each is applied or finds the same one stored.
    assert len(applied) == 30
    assert all(applied)
    assert [(round(float(lat), 6), at) for lat, at in current_rows(database_url)] == [(-1.95, fix)]


def test_reports_in_any_order_leave_the_newest(database_url: str) -> None:
    add_driver(database_url)
    start = datetime.now(UTC) - timedelta(minutes=1)
    # 24 reports, one second apart, latitude -1.9 - n/1000: sent all at once, in no order.
    reports = [(start + timedelta(seconds=n), -1.9 - n / 1000) for n in range(24)]

    with service_connections(database_url, len(reports)) as conns:

        def report(conn: object, at: datetime, lat: float) -> None:
            conn.execute(  # type: ignore[attr-defined]  # a psycopg connection
                "select public.update_current_location(%s, %s, 30.06, p_recorded_at := %s)",
                (DRIVER, lat, at),
            )

        errors = run_together(
            [
                lambda c=c, at=at, lat=lat: report(c, at, lat)
                for c, (at, lat) in zip(conns, reversed(reports), strict=True)
            ]
        )

    assert errors == []
    newest_at, newest_lat = reports[-1]
    assert [(round(float(lat), 6), at) for lat, at in current_rows(database_url)] == [
        (round(newest_lat, 6), newest_at)
    ]


@pytest.mark.parametrize(
    "write",
    [
        "select public.save_location(%s, 'home', -1.95, 30.06, 'Home', 'KN 3 Rd')",
        "select public.update_current_location(%s, -1.95, 30.06)",
        "select public.add_payment_method(%s, 'cash', 'cash', '{}', true)",
    ],
    ids=["save_location", "first update_current_location", "add_payment_method"],
)
def test_a_write_during_an_erasure_waits_for_it_and_is_refused(
    database_url: str, write: str
) -> None:
    add_driver(database_url)
    with service_connection(database_url) as eraser, service_connection(database_url) as writer:
        eraser.execute("begin")
        eraser.execute("select public.erase_user(%s)", (DRIVER,))
        thread, outcome = in_thread(lambda: writer.execute(write, (DRIVER,)).fetchone())
        wait_until_blocked(database_url, writer.info.backend_pid)
        eraser.execute("commit")
        thread.join(timeout=20)

    assert len(outcome) == 1
    assert isinstance(outcome[0], psycopg.Error)
    assert outcome[0].diag.sqlstate == "PT410"
    assert query(
        database_url,
        "select (select count(*) from public.locations where user_id = %s),"
        " (select count(*) from public.payment_methods where user_id = %s)",
        (DRIVER, DRIVER),
    ) == [(0, 0)]

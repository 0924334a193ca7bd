"""Position reports racing on real connections: a driver's first reports, arriving at once from
many connections, make one current row; reports with different fix times, in any order, leave
the newest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.db import query
from tests.support.races import one_value_at_once, run_together, service_connections

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
    assert any(applied)
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

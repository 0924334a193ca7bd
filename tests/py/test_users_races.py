"""One-time codes under real concurrent connections: callers racing with the right code, with
wrong codes, and for more codes than the hourly cap allows."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import psycopg

from tests.support.db import query
from tests.support.races import run_together, service_connections

USER_ID = "11111111-1111-4111-8111-111111111111"
PHONE = "+250788300001"


def add_user(url: str) -> None:
    query(url, "insert into public.users (id, phone_number) values (%s, %s)", (USER_ID, PHONE))


def issue(url: str) -> str:
    ((code,),) = query(url, "select public.issue_otp(%s)", (PHONE,))
    return code


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def verify_all_at_once(url: str, codes: list[str]) -> list[dict[str, Any] | tuple[str, str]]:
    """Calls verify_otp once per code, all at once; returns each call's answer, or its error's
    SQLSTATE and message."""
    outcomes: list[dict[str, Any] | tuple[str, str]] = []

    def caller(conn: psycopg.Connection[Any], code: str) -> None:
        try:
            row = conn.execute("select public.verify_otp(%s, %s)", (PHONE, code)).fetchone()
        except psycopg.Error as error:
            outcomes.append((error.sqlstate or "", error.diag.message_primary or ""))
            return
        assert row is not None
        outcomes.append(row[0])

    with service_connections(url, len(codes)) as conns:
        calls = [partial(caller, conn, code) for conn, code in zip(conns, codes, strict=True)]
        errors = run_together(calls)
    assert errors == []
    return outcomes


def test_five_callers_with_the_right_code_verify_the_user_once(database_url):
    add_user(database_url)
    code = issue(database_url)

    outcomes = verify_all_at_once(database_url, [code] * 5)

    verified = [o for o in outcomes if isinstance(o, dict) and o["verified"] is True]
    refused = [o for o in outcomes if isinstance(o, tuple)]
    assert len(verified) == 1
    assert verified[0]["user_id"] == USER_ID
    assert refused == [("PT409", "verify_otp: this code was already used; request a new one")] * 4
    ((verified_at, used_at),) = query(
        database_url,
        "select u.verified_at, o.verified_at from public.users as u"
        " join private.otp_codes as o on o.phone_number = u.phone_number where u.id = %s",
        (USER_ID,),
    )
    assert verified_at is not None
    assert used_at == verified_at
    events = query(
        database_url,
        "select aggregate_id from public.outbox_events where event_type = 'user.verified'",
    )
    assert events == [(USER_ID,)]


def test_five_callers_with_wrong_codes_use_up_three_attempts_and_no_more(database_url):
    add_user(database_url)
    code = issue(database_url)

    outcomes = verify_all_at_once(database_url, [other_than(code)] * 5)

    wrong = sorted(o["attempts_left"] for o in outcomes if isinstance(o, dict))
    refused = [o for o in outcomes if isinstance(o, tuple)]
    assert wrong == [0, 1, 2], "each wrong attempt was counted once, none lost to a race"
    assert (
        refused == [("PT429", "verify_otp: this code had 3 wrong attempts; request a new one")] * 2
    )
    ((attempts,),) = query(
        database_url, "select attempts from private.otp_codes where phone_number = %s", (PHONE,)
    )
    assert attempts == 3
    ((verified_at,),) = query(
        database_url, "select verified_at from public.users where id = %s", (USER_ID,)
    )
    assert verified_at is None


def test_eight_callers_asking_for_codes_at_once_get_five(database_url):
    add_user(database_url)
    outcomes: list[str] = []

    def caller(conn: psycopg.Connection[Any]) -> None:
        try:
            conn.execute("select public.issue_otp(%s)", (PHONE,))
        except psycopg.Error as error:
            outcomes.append(error.sqlstate or "")
            return
        outcomes.append("issued")

    with service_connections(database_url, 8) as conns:
        errors = run_together([partial(caller, conn) for conn in conns])
    assert errors == []

    assert Counter(outcomes) == {"issued": 5, "PT429": 3}
    ((issues,),) = query(
        database_url,
        "select count(*)::int from private.otp_issues where phone_number = %s",
        (PHONE,),
    )
    assert issues == 5

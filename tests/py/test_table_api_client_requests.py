"""Requests as wholes through supabase-py: a page holds at most max_rows (and an estimated count
past it), what PostgREST refuses from the request alone (parse errors, plans, aggregates), writes
that limit and offset do not narrow, callers racing over the edge's shared pool, and one query
string asked with other headers answered by each request's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from postgrest import APIError, CountMethod

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge
from tests.support.races import run_together
from tests.support.rls_seed import (
    COUNTERPARTY,
    OWNER,
    STRANGER,
    seed,
)


def test_a_page_holds_at_most_max_rows(edge: Edge, database_url: str) -> None:
    # No analyze while the test runs: the planner's guess stays one from request to request.
    query(database_url, "alter table public.users set (autovacuum_enabled = false)")
    query(
        database_url,
        "insert into public.users (phone_number)"
        " select '+25078830' || lpad(n::text, 4, '0') from generate_series(1, 1005) as n",
    )
    with RecordingClient(edge.url, edge.service_role_key) as service:
        table = service.supabase.table("users")
        first = table.select("id", count=CountMethod.exact).execute()
        first_response = service.last
        asked_more = table.select("id").limit(2000).execute()
        asked_more_range = service.last.headers["content-range"]
        rest = table.select("id", count=CountMethod.exact).range(1000, 1099).execute()
        rest_response = service.last
        estimated = table.select("id", count=CountMethod.estimated, head=True).execute()
        estimated_range = service.last.headers["content-range"]
        planned = table.select("id", count=CountMethod.planned, head=True).execute()

    # max_rows (1000, Supabase's default) caps every page, whatever limit was asked.
    assert (len(first.data), first.count) == (1000, 1005)
    assert first_response.status_code == 206
    assert first_response.headers["content-range"] == "0-999/1005"
    assert len(asked_more.data) == 1000
    assert asked_more_range == "0-999/*"
    assert (len(rest.data), rest.count) == (5, 1005)
    assert rest_response.status_code == 206
    assert rest_response.headers["content-range"] == "1000-1004/1005"
    # Past max_rows an estimated count is the planner's guess, but never below what was counted
    # (the exact count stops at max_rows + 1): PostgREST takes the greater of the two.
    assert planned.count is not None
    assert estimated.count == max(1001, planned.count)
    assert estimated_range == f"0-999/{estimated.count}"


def test_requests_postgrest_refuses_before_reading_anything(edge: Edge) -> None:
    """A bad operator, a plan (db-plan-enabled is off, as on Supabase), an aggregate (so is
    db-aggregates-enabled) or an embedding no foreign key supports is refused from the request
    alone, with PostgREST's code and words (its parser's, for the operator: the example of its
    own documentation)."""
    with RecordingClient(edge.url, edge.service_role_key) as service:
        users = service.supabase.table("users")
        refused = {
            "operator": service.error(users.select("id").filter("id", "noop", "0")),
            "unknown operator": service.error(users.select("id").filter("id", "xx", "1")),
            "plan": service.error(users.select("id").explain()),
            "aggregate": service.error(users.select("count()")),
            "no relationship": service.error(
                service.supabase.table("transactions").select("amount, wallets(balance)")
            ),
        }

    assert refused == {
        "operator": (
            400,
            {
                "code": "PGRST100",
                "details": 'unexpected "o" expecting "not" or operator (eq, gt, ...)',
                "hint": None,
                "message": '"failed to parse filter (noop.0)" (line 1, column 1)',
            },
        ),
        "unknown operator": (
            400,
            {
                "code": "PGRST100",
                "details": 'unexpected "x" expecting "not" or operator (eq, gt, ...)',
                "hint": None,
                "message": '"failed to parse filter (xx.1)" (line 1, column 1)',
            },
        ),
        "aggregate": (
            400,
            {
                "code": "PGRST123",
                "details": None,
                "hint": None,
                "message": "Use of aggregate functions is not allowed",
            },
        ),
        "no relationship": (
            400,
            {
                "code": "PGRST200",
                "details": "Searched for a foreign key relationship between 'transactions' and "
                "'wallets' in the schema 'public', but no matches were found.",
                "hint": None,
                "message": "Could not find a relationship between 'transactions' and 'wallets' "
                "in the schema cache",
            },
        ),
        # The media type as PostgREST reads it: the plan of (by default) application/json.
        "plan": (
            406,
            {
                "code": "PGRST107",
                "details": None,
                "hint": None,
                "message": "None of these media types are available: "
                'application/vnd.pgrst.plan+text; for="application/json"',
            },
        ),
    }


def test_limit_and_offset_do_not_narrow_a_write(edge: Edge, database_url: str) -> None:
    """PostgREST 13 dropped limited updates and deletes: on PATCH and DELETE, limit and offset
    are ignored, so every row the filters match is changed (and returned)."""
    query(
        database_url,
        "insert into public.users (id, phone_number) values"
        " (%s, '+250788100001'), (%s, '+250788100002'), (%s, '+250788100003')",
        (OWNER, COUNTERPARTY, STRANGER),
    )
    with RecordingClient(edge.url, edge.service_role_key) as service:
        users = service.supabase.table("users")
        renamed = (
            users.update({"display_name": "Renamed"})
            .in_("id", [OWNER, COUNTERPARTY])
            .limit(1)
            .offset(1)
            .select("id")
            .execute()
        )
        deleted = users.delete().in_("id", [COUNTERPARTY, STRANGER]).limit(1).execute()

    assert sorted(row["id"] for row in renamed.data) == [OWNER, COUNTERPARTY]
    assert sorted(row["id"] for row in deleted.data) == [COUNTERPARTY, STRANGER]
    assert query(database_url, "select id::text, display_name from public.users") == [
        (OWNER, "Renamed")
    ]


def test_concurrent_callers_each_read_as_themselves(edge: Edge, database_url: str) -> None:
    """Claims and role are the request's own, however the edge's few pooled connections are
    shared: many callers at once each see exactly their rows."""
    seed(edge, database_url)
    callers = {
        OWNER: edge.user_token(OWNER),
        COUNTERPARTY: edge.user_token(COUNTERPARTY),
        STRANGER: edge.user_token(STRANGER),
        "anon": edge.anon_key,
        "service": edge.service_role_key,
    }
    seen: list[tuple[str, Any]] = []

    def read_as(caller: str) -> Callable[[], None]:
        def read() -> None:
            with RecordingClient(edge.url, callers[caller]) as client:
                for _ in range(5):
                    builder = client.supabase.table("users").select("id").order("id")
                    try:
                        ids = [row["id"] for row in builder.execute().data]
                    except APIError:
                        ids = [str(client.last.status_code)]
                    seen.append((caller, ids))

        return read

    errors = run_together([read_as(caller) for caller in callers for _ in range(6)])

    assert errors == []
    expected = {
        OWNER: [OWNER],
        COUNTERPARTY: [COUNTERPARTY],
        STRANGER: [STRANGER],
        "anon": ["401"],
        "service": [OWNER, COUNTERPARTY, STRANGER],
    }
    assert len(seen) == len(callers) * 6 * 5
    assert [(caller, ids) for caller, ids in seen if ids != expected[caller]] == []


def owners_row(
    client: RecordingClient, count: CountMethod | None = None, *, head: bool | None = None
) -> Any:
    """users?select=id,terms_version&id=eq.<owner>: one query string for every variant."""
    return (
        client.supabase.table("users")
        .select("id,terms_version", count=count, head=head)
        .eq("id", OWNER)
    )


def test_one_query_string_answers_each_requests_own_headers(edge: Edge, database_url: str) -> None:
    """The same path and query string, asked again with another media type, preference, role
    or method, is answered by what this request asked for, never by an earlier one."""
    seed(edge, database_url)
    owner_token = edge.user_token(OWNER)
    answers: list[tuple[str, int, Any, str | None]] = []
    for caller, key in (
        ("service", edge.service_role_key),
        ("owner", owner_token),
        ("anon", edge.anon_key),
        ("owner again", owner_token),
    ):
        with RecordingClient(edge.url, key) as client:
            for kind, builder in (
                ("json", owners_row(client)),
                ("object", owners_row(client).single()),
                ("csv", owners_row(client).csv()),
                ("stripped", owners_row(client).strip_nulls()),
                ("counted", owners_row(client, CountMethod.exact)),
                ("head", owners_row(client, CountMethod.exact, head=True)),
            ):
                try:
                    data = builder.execute().data
                except APIError:
                    data = None
                answers.append(
                    (
                        f"{caller} {kind}",
                        client.last.status_code,
                        data,
                        client.last.headers.get("content-range"),
                    )
                )

    row = {"id": OWNER, "terms_version": None}
    readers = {
        caller: [
            (f"{caller} json", 200, [row], "0-0/*"),
            (f"{caller} object", 200, row, "0-0/*"),
            (f"{caller} csv", 200, f"id,terms_version\n{OWNER},", "0-0/*"),
            (f"{caller} stripped", 200, [{"id": OWNER}], "0-0/*"),
            (f"{caller} counted", 200, [row], "0-0/1"),
            (f"{caller} head", 200, [], "0-0/1"),
        ]
        for caller in ("service", "owner", "owner again")
    }
    refused = [
        (f"anon {kind}", 401, None, None)
        for kind in ("json", "object", "csv", "stripped", "counted", "head")
    ]
    assert answers == readers["service"] + readers["owner"] + refused + readers["owner again"]

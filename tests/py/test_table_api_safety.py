"""The table API decides nothing itself: grants and RLS on the project's own tables decide, per
role (anon, owner, stranger, service_role); and hostile names and values come back as data or
as errors, never as statements."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import TestServer
from tests.support.table_api import ODD_COLUMN, ODD_TABLE, OWNER, STRANGER, Api, table_api_stack


@pytest.fixture(scope="module")
def api(server: TestServer) -> Iterator[Api]:
    with table_api_stack(server) as stack:
        yield stack


# RLS and grants decide ------------------------------------------------------------------------


def test_users_rls_per_role(api: Api):
    owner = api.get("users?select=id,display_name", role="owner")
    assert owner.json() == [{"id": OWNER, "display_name": "Owner"}]
    stranger = api.get("users?select=id", role="stranger")
    assert stranger.json() == [{"id": STRANGER}]
    anon = api.get("users", role="anon")
    assert anon.status_code == 401
    assert anon.json()["code"] == "42501"
    service = api.get("users?select=id&order=id", role="service")
    assert service.json() == [{"id": OWNER}, {"id": STRANGER}]


def test_preferences_update_only_own_row(api: Api):
    own = api.send(
        "PATCH",
        f"user_preferences?user_id=eq.{OWNER}&select=language",
        {"language": "rw"},
        role="owner",
        prefer="return=representation",
    )
    assert (own.status_code, own.json()) == (200, [{"language": "rw"}])
    other = api.send(
        "PATCH",
        f"user_preferences?user_id=eq.{STRANGER}",
        {"language": "fr"},
        role="owner",
        prefer="count=exact",
    )
    assert (other.status_code, other.headers["content-range"]) == (204, "*/0")
    not_granted = api.send(
        "PATCH", f"user_preferences?user_id=eq.{OWNER}", {"created_at": "2020-01-01"}, role="owner"
    )
    assert not_granted.status_code == 403
    anon = api.send("PATCH", "user_preferences", {"language": "fr"}, role="anon")
    assert anon.status_code == 401
    assert api.query("select user_id::text, language from public.user_preferences order by 1") == [
        (OWNER, "rw"),
        (STRANGER, "en-GB"),
    ]


def test_transactions_read_own_and_write_none(api: Api):
    owner = api.get("transactions?select=user_id,amount,currency", role="owner")
    assert owner.json() == [{"user_id": OWNER, "amount": 1000, "currency": "RWF"}]
    stranger = api.get("transactions?select=amount", role="stranger")
    assert stranger.json() == [{"amount": 2000}]
    service = api.get("transactions?select=amount&order=amount", role="service")
    assert service.json() == [{"amount": 1000}, {"amount": 2000}]
    forged = api.send(
        "POST",
        "transactions",
        {"reference": "TXN-FORGED", "user_id": OWNER, "type": "credit", "amount": 5,
         "currency": "RWF"},
        role="owner",
    )  # fmt: skip
    assert forged.status_code == 403
    assert forged.json()["code"] == "42501"
    deleted = api.send("DELETE", "transactions", role="service")
    assert deleted.status_code == 403
    assert api.query("select count(*) from public.transactions") == [(2,)]


def test_reads_run_read_only(api: Api):
    # A GET is a read-only transaction: even a function that writes cannot write through it.
    response = api.get("tapi_items?select=id&id=eq.1", prefer="count=exact")
    assert response.status_code == 200
    assert api.query("select count(*) from public.tapi_items where id <= 5") == [(5,)]


# Hostile names and values ---------------------------------------------------------------------


HOSTILE_VALUES = [
    "'; drop table public.tapi_items; --",
    'a"b\\c',
    "Robert'); delete from public.tapi_items where ('1'='1",
    "%s %(name)s {} $1 $$",
    "naïve ünïcode 🚀",
    "\\x00 ; select pg_sleep(5)",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_values_are_data(api: Api, value: str):
    row_id = 200 + HOSTILE_VALUES.index(value)
    inserted = api.send(
        "POST", "tapi_items", {"id": row_id, "name": value, "data": {value: value}},
        prefer="return=representation",
    )  # fmt: skip
    assert inserted.status_code == 201, inserted.text
    assert inserted.json()[0]["name"] == value
    found = api.http.get(
        "tapi_items",
        params={"select": "id,name", "name": f"eq.{value}"},
        headers=api.headers("service"),
    )
    assert found.json() == [{"id": row_id, "name": value}]
    in_list = api.http.get(
        "tapi_items",
        params={"select": "id", "name": f'in.("{_quoted(value)}","other")'},
        headers=api.headers("service"),
    )
    assert in_list.json() == [{"id": row_id}]
    by_key = api.http.get(
        "tapi_items",
        params={"select": "id", f"data->>{_quoted_key(value)}": f"eq.{value}"},
        headers=api.headers("service"),
    )
    assert by_key.json() == [{"id": row_id}]
    updated = api.http.patch(
        "tapi_items",
        params={"id": f"eq.{row_id}"},
        json={"note": value},
        headers=api.headers("service"),
    )
    assert updated.status_code == 204
    assert api.query("select note from public.tapi_items where id = %s", (row_id,)) == [(value,)]
    assert api.query("select count(*) from public.tapi_items where id <= 5") == [(5,)]


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _quoted_key(value: str) -> str:
    return '"' + _quoted(value) + '"'


@pytest.mark.parametrize(
    "params",
    [
        {"select": '"id; drop table public.tapi_items; --"'},
        {"select": 'x:"name""); drop table public.tapi_items; --"'},
        {"select": "id::text); drop table public.tapi_items; --"},
        {"order": '"id desc; drop table public.tapi_items"'},
        {'"id""; drop table public.tapi_items; --"': "eq.1"},
        {"id": "eq.1); drop table public.tapi_items; --"},
        {"or": "(id.eq.1,id.eq.2)); drop table public.tapi_items; --"},
        {"note": "fts(english'); drop table public.tapi_items; --).x"},
        {"on_conflict": '"id""); drop table public.tapi_items; --"'},
        {"select": 'id,"tapi_pets); drop table public.tapi_items; --"(*)'},
        {"select": 'id,x:tapi_pets!"owner_id) or (1=1"(name)'},
    ],
)
def test_hostile_names_are_errors_never_statements(api: Api, params: dict[str, str]):
    response = api.http.get("tapi_items", params=params, headers=api.headers("service"))
    assert response.status_code in (200, 400, 404), response.text
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code == 200:  # on_conflict means nothing to a read
        assert len(response.json()) == 5
    assert api.query("select count(*) from public.tapi_items where id <= 5") == [(5,)]


def test_hostile_table_and_column_names_are_quoted(api: Api):
    path = ODD_TABLE.replace('"', "%22").replace(" ", "%20").replace(";", "%3B")
    read = api.http.get(
        path,
        params={"select": f'id,"{_quoted(ODD_COLUMN)}",u:"naïve ünïcode","50%off"'},
        headers=api.headers("service"),
    )
    assert read.status_code == 200, read.text
    assert read.json() == [{"id": 1, ODD_COLUMN: "quoted", "u": "unicode", "50%off": "half"}]
    written = api.http.post(
        path,
        params={"select": f'"{_quoted(ODD_COLUMN)}"'},
        json={"id": 2, ODD_COLUMN: "'; --", "50%off": "%s"},
        headers=api.headers("service") | {"prefer": "return=representation"},
    )
    assert written.status_code == 201, written.text
    assert written.json() == [{ODD_COLUMN: "'; --"}]
    filtered = api.http.get(
        path,
        params={f'"{_quoted(ODD_COLUMN)}"': "eq.'; --", "select": '"50%off"'},
        headers=api.headers("service"),
    )
    assert filtered.json() == [{"50%off": "%s"}]
    assert api.query("select count(*) from public.tapi_items where id <= 5") == [(5,)]

"""The table API (`/rest/v1/{table}`) over raw HTTP through the real edge, held to PostgREST's
table dialect: select, every filter operator, logic trees, order, pages and counts, media types,
inserts, upserts, updates and deletes with each Prefer, and PostgREST's errors. Embedding is in
test_table_api_embedding.py, RLS and hostile input in test_table_api_safety.py.

One database and one edge serve the module; fixture relations: tests/support/table_api.sql.
Tests that write use rows (ids) of their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.gateway import error_body
from tests.support.server import TestServer
from tests.support.table_api import Api, ids, table_api_stack


@pytest.fixture(scope="module")
def api(server: TestServer) -> Iterator[Api]:
    with table_api_stack(server) as stack:
        yield stack


# select ---------------------------------------------------------------------------------------


def test_select_renames_casts_and_json_paths(api: Api):
    response = api.get(
        "tapi_items?select=id,label:name,score::text,data->>colour,cm:data->size->cm::int,"
        "first:data->list->0,data->size&id=in.(1,2)&order=id"
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == [
        {"id": 1, "label": "apple", "score": "1.5", "colour": "red", "cm": 8, "first": 1,
         "size": {"cm": 8}},
        {"id": 2, "label": "banana", "score": "2.5", "colour": "yellow", "cm": 20, "first": None,
         "size": {"cm": 20}},
    ]  # fmt: skip


def test_select_star_and_default_are_every_column(api: Api):
    every = api.get("tapi_items?id=eq.1").json()
    assert every == api.get("tapi_items?select=*&id=eq.1").json()
    assert set(every[0]) == {"id", "name", "score", "tags", "data", "note", "created_at"}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("id=eq.2", [2]),
        ("id=neq.2", [1, 3, 4, 5]),
        ("score=gt.2.5", [4, 5]),
        ("score=gte.2.5", [2, 4, 5]),
        ("score=lt.2.5", [1]),
        ("score=lte.2.5", [1, 2]),
        ("name=like.*rr*", [3, 5]),
        ("name=ilike.d*", [4]),
        ("name=match.^[ab]", [1, 2]),
        ("name=imatch.^D", [4]),
        ("id=in.(1,3,5)", [1, 3, 5]),
        ("id=in.()", []),
        ('name=in.("apple","elder%25berry")', [1, 5]),
        ("score=is.null", [3]),
        ("score=not.is.null", [1, 2, 4, 5]),
        ("note=is.not_null", [1, 2, 4, 5]),
        ("score=isdistinct.1.5", [2, 3, 4, 5]),
        ("note=fts.quick%26fox", [1]),
        ("note=fts(english).jumping", [2]),
        ("note=plfts.lazy dog", [2]),
        ("note=phfts(english).smelly fruit", [4]),
        ("note=wfts.fox or fruit", [1, 4]),
        ("tags=cs.{red}", [1, 3]),
        ("tags=cd.{red,fruit,small}", [1, 3, 5]),
        ("tags=ov.{green,small}", [3, 4]),
        ('data=cs.{"colour":"red"}', [1, 3]),
        ("data->>colour=eq.red", [1, 3]),
        ("data->size->cm=gt.10", [2]),
        ("name=like(any).{a*,b*}", [1, 2]),
        ("name=like(all).{*e*,*r*}", [3, 5]),
        ("id=eq(any).{4,5}", [4, 5]),
        ("id=not.in.(1,2)", [3, 4, 5]),
        ("score=not.gt.2", [1]),
    ],
)
def test_each_filter_operator(api: Api, condition: str, expected: list[int]):
    assert ids(api.get(f"tapi_items?select=id&order=id&{condition}")) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("span=sl.[10,20)", [1, 2]),
        ("span=sr.[0,5)", [2, 3]),
        ("span=nxr.[0,10)", [1, 2]),
        ("span=nxl.[5,100)", [2, 3]),
        ("span=adj.[10,20)", [2, 3]),
        ("span=ov.[4,6)", [1, 2]),
        ("span=cs.[6,8)", [2]),
        ("span=cd.[0,10)", [1, 2]),
        ("span=not.adj.[10,20)", [1]),
    ],
)
def test_range_operators(api: Api, condition: str, expected: list[int]):
    assert ids(api.get(f"tapi_spans?select=id&order=id&{condition}")) == expected


@pytest.mark.parametrize(
    ("logic", "expected"),
    [
        ("or=(id.eq.1,name.eq.banana)", [1, 2]),
        ("and=(score.gt.1,score.lt.5)", [1, 2, 4]),
        ("not.or=(id.lt.3,id.gt.4)", [3, 4]),
        ("or=(id.eq.5,and(score.gte.2,tags.cs.{fruit}))", [2, 5]),
        ("or=(id.in.(1,2),note.is.null)", [1, 2, 3]),
        ('or=(name.eq."elder%25berry",not.and(id.gt.1,id.lt.5))', [1, 5]),
        ("or=(tags.cs.{green},data->>colour.eq.black)", [4, 5]),
    ],
)
def test_logic_trees(api: Api, logic: str, expected: list[int]):
    assert ids(api.get(f"tapi_items?select=id&order=id&{logic}")) == expected


def test_filters_and_logic_combine_with_and(api: Api):
    assert ids(api.get("tapi_items?select=id&order=id&or=(id.eq.1,id.eq.2)&score=gt.2")) == [2]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("score", [1, 2, 4, 5, 3]),
        ("score.asc.nullsfirst", [3, 1, 2, 4, 5]),
        ("score.desc", [3, 5, 4, 2, 1]),
        ("score.desc.nullslast", [5, 4, 2, 1, 3]),
        ("score.nullsfirst", [3, 1, 2, 4, 5]),
        ("data->size->cm.desc.nullslast,id", [2, 1, 3, 4, 5]),
        ("tags->>0.asc.nullslast,id.desc", [4, 3, 1, 2, 5]),
    ],
)
def test_order_with_nulls_first_and_last(api: Api, order: str, expected: list[int]):
    assert ids(api.get(f"tapi_items?select=id&order={order}")) == expected


# Pages and counts -----------------------------------------------------------------------------


def test_limit_and_offset_answer_a_partial_page(api: Api):
    response = api.get("tapi_items?select=id&order=id&limit=2&offset=1", prefer="count=exact")
    assert response.status_code == 206
    assert response.headers["content-range"] == "1-2/5"
    assert response.headers["preference-applied"] == "count=exact"
    assert ids(response) == [2, 3]
    whole = api.get("tapi_items?select=id&order=id", prefer="count=exact")
    assert (whole.status_code, whole.headers["content-range"]) == (200, "0-4/5")
    uncounted = api.get("tapi_items?select=id&order=id&limit=2")
    assert (uncounted.status_code, uncounted.headers["content-range"]) == (200, "0-1/*")
    assert "preference-applied" not in uncounted.headers


def test_range_header_pages_like_limit_and_offset(api: Api):
    response = api.get("tapi_items?select=id&order=id", range="1-3", prefer="count=exact")
    assert (response.status_code, response.headers["content-range"]) == (206, "1-3/5")
    assert ids(response) == [2, 3, 4]
    open_ended = api.get("tapi_items?select=id&order=id", range="3-")
    assert (open_ended.headers["content-range"], ids(open_ended)) == ("3-4/*", [4, 5])
    narrowed = api.get("tapi_items?select=id&order=id&limit=1&offset=2", range="2-4")
    assert (narrowed.headers["content-range"], ids(narrowed)) == ("2-2/*", [3])


def test_limit_zero_answers_no_rows_and_the_count(api: Api):
    response = api.get("tapi_items?limit=0", prefer="count=exact")
    assert (response.status_code, response.json()) == (206, [])
    assert response.headers["content-range"] == "*/5"


@pytest.mark.parametrize(
    ("path", "headers", "details"),
    [
        (
            "tapi_items?offset=9",
            {"prefer": "count=exact"},
            "An offset of 9 was requested, but there are only 5 rows.",
        ),
        (
            "tapi_items",
            {"range": "4-2"},
            "The lower boundary must be lower than or equal to the upper boundary in the Range "
            "header.",
        ),
        ("tapi_items?limit=-1", {}, "Limit should be greater than or equal to zero."),
    ],
)
def test_unsatisfiable_ranges_are_416(api: Api, path: str, headers: dict[str, str], details: str):
    response = api.get(path, **headers)
    assert response.status_code == 416
    assert response.json() == error_body("PGRST103", "Requested range not satisfiable", details)


def test_planned_and_estimated_counts(api: Api):
    planned = api.get("tapi_items?select=id&limit=1", prefer="count=planned")
    assert planned.headers["preference-applied"] == "count=planned"
    lower_upper, total = planned.headers["content-range"].split("/")
    assert lower_upper == "0-0"
    assert int(total) >= 1  # the planner's guess, not a count
    estimated = api.get("tapi_items?select=id&limit=1", prefer="count=estimated")
    # Fewer rows than max_rows: the estimate is the exact count.
    assert estimated.headers["content-range"] == "0-0/5"
    assert estimated.headers["preference-applied"] == "count=estimated"


def test_rows_are_capped_at_max_rows(api: Api):
    api.query(
        "insert into public.tapi_keyless (label, amount) "
        "select 'bulk', g from generate_series(1, 1005) as g"
    )
    response = api.get("tapi_keyless?label=eq.bulk&select=amount", prefer="count=exact")
    assert response.status_code == 206
    assert response.headers["content-range"] == "0-999/1005"
    assert len(response.json()) == 1000
    api.query("delete from public.tapi_keyless where label = 'bulk'")


# Media types ----------------------------------------------------------------------------------


def test_one_object(api: Api):
    response = api.get(
        "tapi_items?select=id,name&id=eq.4", accept="application/vnd.pgrst.object+json"
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.pgrst.object+json; charset=utf-8"
    assert response.json() == {"id": 4, "name": "Durian"}


@pytest.mark.parametrize(("condition", "rows"), [("id=gt.2", 3), ("id=eq.99", 0)])
def test_one_object_refused_when_not_exactly_one_row(api: Api, condition: str, rows: int):
    response = api.get(f"tapi_items?{condition}", accept="application/vnd.pgrst.object+json")
    assert response.status_code == 406
    assert response.json() == error_body(
        "PGRST116",
        "Cannot coerce the result to a single JSON object",
        f"The result contains {rows} rows",
    )


def test_csv(api: Api):
    response = api.get("tapi_items?select=id,name,score&id=lte.3&order=id", accept="text/csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text == "id,name,score\n1,apple,1.5\n2,banana,2.5\n3,cherry,"


def test_nulls_stripped(api: Api):
    accept = "application/vnd.pgrst.array+json;nulls=stripped"
    response = api.get("tapi_items?select=id,score&id=eq.3", accept=accept)
    assert response.json() == [{"id": 3}]


def test_unavailable_media_type_is_406(api: Api):
    response = api.get("tapi_items", accept="application/xml")
    assert response.status_code == 406
    assert response.json() == error_body(
        "PGRST107", "None of these media types are available: application/xml"
    )


def test_head_answers_headers_only(api: Api):
    response = api.http.head(
        "tapi_items?id=gt.1", headers=api.headers("service") | {"prefer": "count=exact"}
    )
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-range"] == "0-3/4"


# Writes ---------------------------------------------------------------------------------------


def item_names(api: Api, low: int, high: int) -> dict[int, str]:
    rows = api.query(
        "select id, name from public.tapi_items where id between %s and %s", (low, high)
    )
    return dict(rows)  # type: ignore[arg-type]


def test_insert_with_each_return_mode(api: Api):
    minimal = api.send("POST", "tapi_items", {"id": 100, "name": "fig"})
    assert (minimal.status_code, minimal.content) == (201, b"")
    assert minimal.headers["content-range"] == "*/*"
    full = api.send(
        "POST",
        "tapi_items?select=id,name,tags",
        {"id": 101, "name": "grape", "tags": ["x"]},
        prefer="return=representation",
    )
    assert full.status_code == 201
    assert full.json() == [{"id": 101, "name": "grape", "tags": ["x"]}]
    assert full.headers["preference-applied"] == "return=representation"
    headers_only = api.send(
        "POST", "tapi_items", {"id": 102, "name": "kiwi"}, prefer="return=headers-only"
    )
    assert (headers_only.status_code, headers_only.content) == (201, b"")
    assert headers_only.headers["location"] == "/tapi_items?id=eq.102"
    assert item_names(api, 100, 102) == {100: "fig", 101: "grape", 102: "kiwi"}


def test_bulk_insert_and_columns(api: Api):
    rows = [{"id": 110, "name": "a"}, {"id": 111, "name": "b"}]
    response = api.send("POST", "tapi_items", rows, prefer="return=representation,count=exact")
    assert response.status_code == 201
    assert response.headers["content-range"] == "*/2"
    assert [row["id"] for row in response.json()] == [110, 111]
    # columns= names what is inserted; other keys are ignored, missing ones are null.
    uneven = [{"id": 112, "name": "c", "score": 3}, {"id": 113, "name": "d", "ignored": 1}]
    response = api.send("POST", "tapi_items?columns=id,name,score", uneven)
    assert response.status_code == 201, response.text
    assert api.query(
        "select id, score from public.tapi_items where id in (112, 113) order by id"
    ) == [
        (112, 3),
        (113, None),
    ]


def test_missing_default_applies_column_defaults(api: Api):
    response = api.send(
        "POST",
        "tapi_defaults?columns=id,label,amount",
        [{"id": 1}, {"id": 2, "label": "two", "amount": None}],
        prefer="return=representation,missing=default",
    )
    assert response.status_code == 201, response.text
    assert response.json() == [
        {"id": 1, "label": "unnamed", "amount": 7},
        {"id": 2, "label": "two", "amount": None},
    ]
    assert response.headers["preference-applied"] == "missing=default, return=representation"


def test_missing_default_on_update_sets_what_the_body_leaves_out_to_its_default(api: Api):
    api.send("POST", "tapi_defaults", {"id": 10, "label": "set", "amount": 1})
    response = api.send(
        "PATCH",
        "tapi_defaults?id=eq.10&columns=label,amount",
        {"label": "changed"},
        prefer="return=representation,missing=default",
    )
    assert response.json() == [{"id": 10, "label": "changed", "amount": 7}]
    nulls = api.send(
        "PATCH",
        "tapi_defaults?id=eq.10&columns=label,amount",
        {"label": "again"},
        prefer="return=representation",
    )
    assert nulls.json() == [{"id": 10, "label": "again", "amount": None}]


def test_uneven_bulk_keys_are_refused(api: Api):
    response = api.send("POST", "tapi_items", [{"id": 120, "name": "a"}, {"id": 121}])
    assert response.status_code == 400
    assert response.json() == error_body("PGRST102", "All object keys must match")
    assert item_names(api, 120, 121) == {}


def test_upsert_merge_and_ignore_duplicates(api: Api):
    api.send("POST", "tapi_items", [{"id": 130, "name": "old"}, {"id": 131, "name": "old"}])
    merged = api.send(
        "POST",
        "tapi_items",
        [{"id": 130, "name": "merged"}, {"id": 132, "name": "new"}],
        prefer="resolution=merge-duplicates,return=representation",
    )
    assert merged.status_code == 201
    assert (
        merged.headers["preference-applied"] == "resolution=merge-duplicates, return=representation"
    )
    only_updated = api.send(
        "POST",
        "tapi_items?on_conflict=id",
        {"id": 131, "name": "merged"},
        prefer="resolution=merge-duplicates",
    )
    assert only_updated.status_code == 200  # nothing inserted: PostgREST answers 200
    ignored = api.send(
        "POST",
        "tapi_items?on_conflict=id",
        [{"id": 130, "name": "ignored"}, {"id": 133, "name": "new"}],
        prefer="resolution=ignore-duplicates,return=representation",
    )
    assert ignored.status_code == 201
    assert ignored.json()[0]["id"] == 133
    assert item_names(api, 130, 133) == {130: "merged", 131: "merged", 132: "new", 133: "new"}


def test_duplicate_without_resolution_is_409(api: Api):
    api.send("POST", "tapi_items", {"id": 140, "name": "first"})
    response = api.send("POST", "tapi_items", {"id": 140, "name": "second"})
    assert response.status_code == 409
    assert response.json()["code"] == "23505"
    assert item_names(api, 140, 140) == {140: "first"}


def test_upsert_on_a_unique_key_that_is_not_there_is_postgres_error(api: Api):
    response = api.send(
        "POST",
        "tapi_items?on_conflict=name",
        {"id": 141, "name": "x"},
        prefer="resolution=merge-duplicates",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "42P10"


def test_update_with_each_return_mode(api: Api):
    api.send("POST", "tapi_items", [{"id": 150, "name": "a"}, {"id": 151, "name": "b"}])
    minimal = api.send("PATCH", "tapi_items?id=eq.150", {"name": "a2"})
    assert (minimal.status_code, minimal.content) == (204, b"")
    assert minimal.headers["content-range"] == "0-0/*"
    full = api.send(
        "PATCH",
        "tapi_items?id=gte.150&id=lte.151&select=id,name&order=id",
        {"name": "both", "score": 9},
        prefer="return=representation,count=exact",
    )
    assert full.status_code == 200
    assert sorted(full.json(), key=lambda r: r["id"]) == [
        {"id": 150, "name": "both"},
        {"id": 151, "name": "both"},
    ]
    assert full.headers["content-range"] == "0-1/2"
    assert full.headers["preference-applied"] == "return=representation, count=exact"
    none_matched = api.send("PATCH", "tapi_items?id=eq.999", {"name": "x"}, prefer="count=exact")
    assert (none_matched.status_code, none_matched.headers["content-range"]) == (204, "*/0")
    assert item_names(api, 150, 151) == {150: "both", 151: "both"}


def test_unknown_column_in_body_is_pgrst204(api: Api):
    response = api.send("PATCH", "tapi_items?id=eq.1", {"nope": 1})
    assert response.status_code == 400
    assert response.json() == error_body(
        "PGRST204", "Could not find the 'nope' column of 'tapi_items' in the schema cache"
    )


def test_delete_with_each_return_mode(api: Api):
    api.send("POST", "tapi_items", [{"id": i, "name": "d"} for i in range(160, 164)])
    minimal = api.send("DELETE", "tapi_items?id=eq.160")
    assert (minimal.status_code, minimal.headers["content-range"]) == (204, "*/*")
    full = api.send(
        "DELETE",
        "tapi_items?id=in.(161,162)&select=id",
        prefer="return=representation,count=exact",
    )
    assert full.status_code == 200
    assert sorted(r["id"] for r in full.json()) == [161, 162]
    assert full.headers["content-range"] == "*/2"
    assert item_names(api, 160, 163) == {163: "d"}


def test_max_affected_refuses_and_rolls_back(api: Api):
    api.send("POST", "tapi_items", [{"id": i, "name": "m"} for i in range(170, 174)])
    refused = api.send(
        "DELETE", "tapi_items?id=gte.170&id=lt.174", prefer="handling=strict,max-affected=3"
    )
    assert refused.status_code == 400
    assert refused.json() == error_body(
        "PGRST124",
        "Query result exceeds max-affected preference constraint",
        "The query affects 4 rows",
    )
    assert len(item_names(api, 170, 173)) == 4
    refused_update = api.send(
        "PATCH", "tapi_items?id=gte.170", {"name": "no"}, prefer="handling=strict,max-affected=1"
    )
    assert refused_update.status_code == 400
    allowed = api.send(
        "PATCH",
        "tapi_items?id=eq.170",
        {"name": "yes"},
        prefer="handling=strict,max-affected=1",
    )
    assert allowed.status_code == 204
    assert allowed.headers["preference-applied"] == "handling=strict, max-affected=1"
    # Without handling=strict, max-affected is ignored, as by PostgREST.
    lenient = api.send("DELETE", "tapi_items?id=gte.171&id=lt.174", prefer="max-affected=1")
    assert lenient.status_code == 204
    assert item_names(api, 170, 173) == {170: "yes"}


@pytest.mark.parametrize("value", ["--5", "x", "", "1.5"])
def test_unreadable_max_affected_is_no_limit(api: Api, value: str):
    response = api.send(
        "PATCH",
        "tapi_items?id=eq.999",
        {"name": "x"},
        prefer=f"handling=strict,max-affected={value}",
    )
    assert response.status_code == 204
    assert response.headers["preference-applied"] == "handling=strict"


def test_invalid_preferences_with_handling_strict(api: Api):
    response = api.get("tapi_items", prefer="handling=strict, count=sometimes")
    assert response.status_code == 400
    assert response.json() == error_body(
        "PGRST122",
        "Invalid preferences given with handling=strict",
        "Invalid preferences: count=sometimes",
    )


def test_tx_rollback_answers_and_changes_nothing(api: Api):
    response = api.send(
        "POST",
        "tapi_items",
        {"id": 180, "name": "ghost"},
        prefer="return=representation,tx=rollback",
    )
    assert response.status_code == 201
    assert response.json()[0]["name"] == "ghost"
    assert response.headers["preference-applied"] == "return=representation, tx=rollback"
    assert item_names(api, 180, 180) == {}
    deleted = api.send("DELETE", "tapi_items?id=eq.1", prefer="tx=rollback,count=exact")
    assert deleted.headers["content-range"] == "*/1"
    assert item_names(api, 1, 1) == {1: "apple"}


def test_one_object_write_refused_rolls_back(api: Api):
    response = api.send(
        "POST",
        "tapi_items",
        [{"id": 190, "name": "a"}, {"id": 191, "name": "b"}],
        accept="application/vnd.pgrst.object+json",
        prefer="return=representation",
    )
    assert response.status_code == 406
    assert response.json()["code"] == "PGRST116"
    assert item_names(api, 190, 191) == {}
    single = api.send(
        "POST",
        "tapi_items",
        {"id": 192, "name": "c"},
        accept="application/vnd.pgrst.object+json",
        prefer="return=representation",
    )
    assert single.json()["id"] == 192


def test_csv_and_form_bodies(api: Api):
    csv_body = 'id,name,note\n230,"a, b",NULL\n231,c,"line\nbreak"\n'
    response = api.http.post(
        "tapi_items",
        content=csv_body.encode(),
        headers=api.headers("service")
        | {"content-type": "text/csv", "prefer": "return=representation"},
    )
    assert response.status_code == 201, response.text
    assert [(r["id"], r["name"], r["note"]) for r in response.json()] == [
        (230, "a, b", None),
        (231, "c", "line\nbreak"),
    ]
    uneven = api.http.post(
        "tapi_items",
        content=b"id,name\n232\n",
        headers=api.headers("service") | {"content-type": "text/csv"},
    )
    assert uneven.json() == error_body("PGRST102", "All lines must have same number of fields")
    form = api.http.post(
        "tapi_items",
        content=b"id=233&name=d%26e",
        headers=api.headers("service")
        | {"content-type": "application/x-www-form-urlencoded", "prefer": "return=representation"},
    )
    assert (form.status_code, form.json()[0]["name"]) == (201, "d&e")


def test_prefer_timezone_sets_the_requests_zone(api: Api):
    response = api.get("tapi_items?select=created_at&id=eq.1", prefer="timezone=Africa/Kigali")
    assert response.json() == [{"created_at": "2026-01-01T02:00:00+02:00"}]
    assert response.headers["preference-applied"] == "timezone=Africa/Kigali"
    unknown = api.get("tapi_items?select=created_at&id=eq.1", prefer="timezone=Mars/Olympus")
    assert unknown.json() == [{"created_at": "2026-01-01T00:00:00+00:00"}]
    assert "preference-applied" not in unknown.headers


@pytest.mark.parametrize("body", [b"{not json", b'{"name": "\xff"}', b""])
def test_invalid_json_body(api: Api, body: bytes):
    response = api.http.post(
        "tapi_items",
        content=body,
        headers=api.headers("service") | {"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == error_body("PGRST102", "Empty or invalid json")


# Errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message", "details"),
    [
        (
            "tapi_items?id=xx.1",
            '"failed to parse filter (xx.1)" (line 1, column 1)',
            'unexpected "x" expecting "not" or operator (eq, gt, ...)',
        ),
        (
            "tapi_items?or=(id.in.1,2,id.eq.3)",
            '"failed to parse logic tree ((id.in.1,2,id.eq.3))" (line 1, column 10)',
            'unexpected "1" expecting "("',
        ),
        (
            "tapi_items?select=id,",
            '"failed to parse select parameter (id,)" (line 1, column 4)',
            None,
        ),
        ("tapi_items?order=id.ac", '"failed to parse order (id.ac)" (line 1, column 4)', None),
        ("tapi_items?id=is.maybe", '"failed to parse filter (is.maybe)" (line 1, column 4)', None),
        ("tapi_items?or=()", '"failed to parse logic tree (())" (line 1, column 4)', None),
        ("tapi_items?id=eq", '"failed to parse filter (eq)" (line 1, column 1)', None),
        ("tapi_items?id=in.1,2", '"failed to parse filter (in.1,2)" (line 1, column 4)', None),
        (
            "tapi_items?select=name::",
            '"failed to parse select parameter (name::)" (line 1, column 7)',
            None,
        ),
        ("tapi_items?id=eq.é", None, None),
    ],
)
def test_parse_errors_are_pgrst100(api: Api, path: str, message: str | None, details: str | None):
    response = api.get(path)
    if message is None:  # a value is any text: no parse error
        assert response.status_code == 400
        assert response.json()["code"] == "22P02"
        return
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["code"], body["message"]) == ("PGRST100", message)
    if details is not None:
        assert body["details"] == details


def test_message_quotes_text_as_postgrest_shows_it(api: Api):
    response = api.get('tapi_items?id=nope."é1')
    assert response.json()["message"] == (
        '"failed to parse filter (nope.\\"\\233\\&1)" (line 1, column 1)'
    )


def test_unknown_table_is_pgrst205(api: Api):
    response = api.get("tapi_itemz")
    assert response.status_code == 404
    assert response.headers["proxy-status"] == "PostgREST; error=PGRST205"
    assert response.json() == error_body(
        "PGRST205",
        "Could not find the table 'public.tapi_itemz' in the schema cache",
        hint="Perhaps you meant the table 'public.tapi_items'",
    )
    assert api.get("zzzz").json()["hint"] is None


def test_private_schema_tables_are_not_exposed(api: Api):
    response = api.get("outbox", accept_profile="private")
    assert response.status_code == 406
    assert response.json()["code"] == "PGRST106"


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE", "PUT"])
@pytest.mark.parametrize("path", ["nope/deeper", "tapi_items/1", "rpc/", "a/b/c"])
def test_unknown_paths_answer_json(api: Api, method: str, path: str):
    response = api.send(method, path)
    assert response.status_code == 404
    assert response.json() == error_body("PGRST125", "Invalid path specified in request URL")


def test_rpc_with_another_method_is_pgrst101(api: Api):
    response = api.send("PATCH", "rpc/anything", {})
    assert response.status_code == 405
    assert response.json() == error_body("PGRST101", "Cannot use the PATCH method on RPC")


def test_unsupported_method_on_a_table_is_pgrst117(api: Api):
    response = api.send("TRACE", "tapi_items")
    assert response.status_code == 405
    assert response.json() == error_body("PGRST117", "Unsupported HTTP method: TRACE")


def test_put_inserts_or_replaces_the_row_its_key_names(api: Api):
    created = api.send(
        "PUT", "tapi_items?id=eq.210", {"id": 210, "name": "new"}, prefer="return=representation"
    )
    assert created.status_code == 201, created.text
    assert created.json()[0]["name"] == "new"
    replaced = api.send(
        "PUT",
        "tapi_items?id=eq.210&select=id,name",
        {"id": 210, "name": "replaced"},
        prefer="return=representation",
    )
    assert (replaced.status_code, replaced.json()) == (200, [{"id": 210, "name": "replaced"}])
    minimal = api.send("PUT", "tapi_items?id=eq.210", {"id": 210, "name": "again"})
    assert (minimal.status_code, minimal.content) == (204, b"")
    assert item_names(api, 210, 210) == {210: "again"}


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("tapi_items?id=eq.211", {"id": 212, "name": "other"}, 400, "PGRST115"),
        ("tapi_items?name=eq.x", {"id": 211, "name": "x"}, 405, "PGRST105"),
        ("tapi_items?id=gt.211", {"id": 212, "name": "x"}, 405, "PGRST105"),
        ("tapi_items?id=eq.211&name=eq.x", {"id": 211, "name": "x"}, 405, "PGRST105"),
        ("tapi_items?id=eq.211&limit=1", {"id": 211, "name": "x"}, 400, "PGRST114"),
        ("tapi_keyless?label=eq.x", {"label": "x"}, 405, "PGRST105"),
    ],
)
def test_put_refusals(api: Api, path: str, body: dict[str, Any], status: int, code: str):
    response = api.send("PUT", path, body)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert item_names(api, 211, 212) == {}


def test_aggregates_spreads_and_related_orders_are_refused(api: Api):
    aggregate = api.get("tapi_items?select=count()")
    assert aggregate.json() == error_body("PGRST123", "Use of aggregate functions is not allowed")
    nested = api.get("tapi_owners?select=id,tapi_pets!owner_id(score.sum())")
    assert nested.json()["code"] == "PGRST123"
    spread = api.get("tapi_owners?select=id,...tapi_pets!owner_id(name)")
    assert spread.status_code == 400
    assert spread.json()["code"] == "PGRST127"
    filtered = api.get("tapi_items?clients.id=eq.1")
    assert filtered.json() == error_body(
        "PGRST108",
        "'clients' is not an embedded resource in this request",
        hint="Verify that 'clients' is included in the 'select' query parameter.",
    )


def test_metrics_count_tables_under_one_route(api: Api):
    for name in ("no_such_table_a", "no_such_table_b"):
        assert api.get(name).status_code == 404
    text = httpx.get(api.edge.url + "/metrics").text
    assert 'route="/rest/v1/{table}",status="404"' in text
    assert "no_such_table" not in text


def test_options_says_what_a_table_takes(api: Api):
    response = api.send("OPTIONS", "tapi_items")
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["allow"] == "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"
    assert api.send("OPTIONS", "tapi_itemz").json()["code"] == "PGRST205"


def test_logic_nested_past_the_limit_is_a_parse_error(api: Api):
    deep = "(" + "or(" * 100 + "id.eq.1" + ")" * 101
    response = api.get(f"tapi_items?or={deep}")
    assert response.status_code == 400
    assert response.json()["code"] == "PGRST100"
    assert response.json()["details"].endswith("expecting at most 64 nested logic trees")
    shallow = "(" + "or(" * 60 + "id.eq.1" + ")" * 61
    assert ids(api.get(f"tapi_items?select=id&or={shallow}")) == [1]


def test_profile_headers_name_the_schema(api: Api):
    read = api.get("tapi_items?select=id&id=eq.1", accept_profile="public")
    assert (read.status_code, read.headers["content-profile"]) == (200, "public")
    assert "content-profile" not in api.get("tapi_items?select=id&id=eq.1").headers
    write = api.send("DELETE", "tapi_items?id=eq.999", content_profile="nope")
    assert write.status_code == 406
    assert write.json() == error_body(
        "PGRST106", "Invalid schema: nope", hint="Only the following schemas are exposed: public"
    )


def test_a_bad_token_is_refused_before_any_query(api: Api):
    response = api.http.get("tapi_items", headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code == 401
    assert response.json()["code"] == "PGRST301"


def test_a_table_created_later_is_found_after_the_reload(api: Api):
    api.query(
        "create table public.tapi_later (id integer primary key);"
        "grant select on public.tapi_later to service_role;"
        "insert into public.tapi_later values (7);"
        "notify pgrst, 'reload schema'"
    )
    deadline = time.monotonic() + 10
    while (response := api.get("tapi_later")).status_code == 404:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)
    assert response.json() == [{"id": 7}]


def test_empty_bodies_insert_nothing_or_a_row_of_defaults(api: Api):
    nothing = api.send("POST", "tapi_keyless", [], prefer="return=representation")
    assert (nothing.status_code, nothing.json()) == (201, [])
    defaults = api.send("POST", "tapi_keyless", {}, prefer="return=representation,tx=rollback")
    assert (defaults.status_code, defaults.json()) == (201, [{"label": None, "amount": None}])
    unset = api.send("PATCH", "tapi_items?id=eq.1", {}, prefer="return=representation")
    assert (unset.status_code, unset.json()) == (200, [])

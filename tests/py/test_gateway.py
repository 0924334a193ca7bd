"""The RPC gateway (`/rest/v1/rpc/{fn}`) through the real supabase client, held to PostgREST's
dialect: result shapes, arguments, ranges, function resolution, roles and claims, RLS, schema
profiles, request validation and concurrency. Error mapping and JWT failures are in
test_gateway_errors.py. Fixture functions: gateway_functions.sql.

One database and one edge serve the whole module; tests that write use keys of their own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from postgrest import APIError

from tests.support.client import RecordingClient
from tests.support.gateway import (
    JSON,
    OBJECT_JSON,
    OTHER_OWNER,
    OWNER,
    Gateway,
    error_body,
    gateway_stack,
    sign,
    unique,
)
from tests.support.server import TestServer


@pytest.fixture(scope="module")
def gateway(server: TestServer) -> Iterator[Gateway]:
    with gateway_stack(server) as stack:
        yield stack


@pytest.fixture(scope="module")
def anon(gateway: Gateway) -> RecordingClient:
    return gateway.client()


@pytest.fixture(scope="module")
def service(gateway: Gateway) -> RecordingClient:
    return gateway.service_client()


def test_fixture_functions_pin_search_path_and_grant_explicitly(gateway: Gateway):
    rows = gateway.query(
        "select p.oid::regprocedure::text, p.proconfig, p.proacl::text[] "
        "from pg_catalog.pg_proc as p "
        "where p.pronamespace = 'public'::regnamespace and p.proname like 'gw\\_%%'"
    )
    assert len(rows) > 30
    for signature, config, acl in rows:
        assert config == ['search_path=""'], signature
        assert acl is not None, signature  # NULL would mean the default: EXECUTE for PUBLIC
        assert not any(entry.startswith("=") for entry in acl), (signature, acl)
        assert any(entry.startswith("service_role=X") for entry in acl), (signature, acl)


# Result shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "params", "expected"),
    [
        ("gw_add", {"a": 2, "b": 40}, 42),
        ("gw_hello", {"p_name": "kigali"}, "hello kigali"),
        ("gw_json", {}, {"x": 1, "list": [1, "two", None], "nested": {"ok": True}}),
        ("gw_null", {}, None),
    ],
    ids=["int", "text", "json", "null"],
)
def test_scalar_result_is_the_bare_json_value(
    anon: RecordingClient, function: str, params: dict[str, Any], expected: Any
):
    result = anon.rpc(function, params).execute()
    assert result.data == expected
    assert anon.last.status_code == 200
    assert anon.last.headers["content-type"] == JSON
    assert anon.last.headers["content-range"] == "0-0/*"


def test_parameters_with_defaults_may_be_omitted(anon: RecordingClient):
    assert anon.rpc("gw_hello").execute().data == "hello world"
    assert anon.rpc("gw_hello", get=True).execute().data == "hello world"


def test_a_percent_sign_in_a_name_is_part_of_the_name(anon: RecordingClient):
    assert anon.rpc("gw_100%_sure", {"p_%s": "%(body)s"}).execute().data == "sure: %(body)s"
    assert anon.rpc("gw_100%_sure").execute().data == "sure: yes"
    assert anon.rpc("gw_100%_sure", {"p_%s": "%s"}, get=True).execute().data == "sure: %s"


def test_set_of_scalars_is_an_array(anon: RecordingClient):
    assert anon.rpc("gw_series", {"n": 3}).execute().data == [1, 2, 3]
    assert anon.last.headers["content-range"] == "0-2/*"
    assert anon.rpc("gw_series", {"n": 0}).execute().data == []
    assert anon.last.headers["content-range"] == "*/*"


def test_table_function_is_an_array_of_objects(anon: RecordingClient):
    assert anon.rpc("gw_rows", {"n": 2}).execute().data == [
        {"id": 1, "label": "row 1"},
        {"id": 2, "label": "row 2"},
    ]
    assert anon.rpc("gw_rows", {"n": 0}).execute().data == []
    # One column is still a table: objects, not bare values.
    assert anon.rpc("gw_ids", {"n": 2}).execute().data == [{"id": 1}, {"id": 2}]


def test_single_composite_is_an_object(anon: RecordingClient):
    assert anon.rpc("gw_pair").execute().data == {"id": 7, "label": "seven"}
    assert anon.rpc("gw_point_of", {"p_x": 3, "p_y": -4}).execute().data == {"x": 3, "y": -4}
    assert anon.last.headers["content-range"] == "0-0/*"


def test_void_function_answers_204_without_a_body(gateway: Gateway, anon: RecordingClient):
    key = unique("void")
    result = anon.rpc("gw_touch", {"p_key": key}).execute()
    assert result.data == []
    response = anon.last
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert response.headers["content-range"] == "0-0/*"
    assert gateway.query("select count(*) from public.gw_unique_keys where key = %s", (key,)) == [
        (1,)
    ]


def test_get_takes_arguments_from_the_query_string(anon: RecordingClient):
    tags = ["plain", "with,comma", 'with "quotes"', "with space", "{braces}"]
    params = {"p_text": "a b&c=d", "p_int": 5, "p_flag": True, "p_tags": tags}
    result = anon.rpc("gw_echo", params, get=True).execute()
    request = anon.last.request
    assert request.method == "GET"
    assert request.content == b""
    assert request.url.params["p_int"] == "5"
    assert request.url.params["p_tags"].startswith("{")  # the client's Postgres array literal
    assert result.data == {
        "text": "a b&c=d",
        "int": 5,
        "flag": True,
        "tags": tags,
        "tag_count": len(tags),
    }
    assert anon.rpc("gw_sum", {"p_values": [1, 2, 39]}, get=True).execute().data == 42


def test_get_and_post_agree(anon: RecordingClient):
    params = {"p_text": "x", "p_int": 1, "p_flag": False, "p_tags": ["a", "b"]}
    posted = anon.rpc("gw_echo", params).execute().data
    assert anon.rpc("gw_echo", params, get=True).execute().data == posted


def test_head_sends_the_headers_of_a_get_without_a_body(anon: RecordingClient):
    result = anon.rpc("gw_rows", {"n": 3}, head=True, count="exact").execute()
    response = anon.last
    assert response.request.method == "HEAD"
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-range"] == "0-2/3"
    assert result.data == []
    assert result.count == 3


def test_count_exact_fills_count_and_content_range(gateway: Gateway, anon: RecordingClient):
    result = anon.rpc("gw_rows", {"n": 4}, count="exact").execute()
    assert result.count == 4
    assert len(result.data) == 4
    assert anon.last.request.headers["prefer"] == "count=exact"
    assert anon.last.headers["content-range"] == "0-3/4"

    raw = gateway.http.post(
        "gw_series", json={"n": 5}, headers={"apikey": gateway.edge.anon_key}
    )  # no Prefer: no count
    assert raw.headers["content-range"] == "0-4/*"
    raw = gateway.http.post(
        "gw_series",
        json={"n": 5},
        headers={"apikey": gateway.edge.anon_key, "Prefer": "count=exact"},
    )
    assert (raw.status_code, raw.headers["content-range"]) == (200, "0-4/5")
    raw = gateway.http.post(
        "gw_series",
        json={"n": 0},
        headers={"apikey": gateway.edge.anon_key, "Prefer": "count=exact"},
    )
    assert (raw.status_code, raw.headers["content-range"], raw.json()) == (200, "*/0", [])
    raw = gateway.http.post(
        "gw_add",
        json={"a": 1, "b": 1},
        headers={"apikey": gateway.edge.anon_key, "Prefer": "count=exact"},
    )
    assert (raw.status_code, raw.headers["content-range"]) == (200, "0-0/1")


def test_count_preference_is_acknowledged(anon: RecordingClient):
    """PostgREST (Response.hs, DbCallResult) echoes the count preference it honoured."""
    anon.rpc("gw_rows", {"n": 2}, count="exact").execute()
    assert anon.last.headers.get("preference-applied") == "count=exact", (
        "app/gateway/route.py RpcGateway._handle: no Preference-Applied header"
    )


def test_limit_and_offset_page_a_set(anon: RecordingClient):
    result = anon.rpc("gw_rows", {"n": 5}).limit(2).offset(1).execute()
    assert [row["id"] for row in result.data] == [2, 3]
    assert anon.last.status_code == 200
    assert anon.last.headers["content-range"] == "1-2/*"

    result = anon.rpc("gw_series", {"n": 10}, get=True).range(3, 5).execute()
    assert result.data == [4, 5, 6]
    assert anon.last.headers["content-range"] == "3-5/*"

    result = anon.rpc("gw_rows", {"n": 5}, count="exact").limit(2).offset(1).execute()
    assert (result.count, anon.last.status_code) == (5, 206)
    assert anon.last.headers["content-range"] == "1-2/5"

    assert anon.rpc("gw_series", {"n": 3}).limit(0).execute().data == []


def test_partial_page_reaching_the_end_is_206(anon: RecordingClient):
    """PostgREST (RangeQuery.rangeStatus): 206 whenever the rows returned are fewer than the
    total, whatever the offset. 3 rows of 5 from offset 2 is partial content."""
    result = anon.rpc("gw_rows", {"n": 5}, count="exact").offset(2).execute()
    assert [row["id"] for row in result.data] == [3, 4, 5]
    assert anon.last.headers["content-range"] == "2-4/5"
    assert anon.last.status_code == 206, (
        "app/gateway/route.py CallResult.partial: uses offset + rows < total instead of "
        "PostgREST's rows < total, so a last page is reported as 200"
    )


def test_offset_beyond_the_total_is_416(anon: RecordingClient):
    """PostgREST (RangeQuery.rangeStatus): with a known total, an offset past it is 416
    PGRST103 'An offset of 7 was requested, but there are only 5 rows.'"""
    builder = anon.rpc("gw_rows", {"n": 5}, count="exact").offset(7)
    try:
        builder.execute()
    except APIError as error:
        body: dict[str, Any] | None = error.json()
    else:
        body = None
    status = anon.last.status_code
    assert (status, body) == (
        416,
        error_body(
            "PGRST103",
            "Requested range not satisfiable",
            "An offset of 7 was requested, but there are only 5 rows.",
        ),
    ), "app/gateway/route.py: no 416 for an offset past a known total (got 200, '*/5')"


# Accept: application/vnd.pgrst.object+json --------------------------------------------------


def test_object_accept_returns_the_single_row(anon: RecordingClient):
    result = anon.rpc("gw_rows", {"n": 1}).single().execute()
    assert result.data == {"id": 1, "label": "row 1"}
    assert anon.last.request.headers["accept"] == "application/vnd.pgrst.object+json"
    assert anon.last.headers["content-type"] == OBJECT_JSON
    assert anon.rpc("gw_add", {"a": 1, "b": 2}).single().execute().data == 3
    assert anon.rpc("gw_pair").single().execute().data == {"id": 7, "label": "seven"}


@pytest.mark.parametrize("rows", [0, 2])
def test_object_accept_refuses_zero_or_many_rows(anon: RecordingClient, rows: int):
    status, body = anon.error(anon.rpc("gw_rows", {"n": rows}).single())
    assert status == 406
    assert body == error_body(
        "PGRST116",
        "Cannot coerce the result to a single JSON object",
        f"The result contains {rows} rows",
    )
    assert anon.last.headers["content-type"] == JSON  # errors are always plain JSON


def test_unsupported_accept_is_406(gateway: Gateway):
    response = gateway.http.post("gw_add", json={"a": 1, "b": 2}, headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert response.json() == error_body(
        "PGRST107", "None of these media types are available: image/png"
    )


# Function resolution ------------------------------------------------------------------------


def test_overloaded_functions_are_ambiguous(anon: RecordingClient):
    status, body = anon.error(anon.rpc("gw_overloaded", {"p_value": "1"}))
    assert status == 300
    assert body["code"] == "PGRST203"
    prefix = "Could not choose the best candidate function between: "
    assert body["message"].startswith(prefix)
    assert sorted(body["message"].removeprefix(prefix).split(", ")) == [
        "public.gw_overloaded(p_value => integer)",
        "public.gw_overloaded(p_value => text)",
    ]
    assert body["details"] is None
    assert body["hint"] == (
        "Try renaming the parameters or the function itself in the database so function "
        "overloading can be resolved"
    )


def test_unknown_function_is_404_with_postgrest_texts(anon: RecordingClient):
    status, body = anon.error(anon.rpc("gw_no_such_function", {"p_b": 1, "p_a": 2}))
    assert status == 404
    assert body == error_body(
        "PGRST202",
        "Could not find the function public.gw_no_such_function(p_a, p_b) in the schema cache",
        "Searched for the function public.gw_no_such_function with parameters p_a, p_b or with "
        "a single unnamed json/jsonb parameter, but no matches were found in the schema cache.",
    )

    status, body = anon.error(anon.rpc("gw_no_such_function", {"p_a": 1}))
    assert (status, body["details"]) == (
        404,
        "Searched for the function public.gw_no_such_function with parameter p_a or with a "
        "single unnamed json/jsonb parameter, but no matches were found in the schema cache.",
    )

    status, body = anon.error(anon.rpc("gw_no_such_function"))
    assert (status, body["message"]) == (
        404,
        "Could not find the function public.gw_no_such_function without parameters in the "
        "schema cache",
    )


def test_known_function_with_unknown_arguments_hints_at_its_parameters(anon: RecordingClient):
    status, body = anon.error(anon.rpc("gw_add", {"a": 1, "c": 2}))
    assert status == 404
    assert body == error_body(
        "PGRST202",
        "Could not find the function public.gw_add(a, c) in the schema cache",
        "Searched for the function public.gw_add with parameters a, c or with a single unnamed "
        "json/jsonb parameter, but no matches were found in the schema cache.",
        "Perhaps you meant to call the function public.gw_add(a, b)",
    )


def test_unknown_function_called_by_get_searches_no_json_parameter(anon: RecordingClient):
    """PostgREST (Error.hs NoRpc details) adds 'or with a single unnamed json/jsonb parameter'
    only to a POST with a JSON body: a GET cannot pass a body to such a function."""
    status, body = anon.error(anon.rpc("gw_no_such_function", {"p_a": 1}, get=True))
    assert status == 404
    assert body["details"] == (
        "Searched for the function public.gw_no_such_function with parameter p_a, but no "
        "matches were found in the schema cache."
    ), "app/gateway/catalog.py Catalog._not_found: the json/jsonb clause is added for GET too"


def test_single_unnamed_jsonb_parameter_receives_the_whole_body(anon: RecordingClient):
    body = {"ride": {"id": 12, "stops": ["a", "b"]}, "amount": 1500.5, "note": None}
    assert anon.rpc("gw_whole_body", body).execute().data == {"received": body}
    assert anon.rpc("gw_whole_body").execute().data == {"received": {}}


# Roles, claims and request settings ---------------------------------------------------------


def context(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_no_token_runs_as_anon(gateway: Gateway):
    seen = context(gateway.http.post("gw_context", json={}))
    assert seen["current_user"] == "anon"
    assert seen["auth_role"] == "anon"
    assert seen["auth_uid"] is None
    assert seen["claims"] == {"role": "anon"}


def test_anon_key_runs_as_anon_with_its_claims(gateway: Gateway, anon: RecordingClient):
    seen = anon.rpc("gw_context").execute().data
    assert seen["current_user"] == "anon"
    assert seen["auth_role"] == "anon"
    assert seen["auth_uid"] is None
    assert seen["claims"]["role"] == "anon"
    assert seen["claims"]["iss"] == "supabase"


def test_user_token_runs_as_authenticated_with_its_claims(gateway: Gateway):
    client = gateway.user_client(OWNER, email="rider@example.com", app_metadata={"tier": "gold"})
    seen = client.rpc("gw_context").execute().data
    assert seen["current_user"] == "authenticated"
    assert seen["auth_role"] == "authenticated"
    assert seen["auth_uid"] == OWNER
    claims = seen["claims"]
    assert claims["sub"] == OWNER
    assert claims["role"] == "authenticated"
    assert claims["email"] == "rider@example.com"
    assert claims["app_metadata"] == {"tier": "gold"}


def test_service_role_key_runs_as_service_role(service: RecordingClient):
    seen = service.rpc("gw_context").execute().data
    assert (seen["current_user"], seen["auth_role"], seen["auth_uid"]) == (
        "service_role",
        "service_role",
        None,
    )


def test_token_without_role_claim_runs_as_anon(gateway: Gateway):
    token = sign({"sub": OWNER, "exp": int(time.time()) + 60})
    seen = context(gateway.http.post("gw_context", json={}, headers=gateway.bearer(token)))
    assert seen["current_user"] == "anon"
    assert seen["claims"]["role"] == "anon"
    assert seen["auth_uid"] == OWNER


def test_apikey_header_alone_is_the_token(gateway: Gateway):
    headers = {"apikey": gateway.edge.service_role_key}
    seen = context(gateway.http.post("gw_context", json={}, headers=headers))
    assert seen["current_user"] == "service_role"


def test_authorization_wins_over_apikey(gateway: Gateway):
    headers = {
        "apikey": gateway.edge.service_role_key,
        **gateway.bearer(gateway.edge.user_token(OWNER)),
    }
    seen = context(gateway.http.post("gw_context", json={}, headers=headers))
    assert (seen["current_user"], seen["auth_uid"]) == ("authenticated", OWNER)


def test_non_bearer_authorization_is_anonymous(gateway: Gateway):
    headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    seen = context(gateway.http.post("gw_context", json={}, headers=headers))
    assert seen["current_user"] == "anon"


def test_request_settings_are_published_as_postgrest_does(gateway: Gateway):
    headers = {
        **gateway.bearer(gateway.edge.user_token(OWNER)),
        "X-Correlation-Id": "corr-1",
        "X-Mixed-CASE": "Kept As Sent",
        "Cookie": "session=abc; theme=dark",
    }
    seen = context(gateway.http.post("gw_context", json={}, headers=headers))
    assert seen["method"] == "POST"
    assert seen["path"] == "/rpc/gw_context"
    published = seen["headers"]
    assert all(name == name.lower() for name in published)
    assert published["x-mixed-case"] == "Kept As Sent"
    assert published["x-correlation-id"] == "corr-1"
    assert published["authorization"] == headers["Authorization"]
    assert "cookie" not in published
    assert seen["cookies"] == {"session": "abc", "theme": "dark"}

    seen = context(gateway.http.get("gw_context", headers=headers))
    assert (seen["method"], seen["path"]) == ("GET", "/rpc/gw_context")


def test_read_only_transaction_for_get_and_for_stable_functions(gateway: Gateway):
    assert context(gateway.http.get("gw_context"))["read_only"] == "on"
    assert context(gateway.http.post("gw_context", json={}))["read_only"] == "on"  # STABLE


def test_settings_do_not_leak_between_requests(gateway: Gateway):
    """Transaction-local settings: a pooled connection forgets the last caller."""
    token = gateway.edge.user_token(OWNER)
    for _ in range(3):
        as_user = gateway.http.post("gw_context", json={}, headers=gateway.bearer(token))
        assert context(as_user)["auth_uid"] == OWNER
        seen = context(gateway.http.post("gw_context", json={}))
        assert (seen["current_user"], seen["auth_uid"], seen["claims"]) == (
            "anon",
            None,
            {"role": "anon"},
        )


# RLS ----------------------------------------------------------------------------------------


def test_rls_owner_sees_only_own_rows(gateway: Gateway):
    client = gateway.user_client(OWNER)
    assert client.rpc("gw_my_notes").execute().data == [
        {"id": 1, "owner_id": OWNER, "body": "first owner's note"}
    ]


def test_rls_stranger_sees_nothing(gateway: Gateway):
    client = gateway.user_client(str(uuid.uuid4()))
    assert client.rpc("gw_my_notes").execute().data == []


def test_rls_anon_is_refused(anon: RecordingClient):
    """anon has EXECUTE on the function but no SELECT on the table: Postgres refuses, 401."""
    status, body = anon.error(anon.rpc("gw_my_notes"))
    assert status == 401
    assert body == error_body("42501", "permission denied for table gw_notes")
    assert anon.last.headers["www-authenticate"] == "Bearer"


def test_rls_service_role_bypasses_policies(service: RecordingClient):
    rows = service.rpc("gw_my_notes").execute().data
    assert [(row["id"], row["owner_id"]) for row in rows] == [(1, OWNER), (2, OTHER_OWNER)]


# Schema profiles ----------------------------------------------------------------------------


def test_response_names_the_profile_the_client_sent(anon: RecordingClient):
    anon.rpc("gw_add", {"a": 1, "b": 1}).execute()
    assert anon.last.request.headers["content-profile"] == "public"
    assert anon.last.headers["content-profile"] == "public"


@pytest.mark.parametrize("get", [False, True], ids=["content-profile", "accept-profile"])
def test_unexposed_schema_is_406(anon: RecordingClient, get: bool):
    builder = anon.supabase.schema("private").rpc("gw_add", {"a": 1, "b": 2}, get=get)
    status, body = anon.error(builder)
    assert status == 406
    assert body == error_body(
        "PGRST106",
        "Invalid schema: private",
        hint="Only the following schemas are exposed: public",
    )


def test_profile_header_is_read_per_method(gateway: Gateway):
    """POST reads Content-Profile, GET reads Accept-Profile: the other one is ignored."""
    post = gateway.http.post("gw_add", json={"a": 1, "b": 2}, headers={"Accept-Profile": "private"})
    assert (post.status_code, post.json()) == (200, 3)
    get = gateway.http.get("gw_add", params={"a": 1, "b": 2}, headers={"Content-Profile": "x"})
    assert (get.status_code, get.json()) == (200, 3)
    get = gateway.http.get("gw_add", params={"a": 1, "b": 2}, headers={"Accept-Profile": "x"})
    assert (get.status_code, get.json()["code"]) == (406, "PGRST106")


# Request validation -------------------------------------------------------------------------


def test_body_larger_than_the_limit_is_413(gateway: Gateway):
    limit = gateway.edge.settings.rpc_max_body_bytes
    padding = "x" * limit
    response = gateway.http.post(
        "gw_whole_body",
        content=f'{{"padding": "{padding}"}}'.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == error_body("PGRST413", f"Request body larger than {limit} bytes")
    just_under = "x" * (limit - 100)
    response = gateway.http.post("gw_whole_body", json={"padding": just_under})
    assert response.status_code == 200
    assert len(response.json()["received"]["padding"]) == limit - 100


@pytest.mark.parametrize("body", [b'{"a": 1,', b"{'a': 1}", b"\xff\xfe"])
def test_invalid_json_is_400(gateway: Gateway, body: bytes):
    response = gateway.http.post(
        "gw_add", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == error_body("PGRST102", "Empty or invalid json")


def test_empty_body_means_no_arguments(gateway: Gateway):
    response = gateway.http.post("gw_hello", content=b"")
    assert (response.status_code, response.json()) == (200, "hello world")


@pytest.mark.parametrize("get", [False, True], ids=["post", "get"])
def test_filters_on_rpc_results_are_refused(anon: RecordingClient, get: bool):
    status, body = anon.error(anon.rpc("gw_rows", {"n": 3}, get=get).eq("id", 1))
    assert status == 400
    assert body["code"] == "PGRST100"
    assert "id" in body["message"]


def test_negative_limit_is_416(gateway: Gateway):
    response = gateway.http.post("gw_series", json={"n": 3}, params={"limit": -1})
    assert response.status_code == 416
    assert response.json() == error_body(
        "PGRST103",
        "Requested range not satisfiable",
        "Limit should be greater than or equal to zero.",
    )


# Concurrency --------------------------------------------------------------------------------


def test_concurrent_calls_lose_no_update(gateway: Gateway):
    """50 calls at once through a pool of 4: each its own transaction, none lost or failed."""
    key = unique("counter")
    calls = 50

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=str(gateway.http.base_url), headers=gateway.service_headers, timeout=30
        ) as http:
            return await asyncio.gather(
                *(http.post("gw_increment", json={"p_key": key}) for _ in range(calls))
            )

    responses = asyncio.run(fire())
    statuses = [response.status_code for response in responses]
    ok = statuses.count(200)
    assert ok == calls, statuses
    assert sorted(response.json() for response in responses) == list(range(1, calls + 1))
    assert gateway.query("select value from public.gw_counters where key = %s", (key,)) == [(ok,)]


def test_concurrent_callers_each_see_their_own_identity(gateway: Gateway):
    users = [str(uuid.uuid4()) for _ in range(16)]
    tokens = [gateway.edge.user_token(user) for user in users]

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(gateway.http.base_url), timeout=30) as http:
            requests = []
            for token in tokens:
                requests.append(http.post("gw_context", json={}, headers=gateway.bearer(token)))
                requests.append(http.get("gw_context"))  # anonymous, in between
                requests.append(http.post("gw_context", json={}, headers=gateway.service_headers))
            return await asyncio.gather(*requests)

    responses = asyncio.run(fire())
    seen = [context(response) for response in responses]
    for index, user in enumerate(users):
        as_user, as_anon, as_service = seen[3 * index : 3 * index + 3]
        assert (as_user["current_user"], as_user["auth_uid"]) == ("authenticated", user)
        assert (as_anon["current_user"], as_anon["claims"]) == ("anon", {"role": "anon"})
        assert as_service["current_user"] == "service_role"

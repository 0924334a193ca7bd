"""The RPC gateway's failures, as the supabase client sees them: each SQLSTATE mapped to
PostgREST's HTTP status with the JSON body {code, message, details, hint}, `RAISE SQLSTATE
'PGRST'`, read-only transactions, EXECUTE privileges, role timeouts, and every JWT failure
(401, and the function never ran). Fixture functions: gateway_functions.sql."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app import keys
from tests.support.client import RecordingClient
from tests.support.gateway import OWNER, Gateway, error_body, gateway_stack, sign, unique
from tests.support.server import JWT_SECRET, TestServer


@pytest.fixture(scope="module")
def gateway(server: TestServer) -> Iterator[Gateway]:
    with gateway_stack(server, "gateway_errors") as stack:
        yield stack


@pytest.fixture(scope="module")
def anon(gateway: Gateway) -> RecordingClient:
    return gateway.client()


@pytest.fixture(scope="module")
def user(gateway: Gateway) -> RecordingClient:
    return gateway.user_client(OWNER)


@pytest.fixture(scope="module")
def service(gateway: Gateway) -> RecordingClient:
    return gateway.service_client()


def logged(gateway: Gateway, tag: str) -> int:
    """How many rows calls with this tag left in gw_call_log (read as superuser)."""
    ((count,),) = gateway.query("select count(*) from public.gw_call_log where tag = %s", (tag,))
    return int(count)


# SQLSTATE -> HTTP status ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "status", "body"),
    [
        (
            "gw_raise_exception",
            400,
            error_body(
                "P0001",
                "the ride was already paid",
                "ride 42 has payment 7",
                "look up payment 7 instead",
            ),
        ),
        ("gw_invalid_value", 400, error_body("22023", "amount must be positive", "amount: -5")),
        # PostgREST's Error.hs: "P0001" -> 400, then 'P':'0':_ -> 500. P0002 is a 500 there.
        ("gw_not_found", 500, error_body("P0002", "transaction not found", hint="check the id")),
        ("gw_payment_required", 402, error_body("PT402", "wallet balance too low", "balance: 3")),
        ("gw_connection_failure", 503, error_body("08006", "upstream connection lost")),
        (
            "gw_insert_orphan",
            409,
            error_body(
                "23503",
                'insert or update on table "gw_children" violates foreign key constraint '
                '"gw_children_parent_id_fkey"',
                'Key (parent_id)=(999) is not present in table "gw_parents".',
            ),
        ),
    ],
    ids=["P0001", "22023", "P0002", "PT402", "08006", "23503"],
)
def test_sqlstate_maps_to_postgrest_status(
    anon: RecordingClient, function: str, status: int, body: dict[str, Any]
):
    assert anon.error(anon.rpc(function)) == (status, body)
    assert anon.last.headers["content-type"] == "application/json; charset=utf-8"
    assert "www-authenticate" not in anon.last.headers


def test_error_of_a_head_request_names_its_code_in_proxy_status(anon: RecordingClient):
    """A HEAD response has no body, so PostgREST (v13+, Error.hs errorResponseFor) names the
    error in `Proxy-Status: PostgREST; error=<code>` on every error, and the client reads the
    code from there when the body is empty."""
    status, body = anon.error(anon.rpc("gw_raise_exception", head=True))
    assert status == 400
    assert anon.last.content == b""
    assert anon.last.headers.get("proxy-status") == "PostgREST; error=P0001", (
        "app/gateway/endpoint.py error_response / errors.py: no Proxy-Status header on errors"
    )
    assert body["code"] == "P0001"


def test_unique_violation_is_409(anon: RecordingClient):
    key = unique("dup")
    assert anon.rpc("gw_insert_unique", {"p_key": key}).execute().data == key
    assert anon.error(anon.rpc("gw_insert_unique", {"p_key": key})) == (
        409,
        error_body(
            "23505",
            'duplicate key value violates unique constraint "gw_unique_keys_pkey"',
            f"Key (key)=({key}) already exists.",
        ),
    )


def test_cardinality_violation_is_500(anon: RecordingClient):
    """PostgREST's Error.hs: 21000 is 400 only for pg-safeupdate's '... requires a WHERE
    clause'; any other 21000 (a subquery returning two rows) is a server error, 500."""
    status, body = anon.error(anon.rpc("gw_cardinality"))
    assert body == error_body(
        "21000", "more than one row returned by a subquery used as an expression"
    )
    assert status == 500, (
        "app/gateway/errors.py _STATUS_BY_SQLSTATE: no 21000 rule, so it falls to the default 400"
    )


def test_a_failed_call_changes_nothing(gateway: Gateway, anon: RecordingClient):
    tag = unique("rollback")
    status, body = anon.error(anon.rpc("gw_write_then_fail", {"p_tag": tag}))
    assert (status, body["code"]) == (400, "22023")
    assert logged(gateway, tag) == 0


def test_refused_single_object_rolls_back_the_call(gateway: Gateway, anon: RecordingClient):
    tag = unique("single")
    status, body = anon.error(anon.rpc("gw_write_rows", {"p_tag": tag}).single())
    assert (status, body["code"], body["details"]) == (
        406,
        "PGRST116",
        "The result contains 2 rows",
    )
    assert logged(gateway, tag) == 0
    assert anon.rpc("gw_write_rows", {"p_tag": tag}).execute().data == [tag, tag]
    assert logged(gateway, tag) == 2


def test_a_range_past_the_count_rolls_back_the_call(gateway: Gateway, anon: RecordingClient):
    tag = unique("range")
    status, body = anon.error(
        anon.rpc("gw_write_rows", {"p_tag": tag}, count="exact").limit(2).offset(5)
    )
    assert (status, body["code"]) == (416, "PGRST103")
    assert logged(gateway, tag) == 0


# RAISE SQLSTATE 'PGRST' ---------------------------------------------------------------------


def test_raise_pgrst_controls_status_headers_and_body(anon: RecordingClient):
    status, body = anon.error(anon.rpc("gw_full_control"))
    assert status == 418
    assert body == error_body("GW418", "short and stout", "teapot", "brew coffee elsewhere")
    assert anon.last.headers["x-powered-by"] == "Teapot"
    assert anon.last.headers["retry-after"] == "7"


def test_raise_pgrst_with_unparseable_message_is_pgrst121(anon: RecordingClient):
    assert anon.error(anon.rpc("gw_bad_full_control")) == (
        500,
        error_body(
            "PGRST121",
            "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
            "Invalid JSON value for MESSAGE: 'not json'",
            "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional "
            "keys: 'details', 'hint'.",
        ),
    )


# Read-only transactions ---------------------------------------------------------------------

READ_ONLY = error_body("25006", "cannot execute INSERT in a read-only transaction")


def test_writing_function_called_by_get_is_405(gateway: Gateway, anon: RecordingClient):
    tag = unique("get")
    assert anon.error(anon.rpc("gw_write", {"p_tag": tag}, get=True)) == (405, READ_ONLY)
    assert logged(gateway, tag) == 0
    assert anon.rpc("gw_write", {"p_tag": tag}).execute().data == tag  # POST may write
    assert logged(gateway, tag) == 1


def test_stable_function_that_writes_is_405_even_by_post(gateway: Gateway, anon: RecordingClient):
    tag = unique("stable")
    assert anon.error(anon.rpc("gw_stable_write", {"p_tag": tag})) == (405, READ_ONLY)
    assert logged(gateway, tag) == 0


# EXECUTE privileges and role settings -------------------------------------------------------

SERVICE_ONLY = error_body("42501", "permission denied for function gw_service_only")


def test_function_anon_may_not_execute_is_401_with_challenge(anon: RecordingClient):
    assert anon.error(anon.rpc("gw_service_only")) == (401, SERVICE_ONLY)
    assert anon.last.headers["www-authenticate"] == "Bearer"


def test_function_authenticated_may_not_execute_is_403(user: RecordingClient):
    assert user.error(user.rpc("gw_service_only")) == (403, SERVICE_ONLY)
    assert "www-authenticate" not in user.last.headers


def test_service_role_may_execute_what_it_was_granted(service: RecordingClient):
    assert service.rpc("gw_service_only").execute().data == "secret"


def test_role_statement_timeouts_apply_per_request(
    anon: RecordingClient, user: RecordingClient, gateway: Gateway
):
    """ALTER ROLE ... SET statement_timeout only applies at login; the gateway re-applies the
    switched-to role's settings in every transaction, as PostgREST does."""
    assert anon.rpc("gw_context").execute().data["statement_timeout"] == "3s"
    assert user.rpc("gw_context").execute().data["statement_timeout"] == "8s"
    anonymous = gateway.http.get("gw_context")  # no token at all: anon too
    assert anonymous.json()["statement_timeout"] == "3s"
    assert anon.rpc("gw_context").execute().data["statement_timeout"] == "3s"  # not leaked


# JWT failures -------------------------------------------------------------------------------


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": OWNER, "role": "authenticated", "iat": now, "exp": now + 3600} | overrides


def in_seconds(seconds: int) -> int:
    return int(time.time()) + seconds


# Tokens are minted when the test runs (times are relative to now), never at collection.
BAD_TOKENS: dict[str, tuple[Callable[[], str], str, str]] = {
    "bad-signature": (
        lambda: sign(claims(), "a-different-secret-that-is-long-enough-0123456789"),
        "PGRST301",
        "JWT cryptographic operation failed",
    ),
    "expired": (
        lambda: keys.user_token(JWT_SECRET, OWNER, lifetime_seconds=-120),
        "PGRST303",
        "JWT expired",
    ),
    "role-postgres": (
        lambda: sign(claims(role="postgres")),
        "PGRST303",
        "The JWT 'role' claim must be one of anon, authenticated, service_role",
    ),
    "role-admin": (
        lambda: sign(claims(role="admin")),
        "PGRST303",
        "The JWT 'role' claim must be one of anon, authenticated, service_role",
    ),
    "one-part": (lambda: "not-a-jwt", "PGRST301", "Expected 3 parts in JWT; got 1"),
    "two-parts": (lambda: "abc.def", "PGRST301", "Expected 3 parts in JWT; got 2"),
    "undecodable": (lambda: "abc.def.ghi", "PGRST301", "JWT couldn't be decoded"),
    "alg-none": (
        lambda: sign(claims(), "", "none"),
        "PGRST301",
        "Wrong or unsupported encoding algorithm",
    ),
    "not-yet-valid": (
        lambda: sign(claims(nbf=in_seconds(600))),
        "PGRST303",
        "JWT not yet valid",
    ),
    "issued-in-future": (
        lambda: sign(claims(iat=in_seconds(600))),
        "PGRST303",
        "JWT issued at future",
    ),
    "exp-not-a-number": (
        lambda: sign(claims(exp="tomorrow")),
        "PGRST303",
        "The JWT 'exp' claim must be a number",
    ),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_invalid_jwt_is_401_and_the_function_never_runs(gateway: Gateway, case: str):
    mint, code, message = BAD_TOKENS[case]
    tag = unique("jwt")
    client = gateway.client(mint())  # sends the token as apikey and as Authorization: Bearer
    status, body = client.error(client.rpc("gw_log_call", {"p_tag": tag}))
    assert (status, body) == (401, error_body(code, message))
    assert client.last.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{message}"'
    )
    assert logged(gateway, tag) == 0


def test_empty_bearer_is_401_and_the_function_never_runs(gateway: Gateway):
    tag = unique("empty")
    # "Bearer " on the wire reaches the server as "Bearer": trailing whitespace is not part of a
    # header value (RFC 9110), and httpx refuses to send it.
    for authorization in ("Bearer", "bearer"):
        response = gateway.http.post(
            "gw_log_call",
            json={"p_tag": tag},
            headers={"Authorization": authorization, "apikey": gateway.edge.anon_key},
        )
        assert response.status_code == 401
        assert response.json() == error_body(
            "PGRST301", "Empty JWT is sent in Authorization header"
        )
        assert response.headers["www-authenticate"] == (
            'Bearer error="invalid_token", '
            'error_description="Empty JWT is sent in Authorization header"'
        )
    assert logged(gateway, tag) == 0


def test_invalid_authorization_is_not_rescued_by_a_valid_apikey(gateway: Gateway):
    tag = unique("both")
    response = gateway.http.post(
        "gw_log_call",
        json={"p_tag": tag},
        headers={"Authorization": "Bearer abc.def", "apikey": gateway.edge.service_role_key},
    )
    assert (response.status_code, response.json()["code"]) == (401, "PGRST301")
    assert logged(gateway, tag) == 0


GOOD_TOKENS: dict[str, tuple[Callable[[], str | None], str]] = {
    "no-token": (lambda: None, "anon"),
    "anon-key": (lambda: keys.api_key(JWT_SECRET, "anon"), "anon"),
    "user": (lambda: keys.user_token(JWT_SECRET, OWNER), "authenticated"),
    "expired-within-30s-leeway": (
        lambda: keys.user_token(JWT_SECRET, OWNER, lifetime_seconds=-10),
        "authenticated",
    ),
    "service": (lambda: keys.api_key(JWT_SECRET, "service_role"), "service_role"),
}


@pytest.mark.parametrize("case", list(GOOD_TOKENS))
def test_valid_callers_run_the_function(gateway: Gateway, case: str):
    """The control for the 401 cases above: the same call with a good token runs and logs."""
    mint, role = GOOD_TOKENS[case]
    token = mint()
    tag = unique("ok")
    headers = gateway.bearer(token) if token else {}
    response = gateway.http.post("gw_log_call", json={"p_tag": tag}, headers=headers)
    assert (response.status_code, response.json()) == (200, role)
    assert logged(gateway, tag) == 1
    assert gateway.query("select role_name from public.gw_call_log where tag = %s", (tag,)) == [
        (role,)
    ]

"""GET /rest/v1/: the OpenAPI description, as PostgREST serves it at its root. What it lists
follows the caller's privileges; arguments, columns, types, required flags and descriptions come
from the catalog and `comment on`, read live, so a function created by hand shows up at once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis

from tests.support.db import query
from tests.support.edge import Edge

# Shapes the schema's own objects do not all have: every argument kind, every column kind.
PROBE_SQL = """
create type public.openapi_mood as enum ('calm', 'busy');
create domain public.openapi_small as smallint check (value between 1 and 10);
create domain public.openapi_code as text
check (char_length(value) between 2 and 12 and value ~ '^[a-z]+$');
create domain public.openapi_object as jsonb check (jsonb_typeof(value) = 'object');
create function public.openapi_probe(
    p_count integer,
    p_id uuid,
    p_at timestamp with time zone,
    p_payload jsonb,
    p_tags text[],
    p_mood public.openapi_mood,
    p_small public.openapi_small default 1,
    p_note text default 'x'
)
returns integer
language sql
stable
as $$ select p_count $$;
comment on function public.openapi_probe is $$Counts what it is given.

Used by test_openapi.py only.$$;
create function public.openapi_volatile(p_count bigint) returns bigint
language sql volatile as $$ select p_count $$;
create function public.openapi_hidden() returns integer language sql as $$ select 1 $$;
revoke execute on function public.openapi_hidden from public, anon, authenticated, service_role;
create table public.openapi_things (
    id bigint generated always as identity primary key,
    code varchar(12) not null,
    slug public.openapi_code,
    extra public.openapi_object,
    mood public.openapi_mood not null default 'calm',
    label text not null default 'it''s',
    weight numeric not null,
    doubled numeric generated always as (weight * 2) stored,
    seen_at timestamptz not null default now(),
    note text
);
comment on table public.openapi_things is 'Things the OpenAPI test describes.';
comment on column public.openapi_things.code is 'A short code.';
create view public.openapi_thing_codes as select id, code from public.openapi_things;
grant select, insert, update, delete on public.openapi_things to service_role;
grant select on public.openapi_thing_codes to service_role, authenticated;
"""


def describe(edge: Edge, token: str | None = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(f"{edge.url}/rest/v1/", headers=headers, timeout=30)


def exposed_functions(database_url: str, role: str) -> set[str]:
    rows = query(
        database_url,
        "select p.proname from pg_proc as p where p.pronamespace = 'public'::regnamespace"
        " and p.prokind = 'f' and has_function_privilege(%s, p.oid, 'execute')",
        (role,),
    )
    return {name for (name,) in rows}


def test_the_root_describes_every_function_the_role_may_call(edge: Edge, database_url: str) -> None:
    response = describe(edge, edge.service_role_key)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/openapi+json; charset=utf-8"
    document = response.json()
    assert document["swagger"] == "2.0"
    assert document["basePath"] == "/rest/v1"
    rpc_paths = {path.removeprefix("/rpc/") for path in document["paths"] if "/rpc/" in path}
    assert rpc_paths == exposed_functions(database_url, "service_role")
    schemathesis.openapi.from_dict(document).validate()  # Swagger 2.0's own meta-schema


def test_a_function_is_described_by_its_arguments_and_its_comment(
    edge: Edge, database_url: str
) -> None:
    paths = describe(edge, edge.service_role_key).json()["paths"]
    (comment,) = query(
        database_url, "select obj_description('public.ack_message'::regproc, 'pg_proc')"
    )[0]

    post = paths["/rpc/ack_message"]["post"]
    assert "get" not in paths["/rpc/ack_message"]  # volatile: POST only, as PostgREST
    assert post["summary"] == comment
    assert post["tags"] == ["(rpc) ack_message"]
    (body,) = [p for p in post["parameters"] if p.get("in") == "body"]
    assert body["schema"] == {
        "type": "object",
        "description": comment,
        "properties": {
            "p_id": {
                "type": "integer",
                "format": "bigint",
                "minimum": -(2**63),
                "maximum": 2**63 - 1,
            },
            "p_worker_id": {"type": "string", "format": "text"},
        },
        "required": ["p_id"],
        "additionalProperties": False,
    }
    assert "get" in paths["/rpc/get_wallet_balance"]  # stable: GET as well


def test_every_kind_of_argument_is_described_from_the_catalog(
    edge: Edge, database_url: str
) -> None:
    query(database_url, PROBE_SQL)
    path = describe(edge, edge.service_role_key).json()["paths"]["/rpc/openapi_probe"]

    post = path["post"]
    assert post["summary"] == "Counts what it is given."
    assert post["description"] == "Used by test_openapi.py only."
    (body,) = [p for p in post["parameters"] if p.get("in") == "body"]
    assert body["schema"]["required"] == [
        "p_count",
        "p_id",
        "p_at",
        "p_payload",
        "p_tags",
        "p_mood",
    ]
    assert body["schema"]["properties"] == {
        "p_count": {
            "type": "integer",
            "format": "integer",
            "minimum": -(2**31),
            "maximum": 2**31 - 1,
        },
        "p_id": {"type": "string", "format": "uuid"},
        "p_at": {"type": "string", "format": "timestamp with time zone"},
        "p_payload": {"format": "jsonb"},
        "p_tags": {
            "type": "array",
            "format": "text[]",
            "items": {"type": "string", "format": "text"},
        },
        "p_mood": {"type": "string", "format": "openapi_mood", "enum": ["calm", "busy"]},
        "p_small": {  # the domain's CHECK narrows smallint's range
            "type": "integer",
            "format": "openapi_small",
            "minimum": 1,
            "maximum": 10,
        },
        "p_note": {"type": "string", "format": "text"},
    }
    by_name = {p["name"]: p for p in path["get"]["parameters"]}
    assert by_name["p_count"] == {
        "name": "p_count",
        "in": "query",
        "required": True,
        "type": "integer",
        "format": "integer",
        "minimum": -(2**31),
        "maximum": 2**31 - 1,
    }
    assert by_name["p_tags"] == {
        "name": "p_tags",
        "in": "query",
        "required": True,
        "type": "string",
        "format": "text[]",
    }
    assert by_name["p_note"]["required"] is False


def test_tables_and_views_are_described_with_their_columns(edge: Edge, database_url: str) -> None:
    query(database_url, PROBE_SQL)
    document = describe(edge, edge.service_role_key).json()

    things = document["definitions"]["openapi_things"]
    assert things["description"] == "Things the OpenAPI test describes."
    assert things["required"] == ["code", "weight"]  # NOT NULL with nothing to fill them in
    assert things["properties"]["id"] == {
        "type": "integer",
        "format": "bigint",
        "minimum": -(2**63),
        "maximum": 2**63 - 1,
        "description": "Note:\nThis is a Primary Key.<pk/>",
    }
    assert things["properties"]["code"] == {
        "type": "string",
        "format": "character varying",
        "maxLength": 12,
        "description": "A short code.",
    }
    assert things["properties"]["slug"] == {
        "type": "string",
        "format": "openapi_code",
        "minLength": 2,
        "maxLength": 12,
        "pattern": "^[a-z]+$",
    }
    assert things["properties"]["extra"] == {"type": "object", "format": "openapi_object"}
    assert things["properties"]["mood"]["enum"] == ["calm", "busy"]
    assert things["properties"]["mood"]["default"] == "calm"
    assert things["properties"]["label"]["default"] == "it's"
    assert "default" not in things["properties"]["seen_at"]  # now() has no value to show
    assert set(document["paths"]["/openapi_things"]) == {"get", "post", "patch", "delete"}
    get = document["paths"]["/openapi_things"]["get"]
    assert get["summary"] == "Things the OpenAPI test describes."
    assert {"$ref": "#/parameters/rowFilter.openapi_things.code"} in get["parameters"]
    assert document["parameters"]["rowFilter.openapi_things.code"]["description"] == "A short code."
    codes = document["definitions"]["openapi_thing_codes"]
    assert set(codes["properties"]) == {"id", "code"}
    schemathesis.openapi.from_dict(document).validate()


def test_what_is_listed_follows_the_callers_privileges(edge: Edge, database_url: str) -> None:
    query(database_url, PROBE_SQL)
    documents = {
        "service_role": describe(edge, edge.service_role_key).json(),
        "authenticated": describe(
            edge, edge.user_token("00000000-0000-4000-8000-000000000001")
        ).json(),
        "anon": describe(edge).json(),
    }

    for role, document in documents.items():
        rpc = {p.removeprefix("/rpc/") for p in document["paths"] if p.startswith("/rpc/")}
        assert rpc == exposed_functions(database_url, role), role
        assert "/rpc/openapi_hidden" not in document["paths"]
    assert "/openapi_things" in documents["service_role"]["paths"]
    assert "/openapi_things" not in documents["authenticated"]["paths"]
    assert "/openapi_thing_codes" in documents["authenticated"]["paths"]
    assert "/wallets" in documents["authenticated"]["paths"]  # owners read their own
    assert "/background_jobs" not in documents["authenticated"]["paths"]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Accept": "text/html"}, 406, "PGRST107"),
        ({"Accept-Profile": "private"}, 406, "PGRST106"),
        ({"Authorization": "Bearer not-a-token"}, 401, "PGRST301"),
    ],
)
def test_refusals_are_postgrest_errors(
    edge: Edge, headers: dict[str, str], status: int, code: str
) -> None:
    response = describe(edge, **headers)

    assert response.status_code == status
    body: dict[str, Any] = response.json()
    assert body["code"] == code


def test_head_answers_without_a_body_and_accept_may_name_json(edge: Edge) -> None:
    head = httpx.head(f"{edge.url}/rest/v1/", timeout=30)
    as_json = describe(edge, Accept="application/json")

    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == "application/openapi+json; charset=utf-8"
    assert as_json.status_code == 200
    assert as_json.json()["swagger"] == "2.0"

"""The transaction-local settings PostgREST makes before a call, for any edge code that calls
the database as an API role (the RPC gateway as the caller's role, the webhooks as service_role),
and the one way both send them: with the call, in one round trip."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from starlette.requests import Request


def request_settings(
    request: Request,
    *,
    role: str,
    claims: Mapping[str, Any],
    path: str,
    search_path: Sequence[str],
    role_settings: Mapping[str, str],
    read_only: bool = False,
) -> list[tuple[str, str]]:
    """As PostgREST: the role's own settings (ALTER ROLE ... SET applies only at login, and the
    pool logged in as authenticator), then role, claims, headers (lower-cased, no cookie),
    cookies, method and path, so SQL reads them as it would behind PostgREST."""
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "cookie"}
    settings: list[tuple[str, str]] = []
    if read_only:
        settings.append(("transaction_read_only", "on"))
    settings += list(role_settings.items())
    settings += [
        ("search_path", ", ".join(f'"{name}"' for name in search_path)),
        ("role", role),
        ("request.jwt.claims", json.dumps(dict(claims))),
        ("request.headers", json.dumps(headers)),
        ("request.cookies", json.dumps(dict(request.cookies))),
        ("request.method", request.method),
        ("request.path", path),
    ]
    return settings


def settings_statement(settings: Sequence[tuple[str, str]]) -> tuple[str, list[str]]:
    """One SELECT making every setting; `true`: each lasts until the end of the transaction."""
    query = "select " + ", ".join(["pg_catalog.set_config(%s, %s, true)"] * len(settings))
    return query, [item for pair in settings for item in pair]


async def execute_as_request(
    conn: psycopg.AsyncConnection[Any],
    settings: Sequence[tuple[str, str]],
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None,
) -> tuple[Any, ...] | None:
    """The settings and `sql` as one simple-protocol query, bound client-side: one round trip.
    On a connection outside a transaction, Postgres runs the two statements as one transaction
    and commits it before it answers (so a caller answers only after the commit); inside one the
    caller opened, they are part of it. `sql`'s first row, if any."""
    cursor = psycopg.AsyncClientCursor(conn)
    setup, setup_params = settings_statement(settings)
    query = f"{cursor.mogrify(setup, setup_params)}; {cursor.mogrify(sql, params)}"
    await cursor.execute(query)
    cursor.nextset()
    return await cursor.fetchone() if cursor.description else None

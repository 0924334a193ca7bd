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
    setup = ", ".join([_set_config(cursor, name, value) for name, value in settings])
    query = f"select {setup}; {cursor.mogrify(sql, params)}"
    await cursor.execute(query)
    cursor.nextset()
    return await cursor.fetchone() if cursor.description else None


SET_CONFIG = "pg_catalog.set_config(%s, %s, true)"
# Settings whose value is new on every request (the headers carry the request id): not kept.
_UNCACHED = frozenset({"request.headers"})
_CACHED_FRAGMENTS = 4096
_fragments: dict[tuple[str, str, str], str] = {}


def _set_config(cursor: psycopg.AsyncClientCursor[Any], name: str, value: str) -> str:
    """One set_config call, quoted by psycopg. Binding costs more than the call it binds, and
    most settings (role, path, search_path, a service's claims) repeat on every request; their
    quoting depends only on the connection's encoding, which is part of the key."""
    if name in _UNCACHED:
        return cursor.mogrify(SET_CONFIG, (name, value))
    key = (cursor.connection.info.encoding, name, value)
    fragment = _fragments.get(key)
    if fragment is None:
        fragment = cursor.mogrify(SET_CONFIG, (name, value))
        if len(_fragments) >= _CACHED_FRAGMENTS:
            _fragments.clear()  # user claims vary without end; the common ones return at once
        _fragments[key] = fragment
    return fragment

"""The transaction-local settings PostgREST makes before a call, for any edge code that calls
the database as an API role (the RPC gateway as the caller's role, the webhooks as service_role),
and the one way both send them: with the call, in one round trip."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors, pq
from psycopg.adapt import Transformer
from psycopg.generators import execute as results_of_sent_query
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
    On a connection outside a transaction (the edge's pool is autocommit), Postgres runs the two
    statements as one transaction and commits it before it answers (so a caller answers only
    after the commit); inside one the caller opened, they are part of it. `sql`'s first row, if
    any; a statement's error is raised as psycopg raises it (the class of its SQLSTATE, with
    its diagnostics).

    The query is sent and its results read with psycopg's own generator and row loader, not a
    cursor: a cursor's bookkeeping (prepared-statement tracking, query parsing, result
    descriptions for both statements) cost the edge about a tenth of an RPC's Python."""
    cursor = psycopg.AsyncClientCursor(conn)  # binds parameters as psycopg quotes them
    pgconn = conn.pgconn
    encoding = pgconn.parameter_status(b"client_encoding")
    setup = ", ".join([_set_config(cursor, encoding, name, value) for name, value in settings])
    query = f"select {setup}; {cursor.mogrify(sql, params)}"
    python_encoding = conn.info.encoding
    async with conn.lock:
        pgconn.send_query(query.encode(python_encoding))
        results = await conn.wait(results_of_sent_query(pgconn))
    for result in results:
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise errors.error_from_result(result, encoding=python_encoding)
    last = results[-1]
    if last.status != pq.ExecStatus.TUPLES_OK or last.ntuples == 0:
        return None
    transformer = Transformer(conn)
    transformer.set_pgresult(last)
    return transformer.load_row(0, tuple)


SET_CONFIG = "pg_catalog.set_config(%s, %s, true)"
# Settings whose value is new on every request (the headers carry the request id): not kept.
_UNCACHED = frozenset({"request.headers"})
_CACHED_FRAGMENTS = 4096
_fragments: dict[tuple[bytes | None, str, str], str] = {}


def _set_config(
    cursor: psycopg.AsyncClientCursor[Any], encoding: bytes | None, name: str, value: str
) -> str:
    """One set_config call, quoted by psycopg. Binding costs more than the call it binds, and
    most settings (role, path, search_path, a service's claims) repeat on every request; their
    quoting depends only on the connection's encoding, which is part of the key."""
    if name in _UNCACHED:
        return cursor.mogrify(SET_CONFIG, (name, value))
    key = (encoding, name, value)
    fragment = _fragments.get(key)
    if fragment is None:
        fragment = cursor.mogrify(SET_CONFIG, (name, value))
        if len(_fragments) >= _CACHED_FRAGMENTS:
            _fragments.clear()  # user claims vary without end; the common ones return at once
        _fragments[key] = fragment
    return fragment

"""A database with the table API's fixture relations (table_api.sql) and two users with
preferences and a transaction each, and an edge serving it, for the table API tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.support.db import query
from tests.support.edge import Edge, edge_settings, running_edge
from tests.support.server import TestServer

FIXTURE_SQL = Path(__file__).with_name("table_api.sql")
OWNER = "11111111-1111-4111-8111-111111111111"
STRANGER = "22222222-2222-4222-8222-222222222222"
ODD_TABLE = 'tapi odd "name"; drop table public.tapi_items; --'
ODD_COLUMN = 'we"ird; col'
USERS_SQL = f"""
insert into public.users (id, phone_number, display_name) values
('{OWNER}', '+250788600001', 'Owner'), ('{STRANGER}', '+250788600002', 'Stranger');
insert into public.user_preferences (user_id) values ('{OWNER}'), ('{STRANGER}');
select public.create_transaction('{OWNER}', 'credit', 1000, 'RWF');
select public.create_transaction('{STRANGER}', 'credit', 2000, 'RWF');
"""


@dataclass
class Api:
    """Raw HTTP at /rest/v1/ as a role (anon, service, owner, stranger), and the database."""

    edge: Edge
    database_url: str
    http: httpx.Client

    def headers(self, role: str) -> dict[str, str]:
        key = {
            "anon": self.edge.anon_key,
            "service": self.edge.service_role_key,
            "owner": self.edge.user_token(OWNER),
            "stranger": self.edge.user_token(STRANGER),
        }[role]
        return {"apikey": self.edge.anon_key, "Authorization": f"Bearer {key}"}

    def get(self, path: str, role: str = "service", **headers: str) -> httpx.Response:
        """`headers` by keyword: accept_profile=... is Accept-Profile."""
        return self.http.get(path, headers=self.headers(role) | _header_names(headers))

    def send(
        self, method: str, path: str, body: Any = None, role: str = "service", **headers: str
    ) -> httpx.Response:
        return self.http.request(
            method, path, json=body, headers=self.headers(role) | _header_names(headers)
        )

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return query(self.database_url, sql, params)


def _header_names(headers: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in headers.items()}


@contextmanager
def table_api_stack(server: TestServer) -> Iterator[Api]:
    name = server.clone("tables")
    try:
        with psycopg.connect(server.url(name), autocommit=True) as conn:
            conn.execute(FIXTURE_SQL.read_text(encoding="utf-8"))  # type: ignore[arg-type]
            conn.execute(USERS_SQL)  # type: ignore[arg-type]
        with (
            running_edge(edge_settings(server, name)) as edge,
            httpx.Client(base_url=f"{edge.url}/rest/v1/", timeout=30) as http,
        ):
            yield Api(edge, server.url(name), http)
    finally:
        server.drop(name)


def ids(response: httpx.Response) -> list[int]:
    assert response.status_code in (200, 206), response.text
    return [row["id"] for row in response.json()]

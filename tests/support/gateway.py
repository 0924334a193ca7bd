"""A database with the gateway's fixture functions and an edge serving it, for the gateway
tests; helpers to sign tokens and to spell PostgREST's error bodies."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg

from tests.support.client import RecordingClient
from tests.support.edge import Edge, edge_settings, running_edge
from tests.support.server import JWT_SECRET, TestServer

FUNCTIONS_SQL = Path(__file__).with_name("gateway_functions.sql")
JSON = "application/json; charset=utf-8"
OBJECT_JSON = "application/vnd.pgrst.object+json; charset=utf-8"
OWNER = "00000000-0000-4000-8000-000000000001"
OTHER_OWNER = "00000000-0000-4000-8000-000000000002"


@dataclass
class Gateway:
    edge: Edge
    database_url: str  # superuser, for setup and for checking what a call did
    http: httpx.Client  # raw HTTP at /rest/v1/rpc/, for what the client cannot send
    clients: list[RecordingClient] = field(default_factory=list)

    def client(self, key: str | None = None) -> RecordingClient:
        """A supabase client with this key (default: the anon key)."""
        client = RecordingClient(self.edge.url, key or self.edge.anon_key)
        self.clients.append(client)
        return client

    def user_client(self, user_id: str = OWNER, **claims: object) -> RecordingClient:
        return self.client(self.edge.user_token(user_id, **claims))

    def service_client(self) -> RecordingClient:
        return self.client(self.edge.service_role_key)

    def query(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def service_headers(self) -> dict[str, str]:
        return {"apikey": self.edge.service_role_key, **self.bearer(self.edge.service_role_key)}


@contextmanager
def gateway_stack(server: TestServer, prefix: str = "gateway") -> Iterator[Gateway]:
    """One clone with the fixture functions loaded, and one edge serving it."""
    name = server.clone(prefix)
    try:
        with psycopg.connect(server.url(name), autocommit=True) as conn:
            conn.execute(FUNCTIONS_SQL.read_text(encoding="utf-8"))  # type: ignore[arg-type]
        with (
            running_edge(edge_settings(server, name)) as edge,
            httpx.Client(base_url=f"{edge.url}/rest/v1/rpc/", timeout=30) as http,
        ):
            gateway = Gateway(edge, server.url(name), http)
            try:
                yield gateway
            finally:
                for client in gateway.clients:
                    client.close()
    finally:
        server.drop(name)


def sign(claims: dict[str, Any], secret: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_body(
    code: str, message: str, details: str | None = None, hint: str | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details, "hint": hint}

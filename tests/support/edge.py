"""A real edge (uvicorn on a loopback port, in a thread) for tests that speak HTTP to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydantic import SecretStr

from app import keys
from app.db.sql_files import SqlSources
from app.edge.app import create_app
from app.settings import Settings
from tests.support.loopback import serve_on_loopback
from tests.support.server import AUTHENTICATOR_PASSWORD, JWT_SECRET, TestServer

# Webhook secrets of the test edge, for tests that sign requests as the providers do.
WHATSAPP_APP_SECRET = "test-whatsapp-app-secret"
WHATSAPP_VERIFY_TOKEN = "test-whatsapp-verify-token"
TWILIO_AUTH_TOKEN = "test-twilio-auth-token"
# As behind a proxy: the URL Twilio calls (and signs) is not the edge's loopback address.
PUBLIC_BASE_URL = "https://edge.easymo.test"


@dataclass(frozen=True)
class Edge:
    url: str
    settings: Settings

    @property
    def anon_key(self) -> str:
        return keys.api_key(JWT_SECRET, "anon")

    @property
    def service_role_key(self) -> str:
        return keys.api_key(JWT_SECRET, "service_role")

    def user_token(self, user_id: str, **claims: object) -> str:
        return keys.user_token(JWT_SECRET, user_id, **claims)


def edge_settings(server: TestServer, database: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "edge_database_url": server.url(database, "authenticator", AUTHENTICATOR_PASSWORD),
        "supabase_jwt_secret": SecretStr(JWT_SECRET),
        "pool_min_size": 1,
        "pool_max_size": 4,
        "whatsapp_app_secret": SecretStr(WHATSAPP_APP_SECRET),
        "whatsapp_verify_token": SecretStr(WHATSAPP_VERIFY_TOKEN),
        "twilio_auth_token": SecretStr(TWILIO_AUTH_TOKEN),
        "public_base_url": PUBLIC_BASE_URL,
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


@contextmanager
def running_edge(settings: Settings, sources: SqlSources | None = None) -> Iterator[Edge]:
    with serve_on_loopback(create_app(settings, sources), "edge") as url:
        yield Edge(url, settings)

"""A real edge for tests that speak HTTP to it: uvicorn on a loopback port in a thread of the
test, or the edge's own process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from pydantic import SecretStr

from app import keys
from app.db.sql_files import SqlSources
from app.edge.app import create_app
from app.edge.serve import server_options
from app.local.stack import wait_until_ready
from app.settings import Settings
from tests.support.loopback import serve_on_loopback
from tests.support.server import AUTHENTICATOR_PASSWORD, JWT_SECRET, TestServer, free_port

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
        # Registering would add rows and outbox events to every test's database; the tests of
        # the registry turn it on.
        "service_heartbeat_seconds": None,
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


@contextmanager
def running_edge(settings: Settings, sources: SqlSources | None = None) -> Iterator[Edge]:
    app = create_app(settings, sources)
    with serve_on_loopback(app, "edge", **server_options(app, settings)) as url:
        yield Edge(url, settings)


@contextmanager
def edge_after(server: TestServer, database: str, setup_sql: str) -> Iterator[Edge]:
    """An edge started once `setup_sql` (a test's own functions) ran on the database, so its
    schema cache holds them from the first request."""
    with psycopg.connect(server.url(database), autocommit=True) as conn:
        conn.execute(setup_sql)  # type: ignore[arg-type]  # the test's own SQL
    with running_edge(edge_settings(server, database)) as edge:
        yield edge


@dataclass(frozen=True)
class EdgeProcess:
    """The edge as `make run` serves it (`python -m app serve`: uvloop, its own limits), for
    tests that need its memory, its descriptors or its logs to be its own."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_file: Path

    def memory(self, field: str = "VmRSS") -> int:
        """Bytes, from /proc: VmRSS now, VmHWM the most it ever held."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
        assert kib is not None, status
        return int(kib.group(1)) * 1024

    def log_lines(self) -> list[str]:
        return self.log_file.read_text().splitlines()


@contextmanager
def edge_process(
    server: TestServer,
    database: str,
    *,
    env: dict[str, str] | None = None,
    open_files: int | None = None,
) -> Iterator[EdgeProcess]:
    """`env` adds settings (EDGE_HEADER_TIMEOUT_SECONDS...); `open_files` caps the process's
    descriptors (soft and hard), as a small RLIMIT_NOFILE would."""
    port = free_port()
    settings = {
        **os.environ,
        "EDGE_DATABASE_URL": server.url(database, "authenticator", AUTHENTICATOR_PASSWORD),
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "EDGE_PORT": str(port),
        "POOL_MIN_SIZE": "1",
        "POOL_MAX_SIZE": "4",
        "LOG_LEVEL": "info",
        "EASYMO_LOCAL_DIR": "/nonexistent",  # never the developer's stack.env
        **(env or {}),
    }

    with tempfile.NamedTemporaryFile(prefix="edge-", suffix=".log", delete=False) as log:
        log_file = Path(log.name)
        # The shell's ulimit rather than a preexec_fn: this process runs threads (edges,
        # fakes), and forking them into Python code is unsafe.
        limit = f"ulimit -n {int(open_files)} && " if open_files is not None else ""
        process = subprocess.Popen(
            ["/bin/sh", "-c", limit + 'exec "$@"', "sh", sys.executable, "-m", "app", "serve"],
            env=settings,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, log_file=log_file, timeout=30)
        yield EdgeProcess(url, port, process, log_file)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.unlink(missing_ok=True)

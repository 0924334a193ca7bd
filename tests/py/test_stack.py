"""The first five minutes: `up`, `down`, `run` and `db reset` as a user runs them, in a stack
directory and on ports of the test's own, so a developer's .local stack is never touched."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from app.env_file import read_env_file
from app.local.stack import wait_until_ready
from tests.support.client import RecordingClient
from tests.support.server import free_port

STACK_KEYS = (
    "SUPABASE_URL",
    "DATABASE_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_JWT_SECRET",
)
WEBHOOK_SECRETS = ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "TWILIO_AUTH_TOKEN")


@dataclass(frozen=True)
class StackDir:
    root: Path
    env: dict[str, str]

    def app(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def settings(self) -> dict[str, str]:
        return read_env_file(self.root / "stack.env")

    def database_accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.settings()["DATABASE_URL"], connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False


@pytest.fixture(scope="module")
def stack() -> Iterator[StackDir]:
    root = Path(tempfile.mkdtemp(prefix="easymo-stack-"))
    root.chmod(0o755)  # the cluster runs as another OS user when we are root
    env = {
        **os.environ,
        "EASYMO_LOCAL_DIR": str(root),
        "EASYMO_DB_PORT": str(free_port()),
        "EASYMO_API_PORT": str(free_port()),
        # The sender's processes inherit these: stale within 3 s of its last heartbeat.
        "SENDER_HEARTBEAT_SECONDS": "0.5",
        "SENDER_HTTP_TIMEOUT_SECONDS": "1",
    }
    for inherited in (
        "DATABASE_URL",
        "EDGE_DATABASE_URL",
        "SUPABASE_JWT_SECRET",
        "PUBLIC_BASE_URL",
        *WEBHOOK_SECRETS,
    ):
        env.pop(inherited, None)
    stack_dir = StackDir(root, env)
    yield stack_dir
    stack_dir.app("down")
    shutil.rmtree(root, ignore_errors=True)


def call_probe(settings: dict[str, str]) -> object:
    with RecordingClient(settings["SUPABASE_URL"], settings["SUPABASE_ANON_KEY"]) as client:
        return client.rpc("stack_probe", {"n": 41}).execute().data


def test_up_prints_the_keys_serves_the_client_and_down_stops_everything(stack):
    up = stack.app("up")
    assert up.returncode == 0, up.stderr
    assert "creating a Postgres cluster" in up.stdout
    assert re.search(
        r"^started the database, the edge \(pid \d+\), the sender \(pid \d+\)$",
        up.stdout,
        re.MULTILINE,
    ), up.stdout
    settings = stack.settings()
    for key in STACK_KEYS:
        assert re.search(rf"^{key} +{re.escape(settings[key])}$", up.stdout, re.MULTILINE)
    assert (stack.root / "stack.env").stat().st_mode & 0o777 == 0o600
    assert httpx.get(settings["SUPABASE_URL"] + "/ready").status_code == 200
    # The webhooks work out of the box, with secrets of their own and the edge's URL signed.
    assert all(len(settings[name]) >= 32 for name in WEBHOOK_SECRETS)
    assert settings["PUBLIC_BASE_URL"] == settings["SUPABASE_URL"]
    handshake = httpx.get(
        settings["SUPABASE_URL"] + "/webhooks/whatsapp",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": settings["WHATSAPP_VERIFY_TOKEN"],
            "hub.challenge": "42",
        },
    )
    assert (handshake.status_code, handshake.text) == (200, "42")
    with psycopg.connect(settings["DATABASE_URL"], autocommit=True) as conn:
        assert conn.execute("select jobname from cron.job order by jobname").fetchall() == [
            ("anonymize-inactive-users",),
            ("cleanup-expired-cache",),
            ("cleanup-expired-routes",),
            ("expire-whatsapp-sessions",),
            ("maintain-partitions",),
            ("purge-background-jobs",),
            ("purge-cron-history",),
            ("purge-feature-flag-evaluations",),
            ("purge-message-queue",),
            ("purge-otp-codes",),
            ("purge-outbox-events",),
            ("purge-whatsapp-dead-letters",),
            ("purge-whatsapp-message-queue",),
            ("purge-whatsapp-senders",),
            ("reconcile-wallets",),
            ("sample-counters",),
            ("sweep-service-registry",),
            ("time-out-background-jobs",),
        ]
        conn.execute(
            "create function public.stack_probe(n int) returns int language sql"
            " set search_path = '' as 'select n + 1'"
        )
        conn.execute("grant execute on function public.stack_probe(int) to anon")
    assert call_probe(settings) == 42
    # The sender runs beside the edge, into the sandbox provider: the loop works offline.
    with psycopg.connect(settings["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "select public.enqueue_whatsapp_message('+250788000900', 'template',"
            """ '{"name": "welcome", "language": {"code": "en"}}')"""
        )
        deadline = time.monotonic() + 30
        while conn.execute("select status from public.whatsapp_message_queue").fetchall() != [
            ("sent",)
        ]:
            assert time.monotonic() < deadline, "the sender did not send"
            time.sleep(0.1)

        # Both processes are in the service registry, as on-call sees them.
        def overview() -> list[tuple[str, str, int]]:
            return conn.execute(
                "select service_name, state, live_instances::int"
                " from monitoring.service_health_overview"
            ).fetchall()

        wait_until(
            lambda: overview() == [("edge", "healthy", 1), ("whatsapp-sender", "healthy", 1)],
            "the edge and the sender are registered and healthy",
        )

    again = stack.app("up")
    assert again.returncode == 0
    assert "the stack is already up" in again.stdout

    down = stack.app("down")
    assert down.returncode == 0, down.stderr
    assert "stopped the sender" in down.stdout
    assert "stopped the edge" in down.stdout
    assert "stopped the database" in down.stdout
    with pytest.raises(httpx.TransportError):
        httpx.get(settings["SUPABASE_URL"] + "/health")
    assert not stack.database_accepts_connections()


def pid_of(stack: StackDir, process: str) -> int:
    return int((stack.root / "run" / f"{process}.pid").read_text())


def ready_body(stack: StackDir) -> dict[str, object]:
    response = httpx.get(stack.settings()["SUPABASE_URL"] + "/ready")
    assert response.status_code == 200, "a sender down does not make the edge unready"
    return response.json()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_up_starts_what_is_not_running_and_status_says_what_is_down(stack):
    up = stack.app("up")
    assert up.returncode == 0, up.stderr
    status = stack.app("status")
    assert status.returncode == 0, status.stdout
    assert re.search(r"^database +running", status.stdout, re.MULTILINE)
    assert re.search(r"^edge +running +pid \d+, /ready: 200 ready, sender ok$", status.stdout, re.M)
    assert re.search(rf"^sender +running +pid {pid_of(stack, 'worker')}$", status.stdout, re.M)
    assert re.search(r"^senders +ok +2 live, 0 stale; 0 due$", status.stdout, re.M)
    assert ready_body(stack)["sender"] == "ok"

    # The sender hangs (SIGSTOP): alive, but no heartbeat. /ready and status say so.
    worker = pid_of(stack, "worker")
    os.kill(worker, signal.SIGSTOP)
    try:
        wait_until(lambda: ready_body(stack)["sender"] == "stale", "stale within 3 s")
        status = stack.app("status")
    finally:
        os.kill(worker, signal.SIGCONT)
    assert status.returncode == 1, status.stdout
    assert re.search(rf"^sender +running +pid {worker}, no heartbeat$", status.stdout, re.M)
    assert re.search(r"^senders +stale +0 live, 2 stale; 0 due$", status.stdout, re.M)
    assert "not all is well: the sender (pid" in status.stdout
    wait_until(lambda: ready_body(stack)["sender"] == "ok", "the sender writes again")

    # The sender dies; the edge lives on. `up` starts the sender alone.
    edge = pid_of(stack, "edge")
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{worker}").exists(), "the sender is gone")
    with psycopg.connect(stack.settings()["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "select public.enqueue_whatsapp_message('+250788000901', 'template',"
            """ '{"name": "welcome", "language": {"code": "en"}}')"""
        )
    status = stack.app("status")
    assert status.returncode == 1
    assert re.search(r"^sender +down +no process$", status.stdout, re.M)
    assert "the sender is not running" in status.stdout
    wait_until(lambda: ready_body(stack)["sender"] == "stale", "a killed sender goes stale")
    status = stack.app("status")
    assert "messages are due (1) and no sender is live" in status.stdout

    again = stack.app("up")
    assert again.returncode == 0, again.stderr
    assert "already up" not in again.stdout
    assert f"the edge is already running (pid {edge})" in again.stdout
    assert re.search(r"^started the sender \(pid \d+\)$", again.stdout, re.M), again.stdout
    assert pid_of(stack, "edge") == edge
    assert pid_of(stack, "worker") != worker
    assert ready_body(stack)["sender"] == "ok"
    with psycopg.connect(stack.settings()["DATABASE_URL"], autocommit=True) as conn:
        wait_until(
            lambda: (
                conn.execute(
                    "select status from public.whatsapp_message_queue"
                    " where recipient_phone = '+250788000901'"
                ).fetchall()
                == [("sent",)]
            ),
            "the new sender sends what waited",
        )
    assert stack.app("status").returncode == 0

    down = stack.app("down")
    assert down.returncode == 0, down.stderr
    status = stack.app("status")
    assert status.returncode == 1
    assert re.search(r"^database +stopped", status.stdout, re.MULTILINE)
    assert re.search(r"^edge +down +no process$", status.stdout, re.MULTILINE)


def test_run_reuses_the_cluster_and_ctrl_c_stops_edge_sender_and_database(stack):
    secrets_before = {name: stack.settings()[name] for name in WEBHOOK_SECRETS}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "run"],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_ready(stack.settings()["SUPABASE_URL"], process, timeout=60)
        assert call_probe(stack.settings()) == 42  # the data of the previous run is still there
        assert {name: stack.settings()[name] for name in WEBHOOK_SECRETS} == secrets_before
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)

    assert process.returncode in (0, 130), output
    assert "creating a Postgres cluster" not in output
    assert "stopped the edge, the sender and the database" in output
    assert not stack.database_accepts_connections()


def test_reset_rebuilds_the_database_with_migrations_and_seed(stack):
    reset = stack.app("db", "reset")
    assert reset.returncode == 0, reset.stderr
    assert "dropped and recreated the local database" in reset.stdout
    assert "applied supabase/migrations/20260301000000_foundation.sql" in reset.stdout

    start = stack.app("db", "start")
    assert start.returncode == 0, start.stderr
    with psycopg.connect(stack.settings()["DATABASE_URL"]) as conn:
        assert conn.execute("select to_regprocedure('public.stack_probe(int)')").fetchone() == (
            None,
        )
        assert conn.execute("select path from supabase_migrations.seed_files").fetchall() == [
            ("supabase/seed.sql",)
        ]
        # The seed's demo data: drivers around Kigali, a rider's places, two cached routes.
        assert conn.execute(
            "select count(*) from public.find_nearby_locations(-1.9536, 30.0606, 3000, 'current')"
        ).fetchone() == (20,)
        assert conn.execute(
            "select count(*) from public.locations where location_type <> 'current'"
        ).fetchone() == (4,)
        assert conn.execute(
            "select count(*) from public.get_cached_route(-1.9441, 30.0619, -1.9536, 30.0928)"
        ).fetchone() == (1,)
    assert stack.app("db", "stop").returncode == 0
    assert not stack.database_accepts_connections()

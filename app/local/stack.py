"""The local stack: a Postgres cluster under .local/, the edge in front of it, and the sender
(`python -m app worker`) beside it.

`prepare` is the one path that brings the database up to date: create the cluster on first
use, start it, apply emulation, migrations, functions and seed, and write .local/stack.env.
`run`, `up`, `reset` and `psql` all go through it, so they cannot disagree about set-up.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from app import keys, paths
from app.db.migrator import migrate
from app.env_file import read_env_file, write_env_file
from app.local.cluster import PG_BINDIR, Cluster, set_password
from app.local.sender_health import live_pids, read_sender_health
from app.project_config import load_project_config

# The Supabase CLI's local superuser password: local only, and what every tutorial expects.
LOCAL_PASSWORD = "postgres"  # noqa: S105 - a well-known local default, never used elsewhere
EDGE_PID = paths.LOCAL / "run" / "edge.pid"
EDGE_LOG = paths.LOCAL / "log" / "edge.log"
WORKER_PID = paths.LOCAL / "run" / "worker.pid"
WORKER_LOG = paths.LOCAL / "log" / "worker.log"
READY_TIMEOUT_SECONDS = 30.0
Log = Callable[[str], None]


@dataclass(frozen=True)
class StackProcess:
    """A process `make up` starts in the background: `python -m app command`."""

    name: str
    command: str
    pid_file: Path
    log_file: Path

    def running_pid(self) -> int | None:
        return running_pid(self.pid_file, self.command)


EDGE = StackProcess("edge", "serve", EDGE_PID, EDGE_LOG)
SENDER = StackProcess("sender", "worker", WORKER_PID, WORKER_LOG)


class StackError(RuntimeError):
    """The stack cannot do what was asked; the message says what to do instead."""


def local_cluster() -> Cluster:
    return Cluster(root=paths.LOCAL / "postgres", port=load_project_config().db_port)


def prepare(cluster: Cluster | None = None, *, log: Log = print) -> dict[str, str]:
    """Cluster created, running and migrated; returns the settings written to stack.env."""
    cluster = cluster or local_cluster()
    if not cluster.exists():
        log(f"creating a Postgres cluster in {paths.display(cluster.data_dir)}")
        cluster.init()
    cluster.start()
    stack = _stack_settings(cluster)
    set_password(cluster.socket_conninfo(), "postgres", LOCAL_PASSWORD)
    migrate(stack["DATABASE_URL"], seed=True, log=log)
    set_password(cluster.socket_conninfo(), "authenticator", stack["AUTHENTICATOR_PASSWORD"])
    write_env_file(
        paths.STACK_ENV,
        stack,
        "Written by `python -m app` (make run/up). Secrets were generated on first run and are\n"
        "kept across runs; delete this file and `make reset` to start over.",
    )
    return stack


def reset(*, log: Log = print) -> dict[str, str]:
    """Drop and recreate the local database, then apply everything and the seed."""
    cluster = local_cluster()
    was_running = cluster.is_running()
    if cluster.exists():
        cluster.start()
        with psycopg.connect(cluster.socket_conninfo("template1"), autocommit=True) as conn:
            # FORCE ends every session on it, pg_cron's scheduler included (it reconnects).
            conn.execute("drop database if exists postgres with (force)")
            conn.execute("create database postgres")
        log("dropped and recreated the local database")
    stack = prepare(cluster, log=log)
    if not was_running and not EDGE.running_pid():
        cluster.stop()
    return stack


def run(*, log: Log = print) -> None:
    """The stack in the foreground: Ctrl-C stops the edge and then the database."""
    from app.edge.serve import serve  # noqa: PLC0415 - keeps `make down` free of the web stack

    _refuse_if_edge_up()
    cluster = local_cluster()
    was_running = cluster.is_running()
    stack = prepare(cluster, log=log)
    _announce(stack, log)
    os.environ.update(stack)
    # The sender logs to this terminal too; it stops (finishing its sends) with the edge.
    worker = _start_app("worker", stack)
    try:
        serve()
    finally:
        _stop_child(worker)
        if not was_running:
            cluster.stop()
            log("stopped the edge, the sender and the database")


def up(*, log: Log = print) -> None:
    """The stack in the background: starts whichever of the database, the edge and the sender is
    not running (and says which), and returns once /ready answers 200 and the sender it started
    writes heartbeats."""
    cluster = local_cluster()
    database_was_running = cluster.is_running()
    running = {process: process.running_pid() for process in (EDGE, SENDER)}
    if database_was_running and all(running.values()):
        log("the stack is already up")
        _announce(read_env_file(paths.STACK_ENV), log)
        return
    stack = prepare(cluster, log=log)
    started = [] if database_was_running else ["the database"]
    ready: dict[StackProcess, Callable[[subprocess.Popen[Any]], None]] = {
        EDGE: lambda edge: wait_until_ready(stack["SUPABASE_URL"], edge, log_file=EDGE_LOG),
        SENDER: lambda worker: wait_for_heartbeat(
            stack["DATABASE_URL"], worker, log_file=WORKER_LOG
        ),
    }
    # A process left running keeps running: a second sender would overwrite the first one's pid
    # file, and `make down` would no longer stop it.
    for process, pid in running.items():
        if pid:
            log(f"the {process.name} is already running (pid {pid})")
        else:
            started.append(
                f"the {process.name} (pid {_start_detached(process, stack, ready[process])})"
            )
    log(f"started {', '.join(started)}")
    _announce(stack, log)
    log(
        f"edge log: {paths.display(EDGE_LOG)}, sender log: {paths.display(WORKER_LOG)};"
        " `make status` checks them, `make down` stops everything"
    )


def _start_detached(
    process: StackProcess, stack: dict[str, str], wait: Callable[[subprocess.Popen[Any]], None]
) -> int:
    """Starts `process` in a session of its own (it survives the terminal that ran `make up`),
    its output appended to its log and its pid in its pid file, and waits until `wait` returns;
    the pid."""
    process.log_file.parent.mkdir(parents=True, exist_ok=True)
    process.pid_file.parent.mkdir(parents=True, exist_ok=True)
    with process.log_file.open("ab") as output:
        child = _start_app(process.command, stack, output=output, detach=True)
    process.pid_file.write_text(str(child.pid))
    try:
        wait(child)
    finally:
        if child.poll() is not None:
            process.pid_file.unlink(missing_ok=True)
    return child.pid


def down(*, log: Log = print) -> None:
    for process in (SENDER, EDGE):
        pid = process.running_pid()
        if pid:
            _terminate(pid)
            log(f"stopped the {process.name} (pid {pid})")
        process.pid_file.unlink(missing_ok=True)
    cluster = local_cluster()
    if cluster.is_running():
        cluster.stop()
        log("stopped the database")


def psql() -> None:
    stack = prepare(log=lambda _: None)
    os.execv(PG_BINDIR / "psql", ["psql", stack["DATABASE_URL"]])  # noqa: S606 - replaces us


def _stack_settings(cluster: Cluster) -> dict[str, str]:
    """Every setting the stack uses; generated secrets are kept from the previous stack.env."""
    config = load_project_config()
    previous = read_env_file(paths.STACK_ENV)
    jwt_secret = previous.get("SUPABASE_JWT_SECRET") or secrets.token_urlsafe(48)
    authenticator_password = previous.get("AUTHENTICATOR_PASSWORD") or secrets.token_urlsafe(24)
    edge_url = f"http://127.0.0.1:{config.api_port}"
    # Webhook secrets: generated so the endpoints work (and refuse unsigned input) out of the
    # box; put a real Meta app secret or Twilio token in stack.env and it is kept.
    webhook_secrets = {
        name: previous.get(name) or secrets.token_urlsafe(32)
        for name in ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "TWILIO_AUTH_TOKEN")
    }
    return {
        "SUPABASE_URL": edge_url,
        "DATABASE_URL": cluster.url(password=LOCAL_PASSWORD),
        "SUPABASE_ANON_KEY": keys.api_key(jwt_secret, "anon"),
        "SUPABASE_SERVICE_ROLE_KEY": keys.api_key(jwt_secret, "service_role"),
        "SUPABASE_JWT_SECRET": jwt_secret,
        "EDGE_DATABASE_URL": cluster.url(authenticator_password, "authenticator"),
        "AUTHENTICATOR_PASSWORD": authenticator_password,
        "EDGE_HOST": "127.0.0.1",
        "EDGE_PORT": str(config.api_port),
        **webhook_secrets,
        # What Twilio signs; a tunnel (PUBLIC_BASE_URL=https://....ngrok.app) replaces it.
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL") or edge_url,
    }


def _announce(stack: dict[str, str], log: Log) -> None:
    shown = (
        "SUPABASE_URL",
        "DATABASE_URL",
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_JWT_SECRET",
    )
    width = max(map(len, shown))
    log("")
    for key in shown:
        log(f"{key:<{width}}  {stack.get(key, '')}")
    log(f"(all settings: {paths.display(paths.STACK_ENV)})")
    log("")


def _refuse_if_edge_up() -> None:
    if EDGE.running_pid():
        raise StackError("the stack is already running in the background; `make down` first")


def running_pid(pid_file: Path, command: str) -> int | None:
    """The pid in pid_file, if that process is alive and still ours: `python -m app command`
    (its command line holds `app`, then `command`)."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = (Path(f"/proc/{pid}/cmdline")).read_bytes()
    except (OSError, ValueError):
        return None
    return pid if f"app\x00{command}".encode() in cmdline else None


def _start_app(
    command: str, stack: dict[str, str], *, output: Any = None, detach: bool = False
) -> subprocess.Popen[Any]:
    """`python -m app command` with the stack's settings; its output to `output` (None: ours),
    and with `detach`, in a session of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "app", command],
        cwd=paths.REPO,
        env={**os.environ, **stack},
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        stdin=subprocess.DEVNULL,
        start_new_session=detach,
    )


def wait_until_ready(
    url: str,
    edge: subprocess.Popen[Any],
    *,
    log_file: Path | None = None,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> None:
    """Until the edge's /ready answers 200; StackError if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if edge.poll() is not None:
            raise StackError(f"the edge exited with {edge.returncode}:\n{_tail(log_file)}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise StackError(f"the edge was not ready within {timeout:.0f}s:\n{_tail(log_file)}")


def wait_for_heartbeat(
    database_url: str,
    worker: subprocess.Popen[Any],
    *,
    log_file: Path | None = None,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> None:
    """Until the sender `worker` writes a heartbeat; StackError if it exits or the time runs
    out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise StackError(f"the sender exited with {worker.returncode}:\n{_tail(log_file)}")
        with contextlib.suppress(psycopg.OperationalError):
            if worker.pid in live_pids(read_sender_health(database_url)):
                return
        time.sleep(0.2)
    raise StackError(f"the sender wrote no heartbeat within {timeout:.0f}s:\n{_tail(log_file)}")


def _terminate(pid: int, grace_seconds: float = 30.0) -> None:
    """Stops a process that is not our child. The sender may need its HTTP timeout to finish
    the sends in flight."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _stop_child(child: subprocess.Popen[Any], grace_seconds: float = 30.0) -> None:
    child.terminate()
    try:
        child.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _tail(path: Path | None, lines: int = 20) -> str:
    if path is None:
        return ""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""

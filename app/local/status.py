"""`python -m app status` (`make status`): each process of the local stack and the sender's
health, one line each, and whether all is well (the exit status)."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from app import paths
from app.env_file import read_env_file
from app.local.sender_health import live_pids, read_sender_health
from app.local.stack import EDGE, SENDER, Log, local_cluster

READY_TIMEOUT_SECONDS = 3.0


def status(*, log: Log = print) -> bool:
    """Prints the database, the edge, the sender and each sender loop; True when every process
    runs, /ready answers 200, a sender is live and the line is not paused."""
    stack = read_env_file(paths.STACK_ENV)
    cluster = local_cluster()
    problems: list[str] = []

    database_up = cluster.is_running()
    where = f"127.0.0.1:{cluster.port} ({paths.display(cluster.data_dir)})"
    _line(log, "database", "running" if database_up else "stopped", where)
    if not database_up:
        problems.append("the database is stopped")

    edge_pid = EDGE.running_pid()
    if edge_pid:
        ready, answer = _ready(stack)
        _line(log, "edge", "running", f"pid {edge_pid}, /ready: {answer}")
        if not ready:
            problems.append("the edge is not ready")
    else:
        _line(log, "edge", "down", "no process")
        problems.append("the edge is not running")

    worker_pid = SENDER.running_pid()
    health = _health(stack) if database_up else None
    if worker_pid:
        live = health is not None and worker_pid in live_pids(health)
        _line(log, "sender", "running", f"pid {worker_pid}" + ("" if live else ", no heartbeat"))
        if not live:
            problems.append(f"the sender (pid {worker_pid}) writes no heartbeat")
    else:
        _line(log, "sender", "down", "no process")
        problems.append("the sender is not running")
    if health is not None:
        problems += _report_health(health, log)

    if problems:
        log(f"not all is well: {'; '.join(problems)} (`make up` starts what is not running)")
    return not problems


def _report_health(health: dict[str, Any], log: Log) -> list[str]:
    """The line as the database sees it, and each sender loop; the problems it shows."""
    problems = []
    due = health.get("due_messages", 0)
    oldest = health.get("oldest_due_age_s")
    queue = f"{due} due" + (f", the oldest {oldest} s" if due and oldest is not None else "")
    state = health.get("state", "unknown")
    _line(
        log,
        "senders",
        state,
        f"{health.get('live_senders', 0)} live, {health.get('stale_senders', 0)} stale; {queue}",
    )
    if state != "ok":
        problems.append(f"no sender is live ({state})")
    if health.get("unattended"):
        problems.append(f"messages are due ({due}) and no sender is live")
    if health.get("paused"):
        _line(log, "queue", "paused", "resume_whatsapp_queue() once the cause is fixed")
        problems.append("the WhatsApp line is paused")
    for sender in health.get("senders", []):
        if sender["state"] == "stopped":
            continue
        log(
            f"  {sender['worker_id']}  {sender['state']}, heartbeat {sender['heartbeat_age_s']} s"
            f" ago (stale after {sender['stale_after_s']} s), {sender['messages_sent']} sent,"
            f" last {sender['last_sent_at'] or 'never'}"
        )
    return problems


def _ready(stack: dict[str, str]) -> tuple[bool, str]:
    """Whether /ready answers 200, and what it said."""
    url = stack.get("SUPABASE_URL")
    if not url:
        return False, "no stack.env"
    try:
        response = httpx.get(f"{url}/ready", timeout=READY_TIMEOUT_SECONDS)
        body = response.json()
    except (httpx.TransportError, ValueError) as error:
        return False, f"no answer ({type(error).__name__})"
    detail = body.get("reason") or f"sender {body.get('sender')}"
    return response.status_code == 200, f"{response.status_code} {body.get('status')}, {detail}"


def _health(stack: dict[str, str]) -> dict[str, Any] | None:
    url = stack.get("DATABASE_URL")
    if not url:
        return None
    try:
        return read_sender_health(url)
    except psycopg.Error:
        return None


def _line(log: Log, name: str, state: str, detail: str) -> None:
    log(f"{name:<9} {state:<8} {detail}")

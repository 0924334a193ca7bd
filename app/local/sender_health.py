"""The sender's health as the database sees it (public.whatsapp_sender_health): what `make up`
waits for after starting a sender, and what `python -m app status` prints."""

from __future__ import annotations

from typing import Any

import psycopg

CONNECT_TIMEOUT_SECONDS = 3


def read_sender_health(database_url: str) -> dict[str, Any]:
    """{state, live_senders, stale_senders, due_messages, unattended, paused, senders: [...]};
    raises psycopg.OperationalError when the database does not answer."""
    with psycopg.connect(database_url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        row = conn.execute("select public.whatsapp_sender_health()").fetchone()
    return row[0] if row else {}


def live_pids(health: dict[str, Any]) -> set[int]:
    """The processes with a live sender loop."""
    return {sender["pid"] for sender in health.get("senders", []) if sender["state"] == "live"}

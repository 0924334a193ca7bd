"""The sender as tests and benchmarks drive it: a backlog of templates, `python -m app worker`
processes pointed at a fake provider, and the provider's own count of what it received."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg

from tests.support.fake_provider import META_ACCESS_TOKEN, META_PHONE_NUMBER_ID
from tests.support.server import JWT_SECRET

TEMPLATE = {"name": "ride_update", "language": {"code": "en"}}


def enqueue_templates(url: str, messages: int, per_recipient: int) -> None:
    """`messages` templates, `per_recipient` to each recipient (so lanes are busy, as in a
    broadcast), then the queue vacuumed and analysed as a drained one would be."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "select public.enqueue_whatsapp_message("
            " '+25078' || lpad(((n - 1) / %s)::text, 7, '0'), 'template', %s::jsonb)"
            " from generate_series(1, %s) as n",
            (per_recipient, json.dumps(TEMPLATE), messages),
        )
        conn.execute("vacuum analyze public.whatsapp_message_queue")


def worker_env(sender_url: str, fake_url: str, **settings: str) -> dict[str, str]:
    """The environment of a worker that connects as `sender_url` and sends to the fake."""
    return {
        **os.environ,
        "EDGE_DATABASE_URL": sender_url,
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "WHATSAPP_API_BASE_URL": fake_url,
        "WHATSAPP_ACCESS_TOKEN": META_ACCESS_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": META_PHONE_NUMBER_ID,
        **settings,
    }


def start_worker(
    sender_url: str, fake_url: str, *, log: Path | None = None, **settings: str
) -> subprocess.Popen[bytes]:
    """`python -m app worker` with these SENDER_* (and other) settings; its JSON log lines
    appended to `log` (else dropped), its stderr to a pipe."""
    with contextlib.ExitStack() as files:
        output = files.enter_context(log.open("ab")) if log else subprocess.DEVNULL
        return subprocess.Popen(
            [sys.executable, "-m", "app", "worker"],
            env=worker_env(sender_url, fake_url, **settings),
            stdout=output,
            stderr=subprocess.PIPE,
        )


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out{': ' + what if what else ''}"
        time.sleep(0.02)


def sends_per_queue_id(bodies: Iterable[dict[str, Any] | None]) -> Counter[int]:
    """How many sends the provider received for each queue id (the worker puts it in
    `biz_opaque_callback_data`); a request without one (a probe) is not a send."""
    return Counter(
        int(queue_id)
        for body in bodies
        if (queue_id := (body or {}).get("biz_opaque_callback_data")) is not None
    )

"""The sender's heartbeats as a real `python -m app worker` writes them, and the health RPCs
through the supabase client against the edge."""

from __future__ import annotations

import signal
import socket

import httpx

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge
from tests.support.fake_provider import fake_provider
from tests.support.sender import enqueue_templates, start_worker, wait_for
from tests.support.server import AUTHENTICATOR_PASSWORD, TestServer


def senders(database_url: str, pid: int) -> list[tuple[str, str, str, int, bool]]:
    return query(
        database_url,
        "select state, host, provider, messages_sent::int, last_sent_at is not null"
        " from monitoring.whatsapp_senders where pid = %s order by worker_id",
        (pid,),
    )


def test_each_loop_of_a_worker_writes_heartbeats_and_says_when_it_stops(
    server: TestServer, database: str, database_url: str
) -> None:
    sender_url = server.url(database, "authenticator", AUTHENTICATOR_PASSWORD)
    enqueue_templates(database_url, 6, per_recipient=1)
    with fake_provider() as fake:
        worker = start_worker(
            sender_url, fake.url, SENDER_WORKERS="2", SENDER_HEARTBEAT_SECONDS="0.2"
        )
        try:
            # Each loop reports what it sent with its next heartbeat.
            wait_for(
                lambda: sum(row[3] for row in senders(database_url, worker.pid)) == 6,
                what="the heartbeats report six sent",
            )
            live = senders(database_url, worker.pid)
            worker_ids = query(
                database_url,
                "select worker_id from monitoring.whatsapp_senders where pid = %s",
                (worker.pid,),
            )
            claimed_by = query(
                database_url, "select distinct claimed_by from public.whatsapp_message_queue"
            )
            worker.send_signal(signal.SIGTERM)
            _, stderr = worker.communicate(timeout=15)
        finally:
            worker.kill()
    assert worker.returncode == 0, stderr.decode()

    host = socket.gethostname()
    assert [row[:3] for row in live] == [("live", host, "meta")] * 2
    assert any(row[4] for row in live), "last_sent_at is set by the loop that sent"
    # A loop's worker id is the one it signs its claims with.
    assert {row[0] for row in claimed_by} <= {row[0] for row in worker_ids}
    assert all(row[0].startswith(f"{host}:{worker.pid}:") for row in worker_ids)
    assert [row[0] for row in senders(database_url, worker.pid)] == ["stopped"] * 2
    assert query(database_url, "select state from monitoring.whatsapp_sender_health") == [
        ("absent",)
    ]


def test_the_health_rpcs_through_the_client(edge: Edge) -> None:
    with RecordingClient(edge.url, edge.service_role_key) as service:
        service.rpc(
            "whatsapp_sender_heartbeat",
            {
                "p_worker_id": "host-x:77:a1b2c3:0",
                "p_host": "host-x",
                "p_pid": 77,
                "p_provider": "twilio",
                "p_stale_after_s": 30,
                "p_sent": 4,
            },
        ).execute()
        health = service.rpc("whatsapp_sender_health").execute().data
        status, error = service.error(
            service.rpc(
                "whatsapp_sender_heartbeat",
                {
                    "p_worker_id": "w" * 201,
                    "p_host": "host-x",
                    "p_pid": 77,
                    "p_provider": "twilio",
                    "p_stale_after_s": 30,
                },
            )
        )
    with RecordingClient(edge.url, edge.anon_key) as anon:
        anon_status, anon_error = anon.error(anon.rpc("whatsapp_sender_health"))

    assert (health["state"], health["live_senders"], health["unattended"]) == ("ok", 1, False)
    assert [(s["worker_id"], s["provider"], s["messages_sent"]) for s in health["senders"]] == [
        ("host-x:77:a1b2c3:0", "twilio", 4)
    ]
    assert (status, error["code"]) == (400, "22023")
    assert error["message"] == "whatsapp_sender_heartbeat: p_worker_id must be 1 to 200 characters"
    assert (anon_status, anon_error["code"]) == (401, "42501")
    ready = httpx.get(edge.url + "/ready")
    assert (ready.status_code, ready.json()["sender"]) == (200, "ok")

"""The service registry under real concurrent connections (one instance registered from 50 at
once; heartbeats racing each other's status changes), through the supabase client against the
edge, and from the project's own processes: the edge registers at start-up, heartbeats, and
says stopped when it ends; an unreachable database never raises into the process."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import psycopg

from app.registry.instance import Registration, ServiceInstance
from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge, edge_settings, running_edge
from tests.support.races import one_value_at_once, run_together, service_connections
from tests.support.server import TestServer

REGISTER = (
    "select (public.register_service('payments', 'worker', '1.0', null, null, '[\"payouts\"]',"
    " null, 'pay-1', 10)).status"
)


def test_one_instance_registered_from_50_connections_at_once_is_one_row(
    database_url: str,
) -> None:
    statuses, errors = one_value_at_once(database_url, REGISTER, count=50)

    assert errors == []
    assert statuses == ["starting"] * 50
    assert query(
        database_url, "select service_name, instance_id, status from public.service_registry"
    ) == [("payments", "pay-1", "starting")]
    assert query(
        database_url,
        "select old_status, new_status, reason from private.service_status_changes",
    ) == [(None, "starting", "register")]


def test_heartbeats_racing_a_status_change_record_it_once(database_url: str) -> None:
    query(database_url, REGISTER)
    rounds, clients = 12, 8
    # Every client sends the same status in a round, the status alternating between rounds:
    # each round is one change, raced by eight callers.
    statuses = ["healthy" if r % 2 == 0 else "unhealthy" for r in range(rounds)]
    barrier = threading.Barrier(clients)

    def heartbeat(conn: psycopg.Connection[Any]) -> None:
        for status in statuses:
            barrier.wait()
            conn.execute(
                "select public.service_heartbeat('payments', %s, null, 'pay-1')", (status,)
            )

    with service_connections(database_url, clients) as conns:
        errors = run_together([lambda c=c: heartbeat(c) for c in conns])

    assert errors == []
    changes = query(
        database_url,
        "select old_status, new_status from private.service_status_changes"
        " where reason = 'heartbeat' order by id",
    )
    assert changes == list(zip(["starting", *statuses[:-1]], statuses, strict=True))
    assert query(
        database_url,
        "select count(*)::int from public.outbox_events"
        " where event_type = 'service.status_changed'",
    ) == [(rounds + 1,)]


def test_register_heartbeat_and_find_through_the_edge(edge: Edge, database_url: str) -> None:
    registration = {
        "p_service_name": "payments",
        "p_service_type": "worker",
        "p_version": "1.4.2",
        "p_endpoint": "http://10.0.0.5:8080",
        "p_health_check_url": "http://10.0.0.5:8080/health",
        "p_capabilities": ["payouts"],
        "p_dependencies": ["ledger"],
        "p_instance_id": "pay-1",
        "p_heartbeat_interval_seconds": 15,
    }
    with RecordingClient(edge.url, edge.service_role_key) as service:
        row = service.rpc("register_service", registration).execute().data
        service.rpc(
            "service_heartbeat",
            {"p_service_name": "payments", "p_metrics": {"in_flight": 2}, "p_instance_id": "pay-1"},
        ).execute()
        found = service.rpc("find_service_instances", {"p_capability": "payouts"}).execute().data
        missing_status, missing = service.error(
            service.rpc("service_heartbeat", {"p_service_name": "payments"})
        )
        bad_status, bad = service.error(
            service.rpc("service_heartbeat", {"p_service_name": "payments", "p_status": "zzz"})
        )
    with RecordingClient(edge.url, edge.anon_key) as anon:
        anon_status, anon_error = anon.error(anon.rpc("register_service", registration))

    assert (row["service_name"], row["instance_id"], row["status"]) == (
        "payments",
        "pay-1",
        "starting",
    )
    assert (row["capabilities"], row["dependencies"]) == (["payouts"], ["ledger"])
    assert [(f["service_name"], f["instance_id"], f["version"]) for f in found] == [
        ("payments", "pay-1", "1.4.2")
    ]
    assert (missing_status, missing["code"]) == (404, "PT404")
    assert missing["message"] == (
        "service_heartbeat: no instance default of service payments is registered"
    )
    assert (bad_status, bad["code"]) == (400, "22023")
    assert (anon_status, anon_error["code"]) == (401, "42501")
    assert query(database_url, "select status, metrics from public.service_registry") == [
        ("healthy", {"in_flight": 2})
    ]


def wait_for(predicate: Any, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_the_edge_registers_heartbeats_and_stops(server: TestServer, database: str) -> None:
    database_url = server.url(database)
    settings = edge_settings(server, database, service_heartbeat_seconds=1)

    def edge_rows() -> list[tuple[Any, ...]]:
        return query(
            database_url,
            "select status, service_type, endpoint, metrics ? 'pool', last_heartbeat_at"
            " from public.service_registry where service_name = 'edge'",
        )

    with running_edge(settings):
        wait_for(lambda: [r[0] for r in edge_rows()] == ["healthy"], "the edge is healthy")
        first = edge_rows()[0]
        wait_for(lambda: edge_rows()[0][4] > first[4], "the edge heartbeats again")
        assert first[1:4] == ("api", f"http://{settings.edge_host}:{settings.edge_port}", True)
        assert query(database_url, "select state from monitoring.service_health_overview") == [
            ("healthy",)
        ]
    assert [r[0] for r in edge_rows()] == ["stopped"]


def test_an_unreachable_registry_is_logged_never_raised() -> None:
    instance = ServiceInstance("edge", "api", "1", heartbeat_seconds=1)
    # Nothing listens on port 1: every connection is refused.
    registration = Registration("postgresql://nobody@127.0.0.1:1/none", instance)

    async def run_briefly() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(registration.run(stop))
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.wait_for(task, 2)

    asyncio.run(run_briefly())
    assert registration.heartbeats == 0

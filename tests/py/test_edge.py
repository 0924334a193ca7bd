"""The edge's own endpoints: liveness, readiness, metrics, and the request id on every line."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from app.db.sql_files import SqlSources
from app.shared.logs import configure_logging
from tests.support.edge import edge_settings, running_edge
from tests.support.server import TestServer


def test_health_answers_without_a_database(server: TestServer, database: str):
    settings = edge_settings(
        server, database, edge_database_url="postgresql://nobody@127.0.0.1:1/x"
    )
    with running_edge(settings) as edge:
        assert httpx.get(edge.url + "/health").json() == {"status": "ok"}
        ready = httpx.get(edge.url + "/ready")
    assert ready.status_code == 503
    assert ready.json()["reason"].startswith("database unreachable")


def test_ready_when_every_migration_of_the_repo_is_applied(edge):
    response = httpx.get(edge.url + "/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "migrations": len(SqlSources().read_migrations()),
        "sender": "absent",
    }


def test_not_ready_while_a_migration_is_missing(server, database, tmp_path: Path):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for path in SqlSources().migrations.glob("*.sql"):
        (migrations / path.name).write_text(path.read_text())
    (migrations / "20991231000000_future.sql").write_text("select 1;")
    with running_edge(edge_settings(server, database), SqlSources(migrations=migrations)) as edge:
        response = httpx.get(edge.url + "/ready")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "reason": "migrations not applied: 20991231000000",
    }


def test_request_id_is_echoed_or_generated_and_reaches_the_database(edge, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "create function public.seen_request_id() returns text language sql stable"
            " set search_path = '' as"
            " $$ select current_setting('request.headers', true)::json ->> 'x-request-id' $$"
        )
        conn.execute("grant execute on function public.seen_request_id() to anon")
    given = httpx.post(
        edge.url + "/rest/v1/rpc/seen_request_id", headers={"X-Request-Id": "abc-123"}
    )
    generated = httpx.post(edge.url + "/rest/v1/rpc/seen_request_id")
    unsafe = httpx.post(
        edge.url + "/rest/v1/rpc/seen_request_id", headers={"X-Request-Id": "a b\tc"}
    )

    assert given.headers["x-request-id"] == "abc-123"
    assert given.json() == "abc-123"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    assert generated.json() == generated.headers["x-request-id"]
    assert unsafe.headers["x-request-id"] != "a b\tc"
    assert unsafe.json() == unsafe.headers["x-request-id"]


def test_metrics_count_requests_by_route_without_one_series_per_function(edge):
    httpx.get(edge.url + "/health")
    for name in ("no_such_function_a", "no_such_function_b"):
        assert httpx.post(f"{edge.url}/rest/v1/rpc/{name}").status_code == 404
    text = httpx.get(edge.url + "/metrics").text

    assert 'edge_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert (
        'edge_http_requests_total{method="POST",route="/rest/v1/rpc/{function}",status="404"} 2.0'
        in text
    )
    assert "no_such_function" not in text
    assert re.search(r'edge_db_pool_connections\{state="open"\} [1-9]', text)


def test_logs_are_json_lines_with_the_request_id(edge, capsys: pytest.CaptureFixture[str]):
    configure_logging("info")
    lines: list[dict[str, object]] = []
    try:
        httpx.get(edge.url + "/health", headers={"X-Request-Id": "log-me-1"})
        # The line is written once the response has gone, so it may trail the answer a little.
        deadline = time.monotonic() + 10
        while not any(line.get("request_id") == "log-me-1" for line in lines):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
            out = capsys.readouterr().out
            lines += [json.loads(line) for line in out.splitlines() if line]
    finally:
        logging.getLogger().handlers = []
    request_lines = [line for line in lines if line.get("request_id") == "log-me-1"]
    assert request_lines == [
        {
            "event": "request",
            "method": "GET",
            "path": "/health",
            "status": 200,
            "duration_ms": request_lines[0]["duration_ms"],
            "request_id": "log-me-1",
            "level": "info",
            "timestamp": request_lines[0]["timestamp"],
        }
    ]


def test_connections_the_server_closed_are_replaced_without_failing_a_request(edge, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "create function public.still_here() returns int language sql"
            " set search_path = '' as 'select 1'"
        )
        conn.execute("grant execute on function public.still_here() to anon")
    with httpx.Client(base_url=edge.url) as client:
        assert client.post("/rest/v1/rpc/still_here").json() == 1
        with psycopg.connect(database_url, autocommit=True) as conn:
            # With a timeout it returns once the backend has exited, not when the signal is
            # sent: a request racing a dying backend would be a different test.
            ended = conn.execute(
                "select count(pg_terminate_backend(pid, 5000)) from pg_stat_activity"
                " where usename = 'authenticator' and datname = current_database()"
            ).fetchone()
        assert ended is not None
        assert ended[0] >= 1
        statuses = [client.post("/rest/v1/rpc/still_here").status_code for _ in range(6)]
    assert statuses == [200] * 6

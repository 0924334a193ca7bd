"""What one unauthenticated client may make the edge hold: header bytes, time, sockets.

Raw sockets, since an HTTP client library would neither send a 96 MiB header nor trickle one.
Deadlines are set short here (a fraction of a second); each wait below is bounded, so on code
without the limit a test fails instead of hanging."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from app.edge.connections import raise_open_file_limit
from app.shared.logs import configure_logging
from tests.support.edge import Edge, edge_process, edge_settings, running_edge
from tests.support.raw_http import connect, read_until_closed, send_oversized_head
from tests.support.server import TestServer

SHORT = 0.5  # seconds: the header, body and keep-alive deadlines of the limited edge
NESTED_JSON = b"[" * 5000


@pytest.fixture
def limited_edge(server: TestServer, database: str) -> Iterator[Edge]:
    settings = edge_settings(
        server,
        database,
        edge_header_timeout_seconds=SHORT,
        edge_body_timeout_seconds=SHORT,
        edge_keep_alive_timeout_seconds=SHORT,
    )
    with running_edge(settings) as edge:
        yield edge


def trickle(sock: socket.socket, pieces: list[bytes], every: float, seconds: float) -> bytes:
    """Sends one piece every `every` seconds, until the server closes or `seconds` pass; what
    the server sent, or an AssertionError if it never closed."""
    deadline = time.monotonic() + seconds
    received = b""
    for piece in pieces:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return received
        more, closed = read_until_closed(sock, every)
        received += more
        if closed:
            return received
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"the edge kept a trickling connection open for {seconds}s")


def metric(edge_url: str, name: str, **labels: str) -> float:
    text = httpx.get(edge_url + "/metrics").text
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_96_mib_header_is_refused_431_after_16_kib_without_growing_the_edge(server, database):
    with edge_process(server, database) as edge:
        httpx.get(edge.url + "/health")
        before, total = edge.memory("VmRSS"), 96 * 1024 * 1024
        received, sent, closed = send_oversized_head(edge.url, total)
        grew = edge.memory("VmHWM") - before

        assert received.startswith(b"HTTP/1.1 431 "), received[:200]
        assert closed
        assert sent < total, "the edge read the whole header"
        assert grew < 16 * 1024 * 1024, f"the edge grew by {grew / 2**20:.1f} MiB"
        assert httpx.get(edge.url + "/health").status_code == 200
        assert 'edge_connections_closed_total{reason="head_too_large"} 1.0' in (
            httpx.get(edge.url + "/metrics").text
        )


def test_a_head_up_to_the_limit_is_served_and_one_byte_over_is_not(edge):
    limit = edge.settings.edge_max_header_bytes
    request = b"GET /health HTTP/1.1\r\nHost: edge\r\nConnection: close\r\nX-Filler: %s\r\n\r\n"
    fits = request % (b"a" * (limit - len(request % b"")))
    assert len(fits) == limit
    for head, status in ((fits, b"200"), (fits[:-4] + b"a\r\n\r\n", b"431")):
        with connect(edge.url) as sock:
            sock.sendall(head)
            received, _ = read_until_closed(sock, 2)
        assert received.startswith(b"HTTP/1.1 " + status), received[:200]


def test_a_head_still_arriving_after_the_header_timeout_is_closed_with_408(limited_edge):
    with connect(limited_edge.url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        started = time.monotonic()
        received = trickle(sock, [b"X-Slow: 1\r\n"] * 100, every=0.1, seconds=5)
        took = time.monotonic() - started

    assert received.startswith(b"HTTP/1.1 408 "), received
    assert took >= SHORT
    assert metric(limited_edge.url, "edge_connections_closed_total", reason="head_timeout") == 1


def test_a_body_still_arriving_after_the_body_timeout_is_closed_with_408(limited_edge):
    with connect(limited_edge.url) as sock:
        sock.sendall(
            b"POST /rest/v1/rpc/anything HTTP/1.1\r\nHost: edge\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        received = trickle(sock, [b" "] * 100, every=0.1, seconds=5)

    assert received.startswith(b"HTTP/1.1 408 "), received
    assert metric(limited_edge.url, "edge_connections_closed_total", reason="body_timeout") == 1
    # The route reading the body saw the connection go: a client event, never a 500.
    text = httpx.get(limited_edge.url + "/metrics").text
    assert 'status="500"' not in text


def test_idle_connections_are_closed_after_the_keep_alive_timeout(limited_edge):
    with connect(limited_edge.url) as silent:
        received, closed = read_until_closed(silent, 5)
    assert closed, "a connection that never sent a byte was kept open"
    assert received == b""

    with connect(limited_edge.url) as kept_alive:
        kept_alive.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n")
        received, closed = read_until_closed(kept_alive, 5)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert closed, "an idle keep-alive connection was kept open"
    assert metric(limited_edge.url, "edge_connections_closed_total", reason="idle_timeout") >= 2


def test_health_and_ready_answer_while_slow_clients_hold_more_sockets_than_the_edge_has(
    server, database
):
    """1,500 connections that each began a head and stopped, against an edge allowed 1,024
    descriptors: the edge closes the ones waiting longest, and probes still get in."""
    raise_open_file_limit()  # the test's own 1,500 sockets
    slow: list[socket.socket] = []
    with edge_process(server, database, open_files=1024) as edge:
        try:
            for _ in range(1500):
                sock = socket.create_connection(("127.0.0.1", edge.port), timeout=5)
                slow.append(sock)
                with contextlib.suppress(OSError):  # already closed by the edge: shed
                    sock.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
            with httpx.Client(base_url=edge.url, timeout=5) as client:
                for _ in range(5):
                    assert client.get("/health").status_code == 200
                    assert client.get("/ready").status_code == 200
                metrics = client.get("/metrics").text
        finally:
            for sock in slow:
                sock.close()
    shed = re.search(r'edge_connections_closed_total\{reason="shed"\} (\S+)', metrics)
    assert shed is not None
    assert float(shed.group(1)) >= 1500 - 1024


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/rest/v1/rpc/anything", "application/json"),
        ("/webhooks/whatsapp", "application/json"),
        ("/webhooks/twilio", "application/x-www-form-urlencoded"),
    ],
)
def test_a_client_hanging_up_mid_body_is_a_client_event_not_a_500(
    edge, capsys: pytest.CaptureFixture[str], path: str, content_type: str
):
    route = "/rest/v1/rpc/{function}" if path.startswith("/rest/") else path
    configure_logging("info")
    try:
        with connect(edge.url) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: edge\r\nContent-Type: {content_type}\r\n"
                "Content-Length: 1000\r\n\r\n".encode()
                + b"0123456789"
            )
            time.sleep(0.2)  # the route is reading the body
        deadline = time.monotonic() + 5
        while metric(edge.url, "edge_client_disconnects_total", route=route) < 1:
            assert time.monotonic() < deadline, "the hang-up was never counted"
            time.sleep(0.05)
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    finally:
        logging.getLogger().handlers = []

    assert metric(edge.url, "edge_client_disconnects_total", route=route) == 1
    assert metric(edge.url, "edge_http_requests_total", method="POST", route=route, status="499")
    assert "500" not in re.findall(r'status="(\d+)"', httpx.get(edge.url + "/metrics").text)
    assert [line for line in lines if line["level"] not in ("info", "debug")] == []
    requests = [line for line in lines if line["event"] == "request" and line["path"] == path]
    assert [(line["status"], line["level"]) for line in requests] == [(499, "info")]


def test_json_nested_deeper_than_the_parser_goes_is_400_pgrst102(edge):
    response = httpx.post(
        edge.url + "/rest/v1/rpc/anything",
        content=NESTED_JSON,
        headers={"Content-Type": "application/json", "apikey": edge.anon_key},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "PGRST102"

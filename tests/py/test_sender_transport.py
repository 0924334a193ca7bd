"""app.sender.transport: what each way a send can break becomes, through the sender's client, so
that only a request that provably never left is sent again."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from app.sender.errors import SendResult
from app.sender.outbound import OutboundMessage
from app.sender.transport import provider_client
from tests.support.fake_provider import FakeProvider, fake_provider

MESSAGE = OutboundMessage(7, "+250788123456", "text", {"body": "hello"})


def send(provider_url: str, fake: FakeProvider, read_timeout: float = 5.0) -> SendResult:
    async def run() -> SendResult:
        timeout = httpx.Timeout(5.0, read=read_timeout)
        async with provider_client(4, timeout) as client:
            return await fake.meta(base_url=provider_url).send(client, MESSAGE)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with fake_provider() as running:
        yield running


@pytest.fixture
def hangs_up() -> Iterator[str]:
    """A server that reads the whole request, then closes the connection without answering:
    the provider may have acted on it."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_a_hang_up_after_the_request_is_ambiguous(hangs_up: str, fake: FakeProvider) -> None:
    result = send(hangs_up, fake)
    assert (result.outcome, result.error_code) == ("ambiguous", "RemoteProtocolError")


def test_a_refused_connection_is_retried(fake: FakeProvider) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = send(url, fake)
    assert (result.outcome, result.error_code) == ("retry", "ConnectError")


def test_a_read_timeout_is_ambiguous(fake: FakeProvider) -> None:
    fake.delay(1.0)
    try:
        result = send(fake.url, fake, read_timeout=0.2)
    finally:
        fake.reset()
    assert (result.outcome, result.error_code) == ("ambiguous", "ReadTimeout")


def test_a_base_url_that_is_not_http_stops_the_line(fake: FakeProvider) -> None:
    result = send("ftp://127.0.0.1:1", fake)
    assert result.outcome == "stop"


def test_answers_arrive_whole_with_their_headers(fake: FakeProvider) -> None:
    result = send(fake.url, fake)
    assert result.outcome == "sent"
    assert result.provider_message_id is not None
    assert result.provider_message_id.startswith("wamid.")
    assert fake.requests[-1].json["text"] == {"body": "hello"}

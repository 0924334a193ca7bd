"""The sender's providers against the provider sandbox: the exact request each message type
becomes for Meta's Cloud API and Twilio's Messages API, the answers parsed, and every outcome
(sent, retry, failed, ambiguous, stop) from real provider error codes, credentials refused,
timeouts and refused connections. No database."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.sender.errors import (
    SendResult,
    classify_meta,
    classify_request_error,
    classify_twilio,
    retry_after_seconds,
)
from app.sender.outbound import OutboundMessage
from app.sender.providers import MetaCloudApi, Provider, TwilioMessages
from app.sender.transport import provider_client
from tests.support.fake_provider import (
    META_ACCESS_TOKEN,
    META_PHONE_NUMBER_ID,
    TWILIO_ACCOUNT_SID,
    TWILIO_API_TOKEN,
    TWILIO_FROM,
    FakeProvider,
    fake_provider,
)

RECIPIENT = "+250788123456"
DIGITS = "250788123456"
OTHER_DIGITS = "250788654321"
IMAGE_URL = "https://cdn.easymo.test/receipts/42.jpg"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProvider]:
    with fake_provider() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    return fake_server


def message(
    message_type: str, payload: dict[str, Any], *, id_: int = 42, to: str = RECIPIENT
) -> OutboundMessage:
    return OutboundMessage(id_, to, message_type, payload)


def send(
    provider: Provider, outbound: OutboundMessage, timeout: httpx.Timeout | None = None
) -> SendResult:
    async def run() -> SendResult:
        # The sender's own client: httpx over app.sender.transport.
        async with provider_client(10, timeout or httpx.Timeout(5.0)) as client:
            return await provider.send(client, outbound)

    return asyncio.run(run())


def closed_port_url() -> str:
    """A loopback port nobody listens on: the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


TEMPLATE = {
    "name": "ride_receipt",
    "language": {"code": "rw"},
    "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "2,500 RWF"}]},
    ],
}
INTERACTIVE = {
    "type": "button",
    "header": {"type": "text", "text": "Ride"},
    "body": {"text": "Confirm your ride to Kimironko?"},
    "footer": {"text": "easyMO"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "confirm", "title": "Yes"}},
            {"type": "reply", "reply": {"id": "cancel", "title": "No"}},
        ]
    },
}
LOCATION = {
    "latitude": -1.9441,
    "longitude": 30.0619,
    "name": "Kigali Convention Centre",
    "address": "KG 2 Roundabout, Kigali",
}


# Meta: the request --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_type", "payload", "meta_type", "content"),
    [
        (
            "text",
            {"body": "Muraho! https://easymo.test", "preview_url": True},
            "text",
            {"body": "Muraho! https://easymo.test", "preview_url": True},
        ),
        ("template", TEMPLATE, "template", TEMPLATE),
        (
            "media",
            {"media_type": "image", "link": IMAGE_URL, "caption": "Your receipt"},
            "image",
            {"link": IMAGE_URL, "caption": "Your receipt"},
        ),
        (
            "media",
            {"media_type": "document", "id": "1037543291543636", "filename": "receipt.pdf"},
            "document",
            {"id": "1037543291543636", "filename": "receipt.pdf"},
        ),
        ("media", {"media_type": "audio", "id": "887"}, "audio", {"id": "887"}),
        ("interactive", INTERACTIVE, "interactive", INTERACTIVE),
        ("location", LOCATION, "location", LOCATION),
    ],
)
def test_meta_sends_each_type_as_its_own_object(
    fake: FakeProvider,
    message_type: str,
    payload: dict[str, Any],
    meta_type: str,
    content: dict[str, Any],
) -> None:
    result = send(fake.meta(), message(message_type, payload, id_=7001))

    assert result.outcome == "sent"
    (request,) = fake.requests
    assert request.provider == "meta"
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": DIGITS,
        "type": meta_type,
        meta_type: content,
        "biz_opaque_callback_data": "7001",
    }


def test_meta_posts_to_the_phone_numbers_messages_with_a_bearer_token(fake: FakeProvider) -> None:
    send(fake.meta(api_version="v22.0"), message("text", {"body": "Muraho"}))

    (request,) = fake.requests
    assert request.path == f"/v22.0/{META_PHONE_NUMBER_ID}/messages"
    assert request.headers["authorization"] == f"Bearer {META_ACCESS_TOKEN}"
    assert request.headers["content-type"] == "application/json"


def test_meta_success_is_the_wamid(fake: FakeProvider) -> None:
    wamid = "wamid.HBgMMjUwNzg4MTIzNDU2FQIAERgSRjQ0QkFFQjE2NzA3QjE1QkY3AA=="
    fake.fail(
        DIGITS,
        status=200,
        body={
            "messaging_product": "whatsapp",
            "contacts": [{"input": DIGITS, "wa_id": DIGITS}],
            "messages": [{"id": wamid, "message_status": "accepted"}],
        },
    )

    result = send(fake.meta(), message("template", TEMPLATE))

    assert result == SendResult("sent", "meta", wamid)


def test_the_sandbox_answers_each_send_with_a_fresh_wamid(fake: FakeProvider) -> None:
    results = [send(fake.meta(), message("text", {"body": f"#{n}"})) for n in range(3)]

    ids = [result.provider_message_id or "" for result in results]
    assert all(wamid.startswith("wamid.") for wamid in ids)
    assert len(set(ids)) == 3


# Twilio: the request ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_type", "payload", "fields"),
    [
        ("text", {"body": "Muraho", "preview_url": False}, {"Body": "Muraho"}),
        (
            "media",
            {"media_type": "image", "link": IMAGE_URL, "caption": "Your receipt"},
            {"MediaUrl": IMAGE_URL, "Body": "Your receipt"},
        ),
        ("media", {"media_type": "video", "link": IMAGE_URL}, {"MediaUrl": IMAGE_URL}),
        (
            "location",
            LOCATION,
            {
                "Body": "Kigali Convention Centre\nKG 2 Roundabout, Kigali",
                "PersistentAction": "geo:-1.9441,30.0619",
            },
        ),
        (
            "location",
            {"latitude": -1.95, "longitude": 30.06},
            {"Body": "-1.95,30.06", "PersistentAction": "geo:-1.95,30.06"},
        ),
        (
            "template",
            TEMPLATE
            | {
                "content_sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e",
                "content_variables": {"1": "2,500 RWF", "2": "Kimironko"},
            },
            {
                "ContentSid": "HXb5b62575e6e4ff6129ad7c8efe1f983e",
                "ContentVariables": '{"1":"2,500 RWF","2":"Kimironko"}',
            },
        ),
        (
            "template",
            {"name": "welcome", "language": {"code": "en"}, "content_sid": "HX00ff"},
            {"ContentSid": "HX00ff", "ContentVariables": "{}"},
        ),
    ],
)
def test_twilio_sends_each_type_as_form_fields(
    fake: FakeProvider, message_type: str, payload: dict[str, Any], fields: dict[str, str]
) -> None:
    result = send(fake.twilio(), message(message_type, payload))

    assert result.outcome == "sent"
    (request,) = fake.requests
    assert request.provider == "twilio"
    assert (
        request.form == {"To": f"whatsapp:{RECIPIENT}", "From": f"whatsapp:{TWILIO_FROM}"} | fields
    )


def test_twilio_posts_to_the_accounts_messages_with_basic_auth(fake: FakeProvider) -> None:
    send(fake.twilio(), message("text", {"body": "Muraho"}))

    (request,) = fake.requests
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json"
    credentials = base64.b64encode(f"{TWILIO_ACCOUNT_SID}:{TWILIO_API_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {credentials}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


def test_twilio_success_is_the_message_sid(fake: FakeProvider) -> None:
    fake.fail(DIGITS, status=201, body={"sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f"})
    assert send(fake.twilio(), message("text", {"body": "Muraho"})) == SendResult(
        "sent", "twilio", "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    )

    result = send(fake.twilio(), message("text", {"body": "Muraho"}))
    sid = result.provider_message_id or ""
    assert sid.startswith("SM")
    assert len(sid) == 34
    int(sid[2:], 16)


@pytest.mark.parametrize(
    ("message_type", "payload", "error_code"),
    [
        ("media", {"media_type": "image", "id": "1037543291543636"}, "unsupported_by_provider"),
        ("interactive", INTERACTIVE, "unsupported_by_provider"),
        ("template", TEMPLATE, "unsupported_by_provider"),
        ("sticker", {"id": "1"}, "unsupported_type"),
        ("media", {"media_type": "hologram", "link": IMAGE_URL}, "invalid_payload"),
    ],
)
def test_what_twilio_cannot_carry_fails_without_a_request(
    fake: FakeProvider, message_type: str, payload: dict[str, Any], error_code: str
) -> None:
    result = send(fake.twilio(), message(message_type, payload))

    assert result.outcome == "failed"
    assert result.error_code == error_code
    assert result.error
    assert fake.requests == []


@pytest.mark.parametrize(
    ("message_type", "payload"),
    [
        ("media", {"media_type": "image", "caption": "no source"}),
        ("media", {"link": IMAGE_URL}),
        ("carousel", {"cards": []}),
    ],
)
def test_a_payload_meta_cannot_carry_fails_without_a_request(
    fake: FakeProvider, message_type: str, payload: dict[str, Any]
) -> None:
    result = send(fake.meta(), message(message_type, payload))

    assert result.outcome == "failed"
    assert fake.requests == []


# Outcomes from the providers' error codes ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "http_status", "outcome"),
    [
        (130429, 400, "retry"),  # throughput
        (131056, 400, "retry"),  # pair rate limit
        (131000, 500, "retry"),  # something went wrong
        (133004, 503, "retry"),  # server temporarily unavailable
        (4, 400, "retry"),  # app rate limit
        (80007, 400, "retry"),  # WABA rate limit
        (131026, 400, "failed"),  # undeliverable
        (131047, 400, "failed"),  # 24-hour window closed
        (132001, 404, "failed"),  # template does not exist
        (100, 400, "failed"),  # invalid parameter
        (131026, 500, "failed"),  # a permanent code wins over a 5xx
        (190, 401, "stop"),  # access token expired
        (131031, 403, "stop"),  # account locked
        (368, 403, "stop"),  # blocked for policy violations
        (10, 403, "stop"),  # permission denied
        (200, 403, "stop"),  # permission
        (987654, 400, "failed"),  # unknown 4xx
        (987654, 502, "retry"),  # unknown 5xx
        (987654, 429, "retry"),  # unknown, rate limited
    ],
)
def test_meta_error_codes_decide_the_outcome(
    fake: FakeProvider, code: int, http_status: int, outcome: str
) -> None:
    fake.fail(DIGITS, **fake.meta_error(code, "scripted", http_status, subcode=2494010))

    result = send(fake.meta(), message("text", {"body": "Muraho"}))

    assert result.outcome == outcome
    assert result.provider == "meta"
    assert result.error_code == str(code)
    assert result.provider_message_id is None
    assert "scripted" in (result.error or "")
    assert "subcode 2494010" in (result.error or "")


def test_a_meta_error_reports_its_details_and_trace(fake: FakeProvider) -> None:
    answer = fake.meta_error(131047, "Re-engagement message", details="More than 24 hours")
    fake.fail(DIGITS, **answer)

    result = send(fake.meta(), message("text", {"body": "Muraho"}))

    trace = answer["body"]["error"]["fbtrace_id"]
    assert result == SendResult(
        "failed",
        "meta",
        error_code="131047",
        error=f"Re-engagement message; More than 24 hours; fbtrace_id {trace}",
    )


def test_meta_unknown_phone_number_id_stops_the_line() -> None:
    """Code 100 subcode 33: the phone number id does not exist for this token."""
    assert classify_meta(400, 100, 33) == "stop"
    assert classify_meta(400, 100) == "failed"


@pytest.mark.parametrize(
    ("code", "http_status", "outcome"),
    [
        (20429, 429, "retry"),  # too many requests
        (63018, 429, "retry"),  # sender rate limit
        (63038, 429, "retry"),  # daily limit
        (21211, 400, "failed"),  # invalid To
        (21610, 400, "failed"),  # unsubscribed
        (63016, 400, "failed"),  # outside the 24-hour window
        (63024, 400, "failed"),  # invalid recipient
        (20404, 404, "failed"),  # resource not found
        (20003, 401, "stop"),  # authentication
        (63007, 400, "stop"),  # sender not found
        (21606, 400, "stop"),  # From not a valid sender
        (12345, 400, "failed"),  # unknown 4xx
        (12345, 503, "retry"),  # unknown 5xx
    ],
)
def test_twilio_error_codes_decide_the_outcome(
    fake: FakeProvider, code: int, http_status: int, outcome: str
) -> None:
    fake.fail(DIGITS, **fake.twilio_error(code, "scripted", http_status))

    result = send(fake.twilio(), message("text", {"body": "Muraho"}))

    assert (result.outcome, result.provider, result.error_code) == (outcome, "twilio", str(code))
    assert (result.provider_message_id, result.error) == (None, "scripted")


def test_a_refused_credential_stops_the_line(fake: FakeProvider) -> None:
    meta = send(fake.meta(access_token="expired"), message("text", {"body": "Muraho"}))
    twilio = send(fake.twilio(auth_token="rotated"), message("text", {"body": "Muraho"}))
    other_account = send(
        fake.twilio(account_sid="AC" + "f" * 32), message("text", {"body": "Muraho"})
    )

    assert (meta.outcome, meta.error_code) == ("stop", "190")
    assert (twilio.outcome, twilio.error_code) == ("stop", "20003")
    assert (other_account.outcome, other_account.error_code) == ("stop", "20003")


def test_a_bare_401_stops_the_line_and_a_bare_4xx_fails() -> None:
    assert classify_meta(401, None) == "stop"
    assert classify_twilio(401, None) == "stop"
    assert classify_meta(404, None) == "failed"
    assert classify_twilio(502, None) == "retry"


def test_canned_answers_go_to_their_recipient_and_run_out(fake: FakeProvider) -> None:
    fake.fail(DIGITS, **fake.meta_error(131056, "Pair rate limit hit"), times=2)

    outcomes = [
        send(fake.meta(), message("text", {"body": "1"})).outcome,
        send(fake.meta(), message("text", {"body": "2"}, to=f"+{OTHER_DIGITS}")).outcome,
        send(fake.meta(), message("text", {"body": "3"})).outcome,
        send(fake.meta(), message("text", {"body": "4"})).outcome,
    ]

    assert outcomes == ["retry", "sent", "retry", "sent"]


# Retry-After --------------------------------------------------------------------------------


def test_retry_after_is_honoured(fake: FakeProvider) -> None:
    fake.fail(
        DIGITS, **fake.meta_error(130429, "Rate limit hit", 429), headers={"Retry-After": "7"}
    )
    fake.fail(
        DIGITS,
        **fake.twilio_error(20429, "Too Many Requests", 429),
        headers={"Retry-After": "1.5"},
    )
    fake.fail(DIGITS, **fake.meta_error(131000, "Something went wrong", 500))

    meta = send(fake.meta(), message("text", {"body": "Muraho"}))
    twilio = send(fake.twilio(), message("text", {"body": "Muraho"}))
    without = send(fake.meta(), message("text", {"body": "Muraho"}))

    assert (meta.outcome, meta.retry_after_s) == ("retry", 7.0)
    assert (twilio.outcome, twilio.retry_after_s) == ("retry", 1.5)
    assert (without.outcome, without.retry_after_s) == ("retry", None)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Wed, 31 Dec 2025 23:59:00 GMT", now) == 0.0
    assert retry_after_seconds("-5", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


# Transport ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["meta", "twilio"])
def test_a_refused_connection_is_retried(fake: FakeProvider, provider: str) -> None:
    base_url = closed_port_url()
    chosen = fake.meta(base_url=base_url) if provider == "meta" else fake.twilio(base_url=base_url)

    result = send(chosen, message("text", {"body": "Muraho"}))

    assert (result.outcome, result.provider, result.error_code) == (
        "retry",
        provider,
        "ConnectError",
    )


@pytest.mark.parametrize("provider", ["meta", "twilio"])
def test_an_answer_slower_than_the_read_timeout_is_ambiguous(
    fake: FakeProvider, provider: str
) -> None:
    fake.delay(2.0, DIGITS)
    chosen = fake.meta() if provider == "meta" else fake.twilio()

    result = send(chosen, message("text", {"body": "Muraho"}), httpx.Timeout(5.0, read=0.2))

    # The provider had the whole request: it may well have sent the message.
    assert (result.outcome, result.error_code) == ("ambiguous", "ReadTimeout")
    assert [request.recipient for request in fake.requests] == [DIGITS]


def test_a_delay_within_the_timeout_is_only_slow(fake: FakeProvider) -> None:
    fake.delay(0.1)

    result = send(fake.meta(), message("text", {"body": "Muraho"}))

    assert result.outcome == "sent"


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (httpx.ConnectError("refused"), "retry"),
        (httpx.ConnectTimeout("connect"), "retry"),
        (httpx.PoolTimeout("pool"), "retry"),
        (httpx.ReadTimeout("read"), "ambiguous"),
        (httpx.WriteTimeout("write"), "ambiguous"),
        (httpx.ReadError("reset"), "ambiguous"),
        (httpx.WriteError("broken pipe"), "ambiguous"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response"), "ambiguous"),
        (httpx.UnsupportedProtocol("ftp"), "stop"),
    ],
)
def test_transport_errors_are_retried_only_when_nothing_left(
    error: httpx.RequestError, outcome: str
) -> None:
    assert classify_request_error(error) == outcome


@pytest.mark.parametrize("provider", ["meta", "twilio"])
@pytest.mark.parametrize(
    ("status", "content", "outcome", "error_code"),
    [
        (200, b"<html>OK</html>", "ambiguous", "unparseable_response"),
        (201, b'{"messages": []}', "ambiguous", "unparseable_response"),
        # An id longer than the queue stores (255) would make the whole batch's record fail.
        (
            200,
            b'{"messages": [{"id": "' + b"w" * 256 + b'"}], "sid": "' + b"S" * 256 + b'"}',
            "ambiguous",
            "unparseable_response",
        ),
        (502, b"<html>Bad Gateway</html>", "retry", "http_502"),
        (403, b"Forbidden", "failed", "http_403"),
    ],
)
def test_answers_without_a_provider_body(
    provider: str, status: int, content: bytes, outcome: str, error_code: str
) -> None:
    """As a proxy or a broken answer would come: nothing the provider's shapes describe."""
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=content))
    chosen: Provider = (
        MetaCloudApi(base_url="https://graph.test", phone_number_id="1", access_token="t")
        if provider == "meta"
        else TwilioMessages(account_sid="AC1", auth_token="t", from_number=TWILIO_FROM)
    )

    async def run() -> SendResult:
        async with httpx.AsyncClient(transport=transport) as client:
            return await chosen.send(client, message("text", {"body": "Muraho"}))

    result = asyncio.run(run())

    assert (result.outcome, result.provider, result.error_code) == (outcome, provider, error_code)


# The sandbox itself -------------------------------------------------------------------------


def test_the_sandbox_counts_requests_in_flight_per_recipient(fake: FakeProvider) -> None:
    fake.delay(0.2, DIGITS)

    async def run() -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            meta = fake.meta()
            together = [meta.send(client, message("text", {"body": str(n)})) for n in range(3)]
            await asyncio.gather(*together)
            for n in range(2):
                await meta.send(client, message("text", {"body": str(n)}, to=f"+{OTHER_DIGITS}"))

    asyncio.run(run())

    assert fake.max_in_flight_per_recipient() == {DIGITS: 3, OTHER_DIGITS: 1}


def test_the_sandbox_refuses_a_malformed_request(fake: FakeProvider) -> None:
    response = httpx.post(
        f"{fake.url}/v21.0/{META_PHONE_NUMBER_ID}/messages",
        json={"to": DIGITS, "type": "text", "text": {"body": "no product"}},
        headers={"Authorization": f"Bearer {META_ACCESS_TOKEN}"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100
    assert json.loads(response.text)["error"]["type"] == "OAuthException"

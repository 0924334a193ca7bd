"""The WhatsApp webhooks as Meta and Twilio call them: signed requests against a real edge and
database; every refusal leaves message_tracking as it was."""

from __future__ import annotations

import hashlib
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
import pytest
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from tests.support.db import query
from tests.support.edge import (
    PUBLIC_BASE_URL,
    TWILIO_AUTH_TOKEN,
    WHATSAPP_APP_SECRET,
    WHATSAPP_VERIFY_TOKEN,
    Edge,
    edge_settings,
    running_edge,
)
from tests.support.whatsapp import meta_text, meta_webhook

WAMID = "wamid.HBgLMjUwNzg4MTIzNDU2FQIAEhgUM0VCMDBBQjk5"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
SUMMARY_KEYS = {
    "messages_stored",
    "duplicates",
    "statuses_applied",
    "statuses_ignored",
    "statuses_pending",
    "dead_lettered",
}


# Meta ------------------------------------------------------------------------------------------


def meta_event(wamid: str = WAMID, text: str = "Muraho", obj: str = "whatsapp_business_account"):
    return meta_webhook(
        contacts=[
            {
                "profile": {"name": "Aline"},
                "wa_id": "250788123456",
                "user_id": "RW.7047823173309372",
            }
        ],
        messages=[
            meta_text("250788123456", wamid, 1767225600, text)
            | {"from_user_id": "RW.7047823173309372"}
        ],
        object_=obj,
    )


def as_meta_sends_it(event: dict[str, Any]) -> bytes:
    """Meta's serialisation: non-ASCII as \\u escapes (\\u00e9) and every slash escaped,
    which re-serialising the parsed JSON would not reproduce, so a signature checked over
    anything but the raw bytes fails."""
    return json.dumps(event).replace("/", "\\/").encode()


def meta_signature(body: bytes, secret: str = WHATSAPP_APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_meta(
    edge: Edge,
    body: bytes,
    *,
    signature: str | bytes | None = "sign",
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent: dict[str, str | bytes] = {"Content-Type": content_type, **(headers or {})}
    if signature == "sign":
        signature = meta_signature(body)
    if signature is not None:
        sent["X-Hub-Signature-256"] = signature
    return httpx.post(edge.url + "/webhooks/whatsapp", content=body, headers=sent)


def messages_stored(database_url: str) -> int:
    return query(database_url, "select count(*) from public.message_tracking")[0][0]


def dead_letters(database_url: str) -> list[tuple[Any, ...]]:
    return query(database_url, "select kind, detail from private.whatsapp_dead_letters")


def test_handshake_echoes_the_challenge_for_the_verify_token(edge):
    response = httpx.get(
        edge.url + "/webhooks/whatsapp",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": WHATSAPP_VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {
            "hub.mode": "unsubscribe",
            "hub.verify_token": WHATSAPP_VERIFY_TOKEN,
            "hub.challenge": "1",
        },
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "t\u00e9st", "hub.challenge": "1"},
        {},
    ],
    ids=["wrong-token", "wrong-mode", "no-token", "non-ascii-token", "nothing"],
)
def test_handshake_refuses_anything_else(edge, params):
    response = httpx.get(edge.url + "/webhooks/whatsapp", params=params)
    assert response.status_code == 403
    assert "1" not in response.text


def test_a_signed_event_is_stored_with_its_text_as_sent(edge, database_url):
    body = as_meta_sends_it(meta_event(text="caf\u00e9 / ok"))
    assert b"caf\\u00e9 \\/ ok" in body  # the raw bytes carry the escapes Meta writes

    response = post_meta(edge, body, headers={"X-Correlation-Id": "corr-meta-1"})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "messages_stored": 1,
        "duplicates": 0,
        "statuses_applied": 0,
        "statuses_ignored": 0,
        "statuses_pending": 0,
        "dead_lettered": 0,
    }
    assert query(
        database_url,
        "select direction, provider, message_type, body, correlation_id"
        " from public.message_tracking where wamid = %s",
        (WAMID,),
    ) == [("INBOUND", "meta", "text", "caf\u00e9 / ok", "corr-meta-1")]


def test_without_a_correlation_id_the_request_id_is_passed(edge, database_url):
    response = post_meta(edge, as_meta_sends_it(meta_event()))
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    assert query(
        database_url,
        "select correlation_id from public.message_tracking where wamid = %s",
        (WAMID,),
    ) == [(request_id,)]


def test_the_same_event_sent_again_is_stored_once(edge, database_url):
    body = as_meta_sends_it(meta_event())
    assert post_meta(edge, body).json()["messages_stored"] == 1
    again = post_meta(edge, body)
    assert again.status_code == 200
    assert again.json()["duplicates"] == 1
    assert messages_stored(database_url) == 1


def test_five_concurrent_deliveries_of_one_event_all_succeed_and_store_one_row(edge, database_url):
    body = as_meta_sends_it(meta_event())
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(lambda _: post_meta(edge, body), range(5)))
    assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
    summaries = [r.json() for r in responses]
    assert sum(s["messages_stored"] for s in summaries) == 1
    assert sum(s["duplicates"] for s in summaries) == 4
    assert messages_stored(database_url) == 1


SIGNED = as_meta_sends_it(meta_event())


def _signed_then_tampered() -> tuple[bytes, str]:
    signature = meta_signature(SIGNED)
    return SIGNED.replace(b"Muraho", b"Murahp"), signature


def _signed(body: bytes) -> tuple[bytes, str]:
    return body, meta_signature(body)


@pytest.mark.parametrize(
    ("body", "signature"),
    [
        (SIGNED, None),
        (SIGNED, "sha256=" + "0" * 64),
        (SIGNED, meta_signature(SIGNED, "another-secret")),
        (SIGNED, meta_signature(SIGNED).removeprefix("sha256=")),
        (SIGNED, "sha256=\u00e9".encode("latin-1")),
        _signed_then_tampered(),
    ],
    ids=[
        "no-signature",
        "wrong-signature",
        "other-secret",
        "no-sha256-prefix",
        "non-ascii-signature",
        "tampered-body",
    ],
)
def test_unsigned_events_are_refused_and_store_nothing(edge, database_url, body, signature):
    response = post_meta(edge, body, signature=signature)
    assert response.status_code == 401, response.text
    assert "error" in response.json()
    assert messages_stored(database_url) == 0
    assert dead_letters(database_url) == []


@pytest.mark.parametrize(
    ("body", "content_type", "kept_as"),
    [
        (b'{"object": "whatsapp_business_account",', "application/json", "bytes"),
        (b"\xff\xfe{}", "application/json", "bytes"),
        (b'["whatsapp_business_account"]', "application/json", "json"),
        (as_meta_sends_it(meta_event(obj="page")), "application/json", "json"),
        (b'{"entry": []}', "application/json", "json"),
        (b'{"object": "whatsapp_business_account", "n": NaN}', "application/json", "bytes"),
        (SIGNED, "text/plain", "json"),
        (urlencode({"object": "whatsapp_business_account"}).encode(), "", "bytes"),
        (b'{"object": "whatsapp_business_account", "n": 1e200000}', "application/json", "bytes"),
    ],
    ids=[
        "malformed-json",
        "not-utf8",
        "not-an-object",
        "object-page",
        "no-object",
        "nan",
        "text-plain",
        "form-encoded",
        "number-postgres-cannot-hold",
    ],
)
def test_a_signed_body_that_cannot_be_ingested_is_kept_whole_and_answered_200(
    edge, database_url, body, content_type, kept_as
):
    """Meta signed it, so no retry would change it: kept as a dead letter, never retried."""
    response = post_meta(edge, body, content_type=content_type)
    assert response.status_code == 200, response.text
    assert response.json()["dead_lettered"] == 1
    assert messages_stored(database_url) == 0
    [(kind, reason, raw, raw_body)] = query(
        database_url,
        "select kind, reason, raw, raw_body from private.whatsapp_dead_letters",
    )
    assert (kind, reason) == ("payload", "invalid_payload")
    if kept_as == "bytes":
        assert (raw, bytes(raw_body)) == (None, body)
    else:
        assert (raw, raw_body) == (json.loads(body), None)


def test_a_signature_in_upper_case_hex_is_accepted(edge, database_url):
    signature = "sha256=" + meta_signature(SIGNED).removeprefix("sha256=").upper()
    assert post_meta(edge, SIGNED, signature=signature).status_code == 200
    assert messages_stored(database_url) == 1


def test_a_body_over_the_limit_is_refused_declared_or_streamed(server, database, database_url):
    settings = edge_settings(server, database, webhook_max_body_bytes=len(SIGNED) - 1)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(SIGNED)}

    def chunks():
        yield SIGNED[:100]
        yield SIGNED[100:]

    with running_edge(settings) as edge:
        declared = httpx.post(edge.url + "/webhooks/whatsapp", content=SIGNED, headers=headers)
        streamed = httpx.post(edge.url + "/webhooks/whatsapp", content=chunks(), headers=headers)
        twilio = httpx.post(
            edge.url + "/webhooks/twilio",
            content=b"Body=" + b"x" * len(SIGNED),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert twilio.status_code == 413
    assert messages_stored(database_url) == 0


def test_a_message_that_cannot_be_stored_is_kept_and_the_rest_of_its_batch_stored(
    edge, database_url
):
    """Before: the whole batch was a 400 (no id) or a 503 (a 300-character wamid, retried for
    days), and the good message beside it was never stored."""
    good = meta_text("250788123456", "wamid.GOOD", 1767225600, "good")
    no_id = meta_text("250788123457", "x", 1767225600, "no id")
    del no_id["id"]
    long_id = meta_text("250788123458", "w" * 300, 1767225600, "long id")
    not_a_phone = meta_text("not-a-phone", "wamid.NOPHONE", 1767225600, "who")
    body = as_meta_sends_it(meta_webhook(messages=[good, no_id, long_id, not_a_phone]))

    response = post_meta(edge, body)

    assert response.status_code == 200, response.text
    assert (response.json()["messages_stored"], response.json()["dead_lettered"]) == (1, 3)
    assert query(database_url, "select wamid from public.message_tracking") == [("wamid.GOOD",)]
    assert query(
        database_url,
        "select count(*) from public.conversation_mappings where wa_id = 'not-a-phone'",
    ) == [(0,)]
    kept = query(
        database_url,
        "select detail, sqlstate, raw -> 'messages' -> 0 -> 'text' ->> 'body'"
        " from private.whatsapp_dead_letters order by raw -> 'messages' -> 0 -> 'text' ->> 'body'",
    )
    assert kept == [
        ("the message id is longer than 255 characters", "22023", "long id"),
        ("the message has no id", "22023", "no id"),
        ("the sender is not a phone number and the message has no from_user_id", "22023", "who"),
    ]
    # Meta delivers the same again: stored once, kept once (seen twice), nothing doubled.
    again = post_meta(edge, body)
    assert again.json()["duplicates"] == 1
    assert query(database_url, "select sum(times_seen) from private.whatsapp_dead_letters") == [
        (6,)
    ]
    assert messages_stored(database_url) == 1


def test_a_message_with_a_number_postgres_cannot_hold_is_kept_and_the_rest_stored(
    edge, database_url
):
    """Before: 22003 for the whole body, a 503, and Meta retried it for days."""
    body = (
        b'{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages",'
        b'"value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"PN"},'
        b'"contacts":[{"wa_id":"250788123456","profile":{"name":"Aline"}}],"messages":['
        b'{"from":"250788123456","id":"wamid.FAR","timestamp":"1767225600","type":"location",'
        b'"location":{"latitude":1e200000,"longitude":30.06}},'
        b'{"from":"250788123457","id":"wamid.NEAR","timestamp":"1767225600","type":"location",'
        b'"location":{"latitude":-1.9441,"longitude":30.0619000000000000000001}}]}}]}]}'
    )
    response = post_meta(edge, body)

    assert response.status_code == 200, response.text
    assert (response.json()["messages_stored"], response.json()["dead_lettered"]) == (1, 1)
    # The number goes on exactly as signed: never through a float.
    assert query(database_url, "select wamid, content::text from public.message_tracking") == [
        ("wamid.NEAR", '{"latitude": -1.9441, "longitude": 30.0619000000000000000001}')
    ]
    [(kind, detail, raw, raw_body)] = query(
        database_url, "select kind, detail, raw, raw_body from private.whatsapp_dead_letters"
    )
    assert (kind, raw) == ("payload", None)
    assert detail == "the message holds a number beyond what Postgres can store (1e200000)"
    # Kept exactly: the number as written, in JSON text that jsonb cannot read.
    assert b'"latitude":1e200000' in bytes(raw_body)
    value = json.loads(bytes(raw_body), parse_float=str)["entry"][0]["changes"][0]["value"]
    assert value["messages"][0]["id"] == "wamid.FAR"
    assert value["contacts"] == [{"wa_id": "250788123456", "profile": {"name": "Aline"}}]


def test_a_message_with_text_postgres_cannot_hold_is_kept_and_the_rest_stored(edge, database_url):
    """Before: a 400 for the whole body, and the good message beside it was never stored."""
    good = meta_text("250788123456", "wamid.FINE", 1767225600, "fine")
    nul = meta_text("250788123457", "wamid.NUL", 1767225600, "nul \u0000 byte")
    surrogate = meta_text("250788123458", "wamid.SURROGATE", 1767225600, "lone \ud800")
    response = post_meta(edge, as_meta_sends_it(meta_webhook(messages=[good, nul, surrogate])))

    assert response.status_code == 200, response.text
    assert (response.json()["messages_stored"], response.json()["dead_lettered"]) == (1, 2)
    assert query(database_url, "select wamid from public.message_tracking") == [("wamid.FINE",)]
    kept = query(
        database_url,
        "select detail, raw, raw_body from private.whatsapp_dead_letters order by raw_body",
    )
    # Kept exactly, as JSON text jsonb cannot read: the escapes stand for the characters.
    texts = [
        json.loads(bytes(raw_body))["entry"][0]["changes"][0]["value"] for *_, raw_body in kept
    ]
    assert sorted(value["messages"][0]["text"]["body"] for value in texts) == [
        "lone \ud800",
        "nul \u0000 byte",
    ]
    assert {detail for detail, *_ in kept} == {
        "the message holds text Postgres cannot store (\\u0000 or a lone surrogate)"
    }
    assert {raw for _, raw, _ in kept} == {None}


def test_a_twilio_message_with_a_300_character_sid_is_kept_not_retried(edge, database_url):
    response = post_twilio(edge, {**TWILIO_MESSAGE, "MessageSid": "SM" + "0" * 298})
    assert response.status_code == 200, response.text
    assert query(
        database_url, "select kind, detail, raw ->> 'Body' from private.whatsapp_dead_letters"
    ) == [("message", "the message id is longer than 255 characters", TWILIO_MESSAGE["Body"])]
    assert messages_stored(database_url) == 0


def test_a_lock_timeout_is_a_503_and_the_retry_stores_it(server, database, database_url):
    """A fault a retry cures is the one thing still answered 503."""
    # A role's setting is the cluster's, shared by every test's clone: undone whatever happens.
    query(database_url, "alter role service_role set lock_timeout = '200ms'")
    try:
        with (
            running_edge(edge_settings(server, database)) as edge,
            psycopg.connect(database_url) as locker,
        ):
            locker.execute("lock table public.message_tracking in access exclusive mode")
            blocked = post_meta(edge, SIGNED)
            locker.rollback()
            retried = post_meta(edge, SIGNED)
    finally:
        query(database_url, "alter role service_role reset lock_timeout")
    assert blocked.status_code == 503, blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    assert retried.status_code == 200, retried.text
    assert messages_stored(database_url) == 1
    assert dead_letters(database_url) == []


def test_an_unreachable_database_is_a_503_with_retry_after(server, database):
    settings = edge_settings(
        server,
        database,
        edge_database_url="postgresql://authenticator@127.0.0.1:1/nowhere",
        pool_timeout_seconds=0.5,
    )
    with running_edge(settings) as edge:
        meta = post_meta(edge, SIGNED)
        twilio = post_twilio(edge, {"MessageSid": "SM1", "Body": "hi"})
    for response in (meta, twilio):
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) > 0


def test_a_database_error_is_a_503_and_nothing_is_stored(edge, database_url):
    query(
        database_url,
        "revoke execute on function public.ingest_whatsapp_webhook(text, jsonb, text)"
        " from service_role",
    )
    response = post_meta(edge, SIGNED)
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert messages_stored(database_url) == 0


def test_the_call_runs_as_service_role_with_the_request_headers(edge, database_url):
    """A stand-in for the function records what it saw, as the real one would read it."""
    query(
        database_url,
        """
        create table public.seen (role text, claims text, headers jsonb, correlation_id text);
        create or replace function public.ingest_whatsapp_webhook(
            p_provider text, p_payload jsonb, p_correlation_id text default null
        ) returns jsonb language sql set search_path = '' as $$
            insert into public.seen values (
                current_user,
                current_setting('request.jwt.claims', true),
                current_setting('request.headers', true)::jsonb,
                p_correlation_id
            );
            select '{"messages_stored": 0}'::jsonb
        $$;
        grant insert on public.seen to service_role;
        """,
    )
    response = post_meta(edge, SIGNED, headers={"X-Request-Id": "req-42", "Cookie": "a=b"})
    assert response.status_code == 200, response.text
    [(role, claims, headers, correlation_id)] = query(database_url, "select * from public.seen")
    assert role == "service_role"
    assert json.loads(claims) == {"role": "service_role"}
    assert headers["x-request-id"] == "req-42"
    assert headers["x-hub-signature-256"] == meta_signature(SIGNED)
    assert "cookie" not in headers
    assert correlation_id == "req-42"


def test_an_unset_secret_refuses_every_request(server, database, database_url):
    settings = edge_settings(
        server,
        database,
        whatsapp_app_secret=None,
        whatsapp_verify_token=SecretStr(""),  # empty is unset, not a key anybody can match
        twilio_auth_token=None,
    )
    with running_edge(settings) as edge:
        handshake = httpx.get(
            edge.url + "/webhooks/whatsapp",
            params={"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
        )
        meta = post_meta(edge, SIGNED, signature=meta_signature(SIGNED, ""))
        twilio = post_twilio(edge, {"MessageSid": "SM1", "Body": "hi"}, token="")
    assert handshake.status_code == 403
    assert meta.status_code == 401
    assert twilio.status_code == 403
    assert messages_stored(database_url) == 0


def test_webhook_outcomes_are_counted_by_provider(edge):
    post_meta(edge, SIGNED)
    post_meta(edge, SIGNED, signature=None)
    post_twilio(edge, {"MessageSid": "SM1", "Body": "hi"}, token="wrong")
    httpx.post(edge.url + "/webhooks/unknown-a")
    text = httpx.get(edge.url + "/metrics").text
    for line in (
        'edge_webhook_requests_total{outcome="accepted",provider="meta"} 1.0',
        'edge_webhook_requests_total{outcome="bad_signature",provider="meta"} 1.0',
        'edge_webhook_requests_total{outcome="bad_signature",provider="twilio"} 1.0',
        'edge_http_requests_total{method="POST",route="/webhooks/whatsapp",status="200"} 1.0',
    ):
        assert line in text
    assert "unknown-a" not in text


# Twilio ----------------------------------------------------------------------------------------

TWILIO_MESSAGE = {
    "SmsMessageSid": "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "MessageSid": "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "AccountSid": "AC00000000000000000000000000000000",
    "From": "whatsapp:+250788123456",
    "To": "whatsapp:+15550001111",
    "Body": "Muraho caf\u00e9 & 1+1=2",
    "NumMedia": "0",
    "ProfileName": "Aline",
    "WaId": "250788123456",
    "SmsStatus": "received",
    "NumSegments": "1",
    "ApiVersion": "2010-04-01",
}


def post_twilio(
    edge: Edge,
    fields: dict[str, str] | list[tuple[str, str]],
    *,
    token: str = TWILIO_AUTH_TOKEN,
    signed_url: str | None = None,
    path: str = "/webhooks/twilio",
    signature: str | bytes | None = None,
) -> httpx.Response:
    """Signed as Twilio signs: the URL it called (behind our proxy, PUBLIC_BASE_URL + path)
    and every field."""
    pairs = list(fields.items()) if isinstance(fields, dict) else fields
    params: dict[str, list[str]] = {}
    for key, value in pairs:
        params.setdefault(key, []).append(value)
    if signature is None:
        signature = RequestValidator(token).compute_signature(
            signed_url or PUBLIC_BASE_URL + path, _MultiDict(params)
        )
    return httpx.post(
        edge.url + path,
        content=urlencode(pairs).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Twilio-Signature": signature,
        },
    )


class _MultiDict(dict):
    def getlist(self, key: str) -> list[str]:
        return self[key]


def tracked(database_url: str, wamid: str) -> list[tuple[Any, ...]]:
    return query(
        database_url,
        "select direction, provider, message_type, body, media"
        " from public.message_tracking where wamid = %s",
        (wamid,),
    )


def test_a_twilio_message_is_stored_and_answered_with_empty_twiml(edge, database_url):
    response = post_twilio(edge, TWILIO_MESSAGE)
    assert response.status_code == 200, response.text
    assert response.text == EMPTY_TWIML
    assert response.headers["content-type"].startswith("text/xml")
    assert tracked(database_url, TWILIO_MESSAGE["MessageSid"]) == [
        ("INBOUND", "twilio", "text", "Muraho caf\u00e9 & 1+1=2", None)
    ]


def test_a_twilio_media_message_is_stored_with_its_media(edge, database_url):
    fields = {
        **TWILIO_MESSAGE,
        "MessageSid": "MM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "Body": "",
        "NumMedia": "1",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME0",
        "MediaContentType0": "image/jpeg",
    }
    response = post_twilio(edge, fields)
    assert response.status_code == 200, response.text
    [(direction, provider, message_type, body, media)] = tracked(database_url, fields["MessageSid"])
    assert (direction, provider, message_type, body) == ("INBOUND", "twilio", "image", None)
    assert media["url"] == fields["MediaUrl0"]
    assert media["mime_type"] == "image/jpeg"


def test_a_twilio_status_callback_is_applied_or_kept_for_its_message(edge, database_url):
    fields = {
        "MessageSid": "SMffffffffffffffffffffffffffffffff",
        "MessageStatus": "delivered",
        "AccountSid": "AC00000000000000000000000000000000",
        "From": "whatsapp:+15550001111",
        "To": "whatsapp:+250788123456",
        "ApiVersion": "2010-04-01",
    }
    response = post_twilio(edge, fields)
    assert response.status_code == 200, response.text
    assert response.text == EMPTY_TWIML
    assert messages_stored(database_url) == 0  # a status is not a message
    assert query(
        database_url,
        "select status from private.pending_message_statuses where wamid = %s",
        (fields["MessageSid"],),
    ) == [("delivered",)]


def test_a_repeated_field_is_signed_with_every_value_and_stored_with_the_last(edge, database_url):
    pairs = [*TWILIO_MESSAGE.items(), ("Body", "second")]
    response = post_twilio(edge, pairs)
    assert response.status_code == 200, response.text
    assert tracked(database_url, TWILIO_MESSAGE["MessageSid"])[0][3] == "second"


def test_the_signed_url_includes_the_query_string(edge, database_url):
    path = "/webhooks/twilio?tenant=kigali"
    assert post_twilio(edge, TWILIO_MESSAGE, path=path).status_code == 200
    assert messages_stored(database_url) == 1


@pytest.mark.parametrize(
    "tamper",
    ["wrong-token", "no-signature", "edge-url", "other-path", "field-changed", "garbage"],
)
def test_a_twilio_request_without_a_valid_signature_is_403(edge, database_url, tamper):
    if tamper == "wrong-token":
        response = post_twilio(edge, TWILIO_MESSAGE, token="not-the-token")
    elif tamper == "no-signature":
        response = httpx.post(
            edge.url + "/webhooks/twilio",
            data=TWILIO_MESSAGE,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    elif tamper == "edge-url":  # signed for the address the edge sees, not the public one
        response = post_twilio(edge, TWILIO_MESSAGE, signed_url=edge.url + "/webhooks/twilio")
    elif tamper == "other-path":
        response = post_twilio(edge, TWILIO_MESSAGE, signed_url=PUBLIC_BASE_URL + "/other")
    elif tamper == "field-changed":
        signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(
            PUBLIC_BASE_URL + "/webhooks/twilio", TWILIO_MESSAGE
        )
        changed = {**TWILIO_MESSAGE, "Body": "send money to 0788"}
        response = post_twilio(edge, changed, signature=signature)
    else:
        response = post_twilio(edge, TWILIO_MESSAGE, signature="\u00e9t\u00e9==".encode("latin-1"))
    assert response.status_code == 403, response.text
    assert messages_stored(database_url) == 0


def test_without_a_public_base_url_the_request_url_is_what_is_signed(
    server, database, database_url
):
    with running_edge(edge_settings(server, database, public_base_url=None)) as edge:
        own = post_twilio(edge, TWILIO_MESSAGE, signed_url=edge.url + "/webhooks/twilio")
        public = post_twilio(edge, TWILIO_MESSAGE)
    assert own.status_code == 200, own.text
    assert public.status_code == 403
    assert messages_stored(database_url) == 1


def test_a_twilio_body_that_is_not_a_form_is_refused(edge, database_url):
    as_json = httpx.post(
        edge.url + "/webhooks/twilio",
        json=TWILIO_MESSAGE,
        headers={"X-Twilio-Signature": "x"},
    )
    bad_utf8 = httpx.post(
        edge.url + "/webhooks/twilio",
        content=b"Body=%FF%FE",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert as_json.status_code == 415
    assert bad_utf8.status_code == 400
    assert messages_stored(database_url) == 0


def test_a_signed_twilio_field_with_a_nul_character_is_kept_as_a_dead_letter(edge, database_url):
    response = post_twilio(edge, {**TWILIO_MESSAGE, "Body": "a\u0000b"})
    assert response.status_code == 200, response.text
    assert response.text == EMPTY_TWIML
    [(kind, raw_body)] = query(
        database_url, "select kind, raw_body from private.whatsapp_dead_letters"
    )
    assert kind == "payload"
    assert b"Body=a%00b" in bytes(raw_body)
    assert messages_stored(database_url) == 0

"""Meta WhatsApp webhooks end to end: signed POSTs to a real edge, then what the database stored.
Every message type Meta sends (and one it may send tomorrow), a batch of several entries,
changes and contacts, and outbound statuses arriving out of order, twice, after a failure or
before their message. tests/sql/test_whatsapp_ingest_*.sql test the SQL itself in depth; this
file checks that the edge hands it Meta's bytes and answers with its summary."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any, NamedTuple

import httpx
import pytest

from tests.py.test_webhooks import as_meta_sends_it, messages_stored, post_meta
from tests.support.db import query
from tests.support.edge import Edge
from tests.support.whatsapp import (
    BUSINESS_NUMBER,
    meta_message,
    meta_status,
    meta_text,
    meta_webhook,
)

SENT_AT = 1767225600  # 2026-01-01 00:00:00 UTC; Meta's timestamps are Unix seconds
BUSINESS = BUSINESS_NUMBER["display_phone_number"]


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def summary(
    *,
    stored: int = 0,
    duplicates: int = 0,
    applied: int = 0,
    ignored: int = 0,
    pending: int = 0,
    dead_lettered: int = 0,
) -> dict[str, int]:
    """The edge's answer: what ingest_whatsapp_webhook did with the POST."""
    return {
        "messages_stored": stored,
        "duplicates": duplicates,
        "statuses_applied": applied,
        "statuses_ignored": ignored,
        "statuses_pending": pending,
        "dead_lettered": dead_lettered,
    }


def profile(contact: str, name: str) -> dict[str, Any]:
    return {"profile": {"name": name}, "wa_id": contact}


def deliver(edge: Edge, event: dict[str, Any]) -> dict[str, int]:
    """POSTs the event signed over the bytes Meta would send; returns the summary."""
    response: httpx.Response = post_meta(edge, as_meta_sends_it(event))
    assert response.status_code == 200, response.text
    return response.json()


# Every message type ----------------------------------------------------------------------------


class Stored(NamedTuple):
    """What message_tracking keeps of a message that its type decides."""

    message_type: str
    body: str | None = None
    media: dict[str, Any] | None = None
    content: Any = None
    context: dict[str, Any] | None = None
    error: list[dict[str, Any]] | None = None


def stored_message(database_url: str, wamid: str) -> list[tuple[Any, ...]]:
    """(direction, status, provider, provider_timestamp, provider_type, Stored) of the wamid."""
    rows = query(
        database_url,
        "select direction, status, provider, provider_timestamp, metadata ->> 'provider_type',"
        " message_type, body, media, content, context, error"
        " from public.message_tracking where wamid = %s",
        (wamid,),
    )
    return [(*row[:5], Stored(*row[5:])) for row in rows]


IMAGE = {
    "id": "1479537139650973",
    "mime_type": "image/jpeg",
    "sha256": "Bx4lMfJQ0iXk3cYdG9QmXwq0UkKZk1vOZcP0m2g7yRk=",
    "caption": "Ndi hano, imbere ya banki",
}
AUDIO = {
    "id": "1032837418128203",
    "mime_type": "audio/ogg; codecs=opus",
    "sha256": "cHhM0B3s9U8l4+Kq3nY3n9r3b5hXoZ6p1oYw0kq2Qxg=",
    "voice": True,
}
VIDEO = {
    "id": "908342918471283",
    "mime_type": "video/mp4",
    "sha256": "n6QK1vT8t9c0Jb8b1m0Gk8n8xq2c7b2YQk6n4Wm3cXs=",
    "caption": "Umuhanda ufunze",
}
DOCUMENT = {
    "id": "771234098123443",
    "mime_type": "application/pdf",
    "sha256": "2Xk8n3m1+q9b0Z4c7v6e5r4t3y2u1i0o9p8a7s6d5f4=",
    "caption": "Inyemezabwishyu",
    "filename": "receipt-2026-01.pdf",
}
STICKER = {
    "id": "652093887712390",
    "mime_type": "image/webp",
    "sha256": "q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c=",
    "animated": False,
}
LOCATION = {
    "latitude": -1.9536,
    "longitude": 30.0606,
    "name": "Kigali Convention Centre",
    "address": "KG 2 Roundabout, Kigali",
}
CONTACTS = [
    {
        "name": {"formatted_name": "Eric Mugisha", "first_name": "Eric", "last_name": "Mugisha"},
        "phones": [{"phone": "+250 788 000 099", "wa_id": "250788000099", "type": "CELL"}],
    }
]
BUTTON_REPLY = {"type": "button_reply", "button_reply": {"id": "ride-yes", "title": "Yego"}}
LIST_REPLY = {
    "type": "list_reply",
    "list_reply": {"id": "moto", "title": "Moto", "description": "Two wheels, fastest"},
}
BUTTON = {"text": "Track my ride", "payload": "TRACK_42"}
# A reply to the business's template: Meta says which outbound message it answers.
REPLYING_TO = {"from": BUSINESS, "id": "wamid.e2e-template-out"}
REACTION = {"message_id": "wamid.e2e-template-out", "emoji": "\U0001f44d"}
ORDER = {
    "catalog_id": "1537218791234567",
    "text": "Two please",
    "product_items": [
        {"product_retailer_id": "SKU-1", "quantity": 2, "item_price": 1500, "currency": "RWF"}
    ],
}
SYSTEM = {
    "body": "Aline changed from 250788320014 to 250788320099",
    "new_wa_id": "250788320099",
    "type": "user_changed_number",
}
UNSUPPORTED_ERRORS = [
    {
        "code": 131051,
        "title": "Message type unknown",
        "message": "Message type unknown",
        "error_data": {"details": "Message type is not currently supported"},
    }
]


def message_cases() -> list[Any]:
    """(message, what message_tracking keeps of it), one contact and wamid per case."""
    senders = (f"2507883200{n:02d}" for n in count(1))

    def case(message_type: str, content: Any, stored: Stored, name: str = "", **fields: Any) -> Any:
        name = name or message_type
        message = meta_message(
            next(senders), f"wamid.e2e-type-{name}", SENT_AT, message_type, content, **fields
        )
        return pytest.param(message, stored, id=name)

    def kept_whole(message_type: str, content: Any, name: str, **fields: Any) -> Any:
        # A type the SQL does not read is kept as the message Meta sent, errors and all.
        message = meta_message(
            next(senders), f"wamid.e2e-type-{name}", SENT_AT, message_type, content, **fields
        )
        stored = Stored("unsupported", content=message, error=fields.get("errors"))
        return pytest.param(message, stored, id=name)

    return [
        case("text", {"body": "Ndashaka moto"}, Stored("text", body="Ndashaka moto")),
        # Media keep Meta's object whole (the id to download it, mime_type, sha256); a caption
        # is also the body.
        case("image", IMAGE, Stored("image", body=IMAGE["caption"], media=IMAGE)),
        case("audio", AUDIO, Stored("audio", media=AUDIO)),
        case("video", VIDEO, Stored("video", body=VIDEO["caption"], media=VIDEO)),
        case("document", DOCUMENT, Stored("document", body=DOCUMENT["caption"], media=DOCUMENT)),
        case("sticker", STICKER, Stored("sticker", media=STICKER)),
        case("location", LOCATION, Stored("location", content=LOCATION)),
        case("contacts", CONTACTS, Stored("contacts", content=CONTACTS)),
        case(
            "interactive",
            BUTTON_REPLY,
            Stored("interactive", body="Yego", content=BUTTON_REPLY, context=REPLYING_TO),
            name="button_reply",
            context=REPLYING_TO,
        ),
        case(
            "interactive",
            LIST_REPLY,
            Stored("interactive", body="Moto", content=LIST_REPLY, context=REPLYING_TO),
            name="list_reply",
            context=REPLYING_TO,
        ),
        case(
            "button",
            BUTTON,
            Stored("button", body="Track my ride", content=BUTTON, context=REPLYING_TO),
            context=REPLYING_TO,
        ),
        case("reaction", REACTION, Stored("reaction", content=REACTION)),
        # The note a customer adds to a cart is the order's body.
        case("order", ORDER, Stored("order", body=ORDER["text"], content=ORDER)),
        case("system", SYSTEM, Stored("system", body=SYSTEM["body"], content=SYSTEM)),
        kept_whole("unsupported", None, "unsupported", errors=UNSUPPORTED_ERRORS),
        # A type Meta sends that this code does not know yet.
        kept_whole("request_welcome", None, "unknown-type"),
    ]


@pytest.mark.parametrize(("message", "stored"), message_cases())
def test_each_message_type_is_stored_as_meta_sent_it(edge, database_url, message, stored):
    event = meta_webhook(contacts=[profile(message["from"], "Aline")], messages=[message])

    assert deliver(edge, event) == summary(stored=1)

    assert stored_message(database_url, message["id"]) == [
        ("INBOUND", "received", "meta", at(SENT_AT), message["type"], stored)
    ]
    # The desk learns of it by its normalised type.
    assert query(
        database_url,
        "select payload ->> 'type' from public.outbox_events"
        " where event_type = 'whatsapp.message_received' and payload ->> 'wamid' = %s",
        (message["id"],),
    ) == [(stored.message_type,)]


# One POST, several entries and contacts --------------------------------------------------------

ALINE, BOSCO, CLAUDINE = "250788330001", "250788330002", "250788330003"
BATCH_CONTACTS = [ALINE, BOSCO, CLAUDINE]


def change(contacts: list[dict[str, Any]], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """One `messages` change to the business number, as meta_webhook writes it."""
    return meta_webhook(contacts=contacts, messages=messages)["entry"][0]["changes"][0]


def test_a_batch_of_entries_and_changes_stores_every_contact_once(edge, database_url):
    # Aline writes in the first entry and again in the second entry's second change, so her
    # messages reach the database from two places of one body.
    event = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA_ID",
                "changes": [
                    change(
                        [profile(ALINE, "Aline")],
                        [meta_text(ALINE, "wamid.e2e-batch-a1", SENT_AT, "Muraho")],
                    )
                ],
            },
            {
                "id": "WABA_ID",
                "changes": [
                    change(
                        [profile(BOSCO, "Bosco")],
                        [meta_message(BOSCO, "wamid.e2e-batch-b1", SENT_AT + 10, "image", IMAGE)],
                    ),
                    change(
                        [profile(CLAUDINE, "Claudine"), profile(ALINE, "Aline")],
                        [
                            meta_text(CLAUDINE, "wamid.e2e-batch-c1", SENT_AT + 20, "Ndi i Remera"),
                            meta_text(ALINE, "wamid.e2e-batch-a2", SENT_AT + 30, "Uraho?"),
                        ],
                    ),
                ],
            },
        ],
    }

    assert deliver(edge, event) == summary(stored=4)

    phones = ["+" + contact for contact in BATCH_CONTACTS]
    assert query(
        database_url,
        "select phone_number, display_name, last_active_at from public.users"
        " where phone_number = any(%s) order by phone_number",
        (phones,),
    ) == [
        ("+" + ALINE, "Aline", at(SENT_AT + 30)),
        ("+" + BOSCO, "Bosco", at(SENT_AT + 10)),
        ("+" + CLAUDINE, "Claudine", at(SENT_AT + 20)),
    ]
    assert query(
        database_url,
        "select s.phone_number, s.message_count, s.user_id = u.id"
        " from public.whatsapp_sessions as s"
        " join public.users as u on u.phone_number = s.phone_number"
        " where s.phone_number = any(%s) order by s.phone_number",
        (phones,),
    ) == [("+" + ALINE, 2, True), ("+" + BOSCO, 1, True), ("+" + CLAUDINE, 1, True)]
    assert query(
        database_url,
        "select m.wa_id, count(*), bool_and(m.user_id = u.id), max(m.contact_name),"
        " max(m.last_message_id)"
        " from public.conversation_mappings as m"
        " join public.users as u on u.phone_number = '+' || m.wa_id"
        " where m.wa_id = any(%s) and m.status = 'active'"
        " group by m.wa_id order by m.wa_id",
        (BATCH_CONTACTS,),
    ) == [
        (ALINE, 1, True, "Aline", "wamid.e2e-batch-a2"),
        (BOSCO, 1, True, "Bosco", "wamid.e2e-batch-b1"),
        (CLAUDINE, 1, True, "Claudine", "wamid.e2e-batch-c1"),
    ]
    # Each message belongs to its own contact's user and conversation.
    assert query(
        database_url,
        "select t.wamid, t.message_type, u.phone_number, m.wa_id"
        " from public.message_tracking as t"
        " join public.users as u on u.id = t.user_id"
        " join public.conversation_mappings as m on m.id = t.mapping_id"
        " where t.wamid like %s order by t.wamid",
        ("wamid.e2e-batch-%",),
    ) == [
        ("wamid.e2e-batch-a1", "text", "+" + ALINE, ALINE),
        ("wamid.e2e-batch-a2", "text", "+" + ALINE, ALINE),
        ("wamid.e2e-batch-b1", "image", "+" + BOSCO, BOSCO),
        ("wamid.e2e-batch-c1", "text", "+" + CLAUDINE, CLAUDINE),
    ]
    assert messages_stored(database_url) == 4


# Statuses of an outbound message ---------------------------------------------------------------


class Progress(NamedTuple):
    """Where an outbound message stands, as its statuses left it."""

    status: str
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed_at: datetime | None = None
    error: list[dict[str, Any]] | None = None
    ignored_status_count: int = 0


def progress(database_url: str, wamid: str) -> list[Progress]:
    rows = query(
        database_url,
        "select status, sent_at, delivered_at, read_at, failed_at, error, ignored_status_count"
        " from public.message_tracking where wamid = %s and direction = 'OUTBOUND'",
        (wamid,),
    )
    return [Progress(*row) for row in rows]


def status_changes(database_url: str, wamid: str) -> list[tuple[str, str]]:
    """The whatsapp.status_updated events of a message: only applied statuses emit one."""
    return query(
        database_url,
        "select payload ->> 'from_status', payload ->> 'status' from public.outbox_events"
        " where event_type = 'whatsapp.status_updated' and payload ->> 'wamid' = %s order by id",
        (wamid,),
    )


def contact_writes(edge: Edge, contact: str) -> None:
    """The contact opens the conversation the business then answers in."""
    event = meta_webhook(
        contacts=[profile(contact, "Aline")],
        messages=[meta_text(contact, f"wamid.e2e-in-{contact}", SENT_AT, "Ndashaka moto")],
    )
    assert deliver(edge, event) == summary(stored=1)


def record_outbound(database_url: str, contact: str, wamid: str) -> None:
    """What the sender records once Meta accepted its reply (pg_temp.outbound in tests/sql)."""
    inserted = query(
        database_url,
        "insert into public.message_tracking ("
        " wamid, mapping_id, user_id, direction, provider, message_type, status, body,"
        " correlation_id)"
        " select %s, m.id, u.id, 'OUTBOUND', 'meta', 'text', 'accepted',"
        " 'Your driver is on the way', 'send-' || %s"
        " from public.users as u"
        " join public.conversation_mappings as m on m.user_id = u.id and m.status = 'active'"
        " where u.phone_number = '+' || %s"
        " returning id",
        (wamid, wamid, contact),
    )
    assert len(inserted) == 1, f"no conversation with {contact} to answer in"


def report(
    edge: Edge,
    wamid: str,
    status: str,
    seconds: int,
    contact: str,
    *,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, int]:
    """Meta reports one status of the outbound message to the contact; returns the summary."""
    reported = meta_status(wamid, status, seconds, contact, errors or ())
    return deliver(edge, meta_webhook(statuses=[reported]))


def test_a_read_before_its_sent_leaves_the_message_read_and_counts_the_sent(edge, database_url):
    contact, wamid = "250788340001", "wamid.e2e-out-read-before-sent"
    contact_writes(edge, contact)
    record_outbound(database_url, contact, wamid)

    # Meta does not promise order: the read can overtake the sent it implies.
    assert report(edge, wamid, "read", SENT_AT + 120, contact) == summary(applied=1)
    assert report(edge, wamid, "sent", SENT_AT + 60, contact) == summary(ignored=1)

    assert progress(database_url, wamid) == [
        Progress("read", read_at=at(SENT_AT + 120), ignored_status_count=1)
    ]
    assert status_changes(database_url, wamid) == [("accepted", "read")]


def test_a_delivered_reported_twice_counts_the_second_and_keeps_the_first_time(edge, database_url):
    contact, wamid = "250788340002", "wamid.e2e-out-delivered-twice"
    contact_writes(edge, contact)
    record_outbound(database_url, contact, wamid)

    assert report(edge, wamid, "delivered", SENT_AT + 60, contact) == summary(applied=1)
    assert report(edge, wamid, "delivered", SENT_AT + 90, contact) == summary(ignored=1)

    assert progress(database_url, wamid) == [
        Progress("delivered", delivered_at=at(SENT_AT + 60), ignored_status_count=1)
    ]
    assert status_changes(database_url, wamid) == [("accepted", "delivered")]


# Meta's answer to a free-form reply sent after the 24-hour customer service window closed.
RE_ENGAGEMENT = [
    {
        "code": 131047,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
        "error_data": {
            "details": "Message failed to send because more than 24 hours have passed since"
            " the customer last replied to this number."
        },
    }
]


def test_a_failed_message_keeps_its_error_and_ignores_a_later_read(edge, database_url):
    contact, wamid = "250788340003", "wamid.e2e-out-failed-131047"
    contact_writes(edge, contact)
    record_outbound(database_url, contact, wamid)

    failed = report(edge, wamid, "failed", SENT_AT + 30, contact, errors=RE_ENGAGEMENT)
    assert failed == summary(applied=1)
    assert progress(database_url, wamid) == [
        Progress("failed", failed_at=at(SENT_AT + 30), error=RE_ENGAGEMENT)
    ]

    # Failed is terminal: nothing after it moves the message.
    assert report(edge, wamid, "read", SENT_AT + 60, contact) == summary(ignored=1)
    assert progress(database_url, wamid) == [
        Progress("failed", failed_at=at(SENT_AT + 30), error=RE_ENGAGEMENT, ignored_status_count=1)
    ]
    [(event_error,)] = query(
        database_url,
        "select payload -> 'error' from public.outbox_events"
        " where event_type = 'whatsapp.status_updated' and payload ->> 'wamid' = %s",
        (wamid,),
    )
    assert event_error == RE_ENGAGEMENT


def test_statuses_before_their_message_wait_and_apply_when_it_is_recorded(edge, database_url):
    contact, wamid = "250788340004", "wamid.e2e-out-pending"
    contact_writes(edge, contact)

    # Meta can report on a message before the sender has written down its wamid; these two
    # arrive in the wrong order too.
    assert report(edge, wamid, "read", SENT_AT + 120, contact) == summary(pending=1)
    assert report(edge, wamid, "delivered", SENT_AT + 60, contact) == summary(pending=1)
    assert progress(database_url, wamid) == []
    assert query(
        database_url,
        "select status, provider_timestamp from private.pending_message_statuses"
        " where wamid = %s order by status",
        (wamid,),
    ) == [("delivered", at(SENT_AT + 60)), ("read", at(SENT_AT + 120))]

    record_outbound(database_url, contact, wamid)

    assert progress(database_url, wamid) == [
        Progress("read", delivered_at=at(SENT_AT + 60), read_at=at(SENT_AT + 120))
    ]
    assert status_changes(database_url, wamid) == [
        ("accepted", "delivered"),
        ("delivered", "read"),
    ]
    assert query(
        database_url,
        "select count(*) from private.pending_message_statuses where wamid = %s",
        (wamid,),
    ) == [(0,)]

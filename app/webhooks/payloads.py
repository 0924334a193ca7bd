"""What a signed body must be before it is worth a database call, and the JSON passed on.

NaN and Infinity are not JSON at all; what Postgres cannot hold (unstorable.py) is taken out of
a Meta batch message by message. A body that is not an event at all is refused here, and the
webhook keeps it as a dead letter (a signed body is the provider's: refusing it would only make
the provider retry it for days)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from app.webhooks.rejection import Rejected
from app.webhooks.unstorable import (
    NumberReader,
    SetAside,
    encode,
    may_hold_unstorable_text,
    take_out_unstorable,
    unstorable,
)

META_OBJECT = "whatsapp_business_account"
JSON_TYPES = ("application/json",)
FORM_TYPE = "application/x-www-form-urlencoded"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class MetaPayload:
    """The event to ingest, and what was taken out of it to be kept as dead letters."""

    text: str
    set_aside: list[SetAside]


def meta_payload(body: bytes, content_type: str | None) -> MetaPayload:
    """The body as text, unchanged, once known to be a WhatsApp Business Account event; less
    the messages and statuses holding what Postgres cannot hold (see unstorable.py)."""
    if media_type(content_type) not in JSON_TYPES:
        raise Rejected(415, "unsupported_media_type", "Content-Type must be application/json")
    numbers = NumberReader()
    try:
        text = body.decode("utf-8")
        parsed = json.loads(
            text,
            parse_float=numbers.read_float,
            parse_int=numbers.read_int,
            parse_constant=_no_constants,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Rejected(400, "bad_payload", "The body is not JSON") from error
    if not isinstance(parsed, dict):
        raise Rejected(400, "bad_payload", "The body is not a JSON object")
    if parsed.get("object") != META_OBJECT:
        raise Rejected(400, "bad_payload", f'"object" must be "{META_OBJECT}"')
    # As received: the database parses the text Meta signed. Walking the parsed body costs more
    # than the rest of the checks; the numbers were judged while parsing, and text needs a look
    # only when it holds an escape that can make NUL or a surrogate.
    if numbers.all_storable and not may_hold_unstorable_text(text):
        return MetaPayload(text, [])
    if unstorable(parsed) is None:
        return MetaPayload(text, [])
    try:
        set_aside = take_out_unstorable(parsed)
        outside = unstorable(parsed)
        if outside is not None:
            raise Rejected(400, "bad_payload", f"The body holds {outside}")
        return MetaPayload(encode(parsed), set_aside)
    except RecursionError as error:
        raise Rejected(400, "bad_payload", "The body is nested too deeply to be read") from error


def twilio_fields(body: bytes, content_type: str | None) -> dict[str, list[str]]:
    """Every value of every form field, as Twilio signed them."""
    if media_type(content_type) != FORM_TYPE:
        raise Rejected(415, "unsupported_media_type", f"Content-Type must be {FORM_TYPE}")
    try:
        text = body.decode("ascii")  # a urlencoded body is ASCII; its %-escapes are UTF-8
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as error:
        raise Rejected(400, "bad_payload", "The body is not a UTF-8 urlencoded form") from error
    fields: dict[str, list[str]] = {}
    for key, value in pairs:
        fields.setdefault(key, []).append(value)
    return fields


def twilio_payload(fields: dict[str, list[str]]) -> str:
    """The form as a JSON object of strings; a repeated field keeps its last value. A request is
    one message: with text Postgres cannot hold, the whole form is refused (and kept)."""
    payload = {key: values[-1] for key, values in fields.items()}
    reason = unstorable(payload)
    if reason is not None:
        raise Rejected(400, "bad_payload", f"The form holds {reason}")
    return json.dumps(payload, ensure_ascii=False)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")

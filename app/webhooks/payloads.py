"""What a signed body must be before it is worth a database call, and the JSON passed on.

Postgres' jsonb refuses two things Python's JSON parser accepts: a NUL character (`\\u0000`)
and an unpaired surrogate (`\\ud800`); NaN and Infinity are not JSON at all. Each would fail
the cast in the database, be reported as a database error (503) and be retried by the
provider for days; they are refused here with a 400 instead."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from app.webhooks.numbers import (
    SetAside,
    encode,
    first_unstorable,
    read_float,
    read_int,
    take_out_unstorable,
)
from app.webhooks.rejection import Rejected

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
    the messages holding a number Postgres cannot hold (see numbers.py)."""
    if media_type(content_type) not in JSON_TYPES:
        raise Rejected(415, "unsupported_media_type", "Content-Type must be application/json")
    try:
        text = body.decode("utf-8")
        parsed = json.loads(
            text, parse_float=read_float, parse_int=read_int, parse_constant=_no_constants
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Rejected(400, "bad_payload", "The body is not JSON") from error
    if not isinstance(parsed, dict):
        raise Rejected(400, "bad_payload", "The body is not a JSON object")
    if parsed.get("object") != META_OBJECT:
        raise Rejected(400, "bad_payload", f'"object" must be "{META_OBJECT}"')
    _require_storable(parsed)
    if first_unstorable(parsed) is None:
        return MetaPayload(text, [])  # as received: the database parses the text Meta signed
    try:
        set_aside = take_out_unstorable(parsed)
        outside = first_unstorable(parsed)
        if outside is not None:
            raise Rejected(400, "bad_payload", _beyond_postgres(outside.literal))
        return MetaPayload(encode(parsed), set_aside)
    except RecursionError as error:
        raise Rejected(400, "bad_payload", "The body is nested too deeply to be read") from error


def _beyond_postgres(literal: str) -> str:
    return f"The body holds a number beyond what Postgres can store ({literal[:40]})"


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
    """The form as a JSON object of strings; a repeated field keeps its last value."""
    payload = {key: values[-1] for key, values in fields.items()}
    _require_storable(payload)
    return json.dumps(payload, ensure_ascii=False)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _require_storable(value: Any) -> None:
    """Iterative: the parser accepted nesting as deep as its recursion limit allows."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and not _storable_text(item):
            raise Rejected(400, "bad_payload", "The payload holds text Postgres cannot store")


def _storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")  # fails on an unpaired surrogate only
    except UnicodeEncodeError:
        return False
    return True

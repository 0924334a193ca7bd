"""What a signed body must be before it is worth a database call, and the JSON passed on.

Postgres' jsonb refuses two things Python's JSON parser accepts: a NUL character (`\\u0000`)
and an unpaired surrogate (`\\ud800`); NaN and Infinity are not JSON at all. Each would fail
the cast in the database, be reported as a database error (503) and be retried by the
provider for days; they are refused here with a 400 instead."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from app.webhooks.rejection import Rejected

META_OBJECT = "whatsapp_business_account"
JSON_TYPES = ("application/json",)
FORM_TYPE = "application/x-www-form-urlencoded"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def meta_payload(body: bytes, content_type: str | None) -> str:
    """The body as text, unchanged, once known to be a WhatsApp Business Account event."""
    if media_type(content_type) not in JSON_TYPES:
        raise Rejected(415, "unsupported_media_type", "Content-Type must be application/json")
    try:
        text = body.decode("utf-8")
        parsed = json.loads(text, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Rejected(400, "bad_payload", "The body is not JSON") from error
    if not isinstance(parsed, dict):
        raise Rejected(400, "bad_payload", "The body is not a JSON object")
    if parsed.get("object") != META_OBJECT:
        raise Rejected(400, "bad_payload", f'"object" must be "{META_OBJECT}"')
    _require_storable(parsed)
    return text  # as received: the database parses the same text Meta signed


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

"""What Postgres cannot hold in a JSON body, and taking the Meta messages that carry it out of a
batch.

jsonb refuses a NUL character (`\\u0000`) and an unpaired surrogate (`\\ud800`), which Python's
parser accepts, and keeps a number as numeric: at most 131,072 digits before the point and
16,383 after (`1e200000` is beyond). One such value anywhere makes the database refuse the whole
body (22P05, 22003), so one bad message would keep every other message of its batch from being
stored. The messages and statuses holding one are taken out, each to be kept as a dead letter of
its own, and the rest of the batch goes on.

Numbers are read as their literal text (never as floats), so what goes on is exactly the number
that was signed; only that path re-encodes the JSON, so its spacing and escapes may differ. A
taken-out item is kept as JSON text with its numbers as written and its strings escaped: exact,
though not something jsonb can read."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_INTEGER_DIGITS = 131_072
MAX_FRACTION_DIGITS = 16_383
# Postgres refuses a larger exponent even on zero (0e1073741823); a little below its limit.
MAX_EXPONENT = 1_073_741_800
ITEM_LISTS = {"messages": "message", "statuses": "status"}
QUOTED_CHARS = 40
# In JSON parsed strictly from UTF-8, NUL and surrogates arrive only as escapes: the parser
# refuses raw control characters, and strict UTF-8 refuses encoded surrogates.
_TEXT_ESCAPES = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


@dataclass(frozen=True)
class Number:
    """A JSON number as written, and whether Postgres can hold it."""

    literal: str
    storable: bool


@dataclass(frozen=True)
class SetAside:
    """One message or status that cannot go on, as a Meta payload of its own, and why."""

    payload: bytes
    detail: str


def read_float(literal: str) -> Number:
    try:
        number = Decimal(literal)  # exact, whatever the exponent's size
        exponent = number.as_tuple().exponent
        adjusted = number.adjusted()
    except InvalidOperation:  # an exponent past what Decimal can count (about 10**18)
        return Number(literal, storable=False)
    if not isinstance(exponent, int):
        return Number(literal, storable=False)
    fraction_digits = max(-exponent, 0)
    if number.is_zero():
        storable = fraction_digits <= MAX_FRACTION_DIGITS and exponent <= MAX_EXPONENT
    else:
        storable = adjusted < MAX_INTEGER_DIGITS and fraction_digits <= MAX_FRACTION_DIGITS
    return Number(literal, storable)


def read_int(literal: str) -> Number:
    # Never int(): past 4,300 digits Python refuses to convert, and nothing needs the value.
    return Number(literal, storable=len(literal.lstrip("-")) <= MAX_INTEGER_DIGITS)


class NumberReader:
    """json.loads' parse_float and parse_int, noting whether every number read is storable."""

    __slots__ = ("all_storable",)

    def __init__(self) -> None:
        self.all_storable = True

    def read_float(self, literal: str) -> Number:
        number = read_float(literal)
        self.all_storable = self.all_storable and number.storable
        return number

    def read_int(self, literal: str) -> Number:
        number = read_int(literal)
        self.all_storable = self.all_storable and number.storable
        return number


def may_hold_unstorable_text(text: str) -> bool:
    """False when JSON `text`, parsed strictly from UTF-8, can hold no NUL and no surrogate:
    most bodies have no such escape, and their strings need no walk. True means look."""
    return _TEXT_ESCAPES.search(text) is not None


def unstorable(value: Any) -> str | None:
    """What in `value` Postgres cannot hold, said briefly; None when it can hold all of it.
    Iterative: the parser accepted nesting as deep as its recursion limit allows."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Number):
            if not item.storable:
                return f"a number beyond what Postgres can store ({item.literal[:QUOTED_CHARS]})"
        elif isinstance(item, str):
            if not _storable_text(item):
                return "text Postgres cannot store (\\u0000 or a lone surrogate)"
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def take_out_unstorable(event: dict[str, Any]) -> list[SetAside]:
    """Removes from `event` (in place) every message and status holding something Postgres
    cannot hold; returns them. Anything else unstorable stays, for the caller to refuse."""
    taken: list[SetAside] = []
    for entry in _dicts(event.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            for key, item_name in ITEM_LISTS.items():
                items = value.get(key)
                if not isinstance(items, list):
                    continue
                kept = []
                for item in items:
                    reason = unstorable(item)
                    if reason is None:
                        kept.append(item)
                        continue
                    alone = _alone(
                        event, entry=entry, change=change, value=value, key=key, item=item
                    )
                    payload = encode(alone, ensure_ascii=True).encode()
                    taken.append(SetAside(payload, f"the {item_name} holds {reason}"))
                value[key] = kept
    return taken


def encode(value: Any, *, ensure_ascii: bool = False) -> str:
    """JSON text with every number as it was written."""
    if isinstance(value, Number):
        return value.literal
    if isinstance(value, dict):
        members = (
            json.dumps(key, ensure_ascii=ensure_ascii)
            + ":"
            + encode(item, ensure_ascii=ensure_ascii)
            for key, item in value.items()
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(item, ensure_ascii=ensure_ascii) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


def _storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")  # fails on an unpaired surrogate only
    except UnicodeEncodeError:
        return False
    return True


def _alone(
    event: dict[str, Any],
    *,
    entry: dict[str, Any],
    change: dict[str, Any],
    value: dict[str, Any],
    key: str,
    item: Any,
) -> dict[str, Any]:
    """The item in a payload of its own, with its change's metadata and its sender's contact."""
    sender = item.get("from") if isinstance(item, dict) else None
    context = {k: v for k, v in value.items() if k not in (*ITEM_LISTS, "contacts")}
    contacts = [
        c for c in _dicts(value.get("contacts")) if sender is not None and c.get("wa_id") == sender
    ]
    return {
        "object": event.get("object"),
        "entry": [
            {
                "id": entry.get("id"),
                "changes": [
                    {
                        "field": change.get("field"),
                        "value": context
                        | ({"contacts": contacts} if contacts else {})
                        | {key: [item]},
                    }
                ],
            }
        ],
    }


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []

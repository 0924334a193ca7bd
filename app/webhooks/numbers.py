"""JSON numbers Postgres cannot hold, and taking the Meta messages that carry them out of a batch.

jsonb keeps a number as numeric: at most 131,072 digits before the point and 16,383 after. A
body with `1e200000` anywhere is refused whole by the database (22003), so one such message would
keep every other message of its batch from being stored. The messages and statuses holding one
are taken out, each to be kept as a dead letter of its own, and the rest of the batch goes on.

Numbers are read as their literal text (never as floats), so what goes on is exactly the number
that was signed; only that path re-encodes the JSON, so its spacing and escapes may differ."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MAX_INTEGER_DIGITS = 131_072
MAX_FRACTION_DIGITS = 16_383
ITEM_LISTS = {"messages": "message", "statuses": "status"}
QUOTED_CHARS = 40


@dataclass(frozen=True)
class Number:
    """A JSON number as written, and whether Postgres can hold it."""

    literal: str
    storable: bool


@dataclass(frozen=True)
class SetAside:
    """One message or status that cannot go on, as a Meta payload of its own (its unstorable
    numbers as strings), and why."""

    payload: bytes
    detail: str


def read_float(literal: str) -> Number:
    number = Decimal(literal)  # exact, whatever the exponent: JSON's grammar is Decimal's
    exponent = number.as_tuple().exponent
    fraction_digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    storable = number.adjusted() < MAX_INTEGER_DIGITS and fraction_digits <= MAX_FRACTION_DIGITS
    return Number(literal, storable)


def read_int(literal: str) -> Number:
    # Never int(): past 4,300 digits Python refuses to convert, and nothing needs the value.
    return Number(literal, storable=len(literal.lstrip("-")) <= MAX_INTEGER_DIGITS)


def first_unstorable(value: Any) -> Number | None:
    """Iterative: the parser accepted nesting as deep as its recursion limit allows."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Number) and not item.storable:
            return item
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def take_out_unstorable(event: dict[str, Any]) -> list[SetAside]:
    """Removes from `event` (in place) every message and status holding a number Postgres cannot
    hold; returns them. A number anywhere else stays, for the database to refuse the body."""
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
                    number = first_unstorable(item)
                    if number is None:
                        kept.append(item)
                        continue
                    alone = _alone(
                        event, entry=entry, change=change, value=value, key=key, item=item
                    )
                    detail = (
                        f"a number in the {item_name} is beyond what Postgres can store"
                        f" ({number.literal[:QUOTED_CHARS]}); kept with it as text"
                    )
                    taken.append(SetAside(encode(alone).encode(), detail))
                value[key] = kept
    return taken


def encode(value: Any) -> str:
    """JSON text with every number as it was written; one Postgres cannot hold as a string."""
    if isinstance(value, Number):
        return value.literal if value.storable else json.dumps(value.literal)
    if isinstance(value, dict):
        members = (
            json.dumps(key, ensure_ascii=False) + ":" + encode(item) for key, item in value.items()
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


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

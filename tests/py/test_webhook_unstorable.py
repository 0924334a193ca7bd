"""Which JSON numbers Postgres can hold, decided in Python before the body reaches the database,
checked against Postgres itself; and what is taken out of a Meta batch for one it cannot."""

from __future__ import annotations

import json

import psycopg
import pytest

from app.webhooks.unstorable import (
    NumberReader,
    encode,
    may_hold_unstorable_text,
    read_float,
    read_int,
    take_out_unstorable,
    unstorable,
)

FLOATS = [
    "1e131071",
    "1e131072",
    "123e131069",
    "-1e131072",
    "1e-16383",
    "1e-16384",
    "1.5e-16383",
    "0.1e-16383",
    "1e200000",
    "1E+2",
    "-0.0",
    "0.1000000000000000055511151231257827",
    "2.5e-3",
    "0e200000",
    "-0e200000",
    "0.0e200000",
    "0e-16383",
    "0e-16384",
    "0.00e-16382",
    "1.00e-16382",
    "0e1073741823",
    "1e1000000000000000000",
    "1e-9999999999999999999999",
]
INTS = ["0", "-7", "9" * 4301, "9" * 131072, "9" * 131073, "-" + "9" * 131073]


@pytest.mark.parametrize("literal", FLOATS + INTS, ids=lambda literal: literal[:20])
def test_the_verdict_is_postgres_own(database_url: str, literal: str) -> None:
    number = read_int(literal) if literal in INTS else read_float(literal)
    try:
        with psycopg.connect(database_url) as conn:
            conn.execute("select %s::jsonb", [f"[{literal}]"])
        accepted = True
    except psycopg.DataError:
        accepted = False
    assert number.storable == accepted


def test_only_the_messages_holding_one_are_taken_out_and_numbers_go_on_as_written() -> None:
    event = json.loads(
        '{"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field":'
        ' "messages", "value": {"metadata": {"phone_number_id": "P"}, "contacts": [{"wa_id":'
        ' "1"}, {"wa_id": "2"}], "messages": [{"from": "1", "id": "a", "n": 1e200000}, {"from":'
        ' "2", "id": "b", "n": 0.10000000000000000000001}], "statuses": [{"id": "s", "n":'
        ' 1e-20000}, {"id": "t", "n": 7}]}}]}]}',
        parse_float=read_float,
        parse_int=read_int,
    )
    taken = take_out_unstorable(event)

    assert json.loads(encode(event))["entry"][0]["changes"][0]["value"] == {
        "metadata": {"phone_number_id": "P"},
        "contacts": [{"wa_id": "1"}, {"wa_id": "2"}],
        "messages": [{"from": "2", "id": "b", "n": 0.1}],
        "statuses": [{"id": "t", "n": 7}],
    }
    assert '"n":0.10000000000000000000001' in encode(event)
    kept = [
        json.loads(item.payload, parse_float=str)["entry"][0]["changes"][0]["value"]
        for item in taken
    ]
    assert kept == [
        {
            "metadata": {"phone_number_id": "P"},
            "contacts": [{"wa_id": "1"}],
            "messages": [{"from": "1", "id": "a", "n": "1e200000"}],
        },
        {"metadata": {"phone_number_id": "P"}, "statuses": [{"id": "s", "n": "1e-20000"}]},
    ]
    assert b'"n":1e200000' in taken[0].payload
    assert [item.detail for item in taken] == [
        "the message holds a number beyond what Postgres can store (1e200000)",
        "the status holds a number beyond what Postgres can store (1e-20000)",
    ]


# Bodies whose strings or numbers Postgres may not hold, written as Meta would send them, and
# bodies that only look close to one.
SHORTCUT_BODIES = [
    r'{"t": "\u0000"}',
    r'{"\u0000": 1}',
    r'{"t": "\ud800"}',
    r'{"t": "\uDFFF"}',
    r'{"t": "\udbff\udfff"}',  # a pair: storable, though the shortcut must look
    r'{"t": "caf\u00e9 \/ ok"}',
    r'{"t": "\\u0000"}',  # an escaped backslash, then text: storable
    '{"n": 1e200000}',
    '{"n": 1E5}',
    '{"n": 0e1073741823}',
    '{"n": ' + "9" * 131073 + "}",
    '{"n": 0.' + "1" * 16384 + "}",
    '{"n": [1, 2.5, -0.0], "t": "plain"}',
]


@pytest.mark.parametrize("body", SHORTCUT_BODIES, ids=lambda body: body[:24])
def test_the_shortcut_never_passes_what_the_walk_refuses(body: str) -> None:
    """meta_payload skips walking the parsed body when parsing judged every number storable and
    the text holds no escape that can make NUL or a surrogate: it must agree with the walk."""
    numbers = NumberReader()
    parsed = json.loads(body, parse_float=numbers.read_float, parse_int=numbers.read_int)
    walk_passes = unstorable(parsed) is None
    shortcut_passes = numbers.all_storable and not may_hold_unstorable_text(body)
    assert walk_passes or not shortcut_passes
    if "\\\\" not in body and "\\ud" not in body.lower():
        assert shortcut_passes == walk_passes  # no false alarm outside escapes that can pair

"""Three people and the rows row-level security gives each, for tests that read and write them
through the API as each role: the owner (who sent the counterparty a transfer), the counterparty
and a stranger with nothing but their user row; and a snapshot of the tables a refused write
must leave as they were."""

from __future__ import annotations

from typing import Any

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge

OWNER = "d0000000-0000-4000-8000-000000000001"
COUNTERPARTY = "d0000000-0000-4000-8000-000000000002"
STRANGER = "d0000000-0000-4000-8000-000000000003"
OWNER_HOME = "e0000000-0000-4000-8000-000000000001"
OWNER_FAVOURITE = "e0000000-0000-4000-8000-000000000002"
COUNTERPARTY_HOME = "e0000000-0000-4000-8000-000000000003"
OWNER_CARD = "f0000000-0000-4000-8000-000000000001"
OWNER_MOMO = "f0000000-0000-4000-8000-000000000002"
COUNTERPARTY_MOMO = "f0000000-0000-4000-8000-000000000003"
STRANGER_NAME = 'Ngabo "Ngabs", Jr'
OWNER_CONVERSATION = "a0000000-0000-4000-8000-000000000001"
COUNTERPARTY_CONVERSATION = "a0000000-0000-4000-8000-000000000002"

# Each table's rows in a fixed order, every column: what a refused write must leave as it was.
SNAPSHOT = {
    "users": "select * from public.users order by id",
    "user_preferences": "select * from public.user_preferences order by user_id",
    "transactions": "select * from public.transactions order by id",
    "wallets": "select * from public.wallets order by user_id, currency",
    "payment_methods": "select * from public.payment_methods order by id",
    "locations": "select * from public.locations order by id",
}


def seed(edge: Edge, database_url: str) -> dict[str, dict[str, Any]]:
    """Three users (the owner, who sent the counterparty a transfer, and a stranger with nothing
    but their user row), preferences, wallets, locations, payment methods, WhatsApp sessions,
    conversations and messages; the transactions (and their events) through the RPCs that own
    them. Returns the transactions by name: credit, debit (cancelled), payment (failed) and
    transfer of the owner, counterparty_credit of the counterparty."""
    query(
        database_url,
        "insert into public.users (id, phone_number, display_name) values"
        " (%s, '+250788100001', 'Amina K'), (%s, '+250788100002', 'Jean'),"
        " (%s, '+250788100003', 'Ngabo \"Ngabs\", Jr')",
        (OWNER, COUNTERPARTY, STRANGER),
    )
    query(
        database_url,
        "insert into public.user_preferences (user_id, language) values"
        " (%s, 'en-GB'), (%s, 'fr-RW'), (%s, 'rw-RW')",
        (OWNER, COUNTERPARTY, STRANGER),
    )
    query(
        database_url,
        "insert into public.wallets (user_id, currency, balance) values"
        " (%s, 'RWF', 2500), (%s, 'USD', 12.5), (%s, 'RWF', 900)",
        (OWNER, OWNER, COUNTERPARTY),
    )
    query(
        database_url,
        "insert into public.locations (id, user_id, location_type, coordinates, place_name) values"
        " (%s, %s, 'home', 'SRID=4326;POINT(30.0619 -1.9441)', 'Home'),"
        " (%s, %s, 'favorite', 'SRID=4326;POINT(30.0925 -1.9530)', 'Convention Centre'),"
        " (%s, %s, 'home', 'SRID=4326;POINT(30.1000 -1.9600)', 'Kimironko')",
        (OWNER_HOME, OWNER, OWNER_FAVOURITE, OWNER, COUNTERPARTY_HOME, COUNTERPARTY),
    )
    query(
        database_url,
        "insert into public.payment_methods"
        " (id, user_id, method_type, provider, masked_label, account_details, key_id, is_default)"
        " values (%s, %s, 'card', 'visa', 'VISA **** 4242', '\\x00', 'local-1', true),"
        " (%s, %s, 'mobile_money', 'mtn', 'MTN **** 4567', '\\x00', 'local-1', false),"
        " (%s, %s, 'mobile_money', 'airtel', 'Airtel **** 1234', '\\x00', 'local-1', false)",
        (OWNER_CARD, OWNER, OWNER_MOMO, OWNER, COUNTERPARTY_MOMO, COUNTERPARTY),
    )
    query(
        database_url,
        "insert into public.whatsapp_sessions (user_id, phone_number) values"
        " (%s, '+250788100001'), (%s, '+250788100002')",
        (OWNER, COUNTERPARTY),
    )
    query(
        database_url,
        "insert into public.conversation_mappings (id, wa_id, user_id) values"
        " (%s, '250788100001', %s), (%s, '250788100002', %s)",
        (OWNER_CONVERSATION, OWNER, COUNTERPARTY_CONVERSATION, COUNTERPARTY),
    )
    query(
        database_url,
        "insert into public.message_tracking"
        " (wamid, mapping_id, user_id, direction, message_type, status, body) values"
        " ('wamid.owner.1', %s, %s, 'INBOUND', 'text', 'received', 'Muraho'),"
        " ('wamid.owner.2', %s, %s, 'OUTBOUND', 'text', 'sent', 'Murakoze'),"
        " ('wamid.counterparty.1', %s, %s, 'INBOUND', 'text', 'received', 'Bonjour')",
        (
            OWNER_CONVERSATION,
            OWNER,
            OWNER_CONVERSATION,
            OWNER,
            COUNTERPARTY_CONVERSATION,
            COUNTERPARTY,
        ),
    )
    made: dict[str, dict[str, Any]] = {}
    with RecordingClient(edge.url, edge.service_role_key) as service:
        for name, user, kind, amount, extra, status in (
            ("credit", OWNER, "credit", 1500, {"p_metadata": {"channel": "momo"}}, None),
            ("debit", OWNER, "debit", 200, {}, "cancelled"),
            ("payment", OWNER, "payment", 700, {}, "failed"),
            ("transfer", OWNER, "transfer", 300, {"p_counterparty_id": COUNTERPARTY}, None),
            ("counterparty_credit", COUNTERPARTY, "credit", 5000, {}, None),
        ):
            arguments = {"p_user_id": user, "p_type": kind, "p_amount": amount, "p_currency": "RWF"}
            made[name] = service.rpc("create_transaction", arguments | extra).execute().data
            if status is not None:
                made[name] = (
                    service.rpc(
                        "update_transaction_status",
                        {"p_transaction_id": made[name]["id"], "p_new_status": status},
                    )
                    .execute()
                    .data
                )
    return made


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    return {table: query(database_url, sql) for table, sql in SNAPSHOT.items()}

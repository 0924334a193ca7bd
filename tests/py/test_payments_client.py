"""The payment RPCs through the supabase Python client against the edge: service_role creates a
transaction (the same key gives the same one) and moves it to completed, an illegal move is a
PT409 APIError, an overdraft a PT402 (HTTP 402), an unknown user's balance a PT404 (HTTP 404),
oversized metadata a 22023 (HTTP 400), a signed-in user reads their own balance and no
one else's and flips their own default payment method only, and anon and users cannot create
transactions."""

from __future__ import annotations

import re

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge

OWNER = "6a1c7e52-3d4b-4f8a-9e21-0b5c6d7e8f90"
OTHER = "7b2d8f63-4e5c-4a9b-8f32-1c6d7e8f9a01"
NOBODY = "00000000-0000-4000-8000-000000000000"
REFERENCE = re.compile(r"^TXN-[0-9]{8}-[0-9A-HJKMNP-TV-Z]{6}$")


def test_create_and_complete_a_credit_and_read_balances_through_the_edge(
    edge: Edge, database_url: str
) -> None:
    query(
        database_url,
        "insert into public.users (id, phone_number)"
        " values (%s, '+250788000001'), (%s, '+250788000002')",
        (OWNER, OTHER),
    )
    credit = {
        "p_user_id": OWNER,
        "p_type": "credit",
        "p_amount": 1500,
        "p_currency": "RWF",
        "p_idempotency_key": "topup-2026-04-01-1",
        "p_metadata": {"channel": "momo"},
    }
    own_balance = {"p_user_id": OWNER, "p_currency": "RWF"}

    with RecordingClient(edge.url, edge.service_role_key) as service:
        created = service.rpc("create_transaction", credit).execute().data
        again = service.rpc("create_transaction", credit).execute().data
        other_request = service.error(
            service.rpc("create_transaction", credit | {"p_amount": 1600})
        )
        moves = [
            service.rpc(
                "update_transaction_status",
                {"p_transaction_id": created["id"], "p_new_status": status},
            )
            .execute()
            .data
            for status in ("processing", "completed")
        ]
        illegal_status, illegal = service.error(
            service.rpc(
                "update_transaction_status",
                {"p_transaction_id": created["id"], "p_new_status": "pending"},
            )
        )
        service_balance = service.rpc("get_wallet_balance", own_balance).execute().data
        nobodys_status, nobodys = service.error(
            service.rpc("get_wallet_balance", {"p_user_id": NOBODY, "p_currency": "RWF"})
        )
        oversized_status, oversized = service.error(
            service.rpc(
                "create_transaction",
                credit | {"p_idempotency_key": "big", "p_metadata": {"note": "x" * 16384}},
            )
        )
    with RecordingClient(edge.url, edge.user_token(OWNER)) as owner:
        balance = owner.rpc("get_wallet_balance", own_balance).execute().data
        others_status, others = owner.error(
            owner.rpc("get_wallet_balance", {"p_user_id": OTHER, "p_currency": "RWF"})
        )
        owner_creates = owner.error(
            owner.rpc("create_transaction", credit | {"p_idempotency_key": "mine"})
        )
    with RecordingClient(edge.url, edge.user_token(OTHER)) as other:
        empty = other.rpc("get_wallet_balance", {"p_user_id": OTHER, "p_currency": "RWF"})
        other_balance = empty.execute().data
    with RecordingClient(edge.url, edge.anon_key) as anon:
        anon_status, anon_error = anon.error(
            anon.rpc("create_transaction", credit | {"p_idempotency_key": "anon"})
        )

    assert created["status"] == "pending"
    assert created["user_id"] == OWNER
    assert (created["type"], created["amount"], created["currency"]) == ("credit", 1500, "RWF")
    assert created["metadata"] == {"channel": "momo"}
    assert REFERENCE.match(created["reference"]), created["reference"]
    assert again == created
    assert other_request[0] == 409
    assert other_request[1]["code"] == "PT409"
    assert other_request[1]["message"] == (
        "create_transaction: idempotency key topup-2026-04-01-1 was used for another request"
        f" (transaction {created['reference']})"
    )
    assert [(m["id"], m["status"]) for m in moves] == [
        (created["id"], "processing"),
        (created["id"], "completed"),
    ]
    assert moves[0]["completed_at"] is None
    assert moves[1]["completed_at"] is not None
    assert (illegal_status, illegal["code"]) == (409, "PT409")
    assert illegal["message"] == (
        f"update_transaction_status: {created['reference']} is completed, it cannot become"
        " pending (it may become reversed)"
    )
    assert service_balance == 1500
    assert (nobodys_status, nobodys["code"]) == (404, "PT404")
    assert nobodys["message"] == f"get_wallet_balance: no user {NOBODY}"
    assert (oversized_status, oversized["code"]) == (400, "22023")
    assert oversized["message"].startswith(
        "create_transaction: p_metadata must be at most 16384 bytes of JSON"
    )
    assert balance == 1500
    assert (others_status, others["code"]) == (403, "42501")
    assert others["message"] == "get_wallet_balance: a user may read only their own balance"
    assert (owner_creates[0], owner_creates[1]["code"]) == (403, "42501")
    assert other_balance == 0
    assert (anon_status, anon_error["code"]) == (401, "42501")

    # Only the service's calls wrote anything, and the events name the service as the actor.
    assert query(database_url, "select count(*)::int from public.transactions") == [(1,)]
    assert query(
        database_url,
        "select from_status, to_status, actor_type from public.transaction_events order by id",
    ) == [
        (None, "pending", "service"),
        ("pending", "processing", "service"),
        ("processing", "completed", "service"),
    ]
    assert query(
        database_url, "select user_id::text, currency, balance::int from public.wallets"
    ) == [(OWNER, "RWF", 1500)]


def test_an_overdraft_is_402_and_an_owner_flips_their_own_default_method(
    edge: Edge, database_url: str
) -> None:
    query(
        database_url,
        "insert into public.users (id, phone_number)"
        " values (%s, '+250788000001'), (%s, '+250788000002')",
        (OWNER, OTHER),
    )
    with RecordingClient(edge.url, edge.service_role_key) as service:
        debit = (
            service.rpc(
                "create_transaction",
                {"p_user_id": OWNER, "p_type": "debit", "p_amount": 10, "p_currency": "RWF"},
            )
            .execute()
            .data
        )
        move = {"p_transaction_id": debit["id"], "p_new_status": "processing"}
        service.rpc("update_transaction_status", move).execute()
        overdraft = service.error(
            service.rpc("update_transaction_status", move | {"p_new_status": "completed"})
        )
        methods = [
            service.rpc(
                "add_payment_method",
                {
                    "p_user_id": OWNER,
                    "p_method_type": "mobile_money",
                    "p_provider": provider,
                    "p_account_details": {"phone_number": phone},
                    "p_is_default": provider == "MTN",
                },
            )
            .execute()
            .data
            for provider, phone in (("MTN", "+250788124567"), ("Airtel", "+250733009876"))
        ]
    with RecordingClient(edge.url, edge.user_token(OWNER)) as owner:
        flipped = (
            owner.rpc("set_default_payment_method", {"p_payment_method_id": methods[1]["id"]})
            .execute()
            .data
        )
    with RecordingClient(edge.url, edge.user_token(OTHER)) as other:
        strangers_flip = other.error(
            other.rpc("set_default_payment_method", {"p_payment_method_id": methods[0]["id"]})
        )

    assert overdraft[0] == 402
    assert overdraft[1]["code"] == "PT402"
    assert overdraft[1]["message"] == (
        f"insufficient funds: completing debit {debit['reference']} needs 10 RWF but wallet"
        f" {OWNER} holds 0 RWF"
    )
    assert query(
        database_url, "select status from public.transactions where id = %s", (debit["id"],)
    ) == [("processing",)]
    assert [(m["masked_label"], m["is_default"]) for m in methods] == [
        ("MTN **** 4567", True),
        ("AIRTEL **** 9876", False),
    ]
    assert all(m["account_details"] is None and m["key_id"] is None for m in methods)
    assert (flipped["id"], flipped["is_default"]) == (methods[1]["id"], True)
    assert query(
        database_url,
        "select masked_label, is_default from public.payment_methods order by masked_label",
    ) == [("AIRTEL **** 9876", True), ("MTN **** 4567", False)]
    assert (strangers_flip[0], strangers_flip[1]["code"]) == (404, "PT404")


def test_money_to_an_erased_user_is_410_gone(edge: Edge, database_url: str) -> None:
    query(
        database_url,
        "insert into public.users (id, phone_number)"
        " values (%s, '+250788000001'), (%s, '+250788000002')",
        (OWNER, OTHER),
    )
    with RecordingClient(edge.url, edge.service_role_key) as service:
        erased = service.rpc("erase_user", {"p_user_id": OTHER}).execute().data
        transfer = service.error(
            service.rpc(
                "create_transaction",
                {
                    "p_user_id": OWNER,
                    "p_type": "transfer",
                    "p_amount": 10,
                    "p_currency": "RWF",
                    "p_counterparty_id": OTHER,
                },
            )
        )

    assert erased["already_erased"] is False
    assert transfer[0] == 410
    assert transfer[1]["code"] == "PT410"
    assert transfer[1]["message"] == (
        f"create_transaction: user {OTHER} was erased (GDPR): no money moves to or from them,"
        " and nothing new is kept about them"
    )
    assert query(database_url, "select count(*) from public.transactions") == [(0,)]

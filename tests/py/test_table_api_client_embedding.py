"""Resources embedded along foreign keys through supabase-py, per role: each embedded table's
grants and policies apply inside the embedding (a to-one row the caller may not read is null,
!inner drops the row, a spread column is null), embedded filters, order and pages, PGRST200,
PGRST201 and PGRST118 as PostgREST words them, and embeddings written as PostgREST writes them
(jsonb)."""

from __future__ import annotations

from tests.support.client import RecordingClient
from tests.support.edge import Edge
from tests.support.rls_seed import (
    COUNTERPARTY,
    OWNER,
    STRANGER,
    seed,
)


def test_embedded_resources_obey_each_tables_grants_and_policies(
    edge: Edge, database_url: str
) -> None:
    seed(edge, database_url)
    people = (
        "amount,"
        " sender:users!transactions_user_id_fkey(display_name),"
        " recipient:users!transactions_counterparty_id_fkey(display_name)"
    )

    with RecordingClient(edge.url, edge.user_token(OWNER)) as owner:
        own = (
            owner.supabase.table("users")
            .select(
                "id, wallets(currency,balance), user_preferences(language),"
                " locations(location_type)"
            )
            .order("currency", foreign_table="wallets")
            .order("location_type", foreign_table="locations")
            .execute()
        )
        own_transactions = (
            owner.supabase.table("transactions").select(people).order("amount").execute()
        )
        # Only the transfer has a recipient, whose user row the owner may not read.
        with_recipient = (
            owner.supabase.table("transactions")
            .select("amount, recipient:users!transactions_counterparty_id_fkey!inner(id)")
            .execute()
        )
        usd = (
            owner.supabase.table("users")
            .select("id, wallets!inner(currency)")
            .eq("wallets.currency", "USD")
            .execute()
        )
        ambiguous_status, ambiguous = owner.error(
            owner.supabase.table("users").select("id, transactions(amount)")
        )
        ciphertext_status, ciphertext = owner.error(
            owner.supabase.table("users").select("id, payment_methods(*)")
        )
        labels = (
            owner.supabase.table("users")
            .select("payment_methods(masked_label)")
            .order("masked_label", foreign_table="payment_methods")
            .execute()
        )
    with RecordingClient(edge.url, edge.user_token(COUNTERPARTY)) as counterparty:
        received = (
            counterparty.supabase.table("transactions")
            .select(people)
            .eq("type", "transfer")
            .execute()
        )
        # Spread into the row, or ordered by: the sender the counterparty may not read is null.
        spread = (
            counterparty.supabase.table("transactions")
            .select("amount, ...users!transactions_user_id_fkey(display_name)")
            .order("amount")
            .execute()
        )
        by_sender = (
            counterparty.supabase.table("transactions")
            .select("amount, sender:users!transactions_user_id_fkey(display_name)")
            .order("sender(display_name)", nullsfirst=True)
            .execute()
        )
        to_many_order_status, to_many_order = counterparty.error(
            counterparty.supabase.table("users")
            .select("id, wallets(currency)")
            .order("wallets(currency)")
        )
    with RecordingClient(edge.url, edge.user_token(STRANGER)) as stranger:
        strangers = stranger.supabase.table("users").select("id, wallets(currency)").execute()
    with RecordingClient(edge.url, edge.anon_key) as anon:
        anon_status, anon_error = anon.error(
            anon.supabase.table("users").select("id, wallets(currency)")
        )
    with RecordingClient(edge.url, edge.service_role_key) as service:
        transfer = (
            service.supabase.table("transactions")
            .select(people)
            .eq("type", "transfer")
            .single()
            .execute()
        )

    # One-to-many as arrays, one-to-one (user_id is the preferences' key) as an object.
    assert own.data == [
        {
            "id": OWNER,
            "wallets": [
                {"currency": "RWF", "balance": 2500},
                {"currency": "USD", "balance": 12.5},
            ],
            "user_preferences": {"language": "en-GB"},
            "locations": [{"location_type": "favorite"}, {"location_type": "home"}],
        }
    ]
    # RLS applies inside an embedding: a to-one row the caller may not read is null.
    assert own_transactions.data == [
        {"amount": amount, "sender": {"display_name": "Amina K"}, "recipient": None}
        for amount in (200, 300, 700, 1500)
    ]
    assert with_recipient.data == []
    assert usd.data == [{"id": OWNER, "wallets": [{"currency": "USD"}]}]
    assert ambiguous_status == 300
    assert ambiguous["code"] == "PGRST201"
    assert ambiguous["message"] == (
        "Could not embed because more than one relationship was found for 'users' and "
        "'transactions'"
    )
    # Both foreign keys as PostgREST describes them, in the order its hint names them.
    candidates = ambiguous["details"]
    assert sorted(candidates, key=lambda c: c["relationship"]) == [
        {
            "cardinality": "one-to-many",
            "embedding": "users with transactions",
            "relationship": (
                f"transactions_{column}_fkey using users(id) and transactions({column})"
            ),
        }
        for column in ("counterparty_id", "user_id")
    ]
    options = ", ".join(f"'transactions!{c['relationship'].split(' ')[0]}'" for c in candidates)
    assert ambiguous["hint"] == (
        f"Try changing 'transactions' to one of the following: {options}. Find the desired "
        "relationship in the 'details' key."
    )
    assert (ciphertext_status, ciphertext["message"]) == (
        403,
        "permission denied for table payment_methods",
    )
    assert labels.data == [
        {"payment_methods": [{"masked_label": "MTN **** 4567"}, {"masked_label": "VISA **** 4242"}]}
    ]
    assert received.data == [{"amount": 300, "sender": None, "recipient": {"display_name": "Jean"}}]
    assert spread.data == [
        {"amount": 300, "display_name": None},
        {"amount": 5000, "display_name": "Jean"},
    ]
    assert by_sender.data == [
        {"amount": 300, "sender": None},
        {"amount": 5000, "sender": {"display_name": "Jean"}},
    ]
    assert to_many_order_status == 400
    assert to_many_order == {
        "code": "PGRST118",
        "details": "'users' and 'wallets' do not form a many-to-one or one-to-one relationship",
        "hint": None,
        "message": "A related order on 'wallets' is not possible",
    }
    assert strangers.data == [{"id": STRANGER, "wallets": []}]
    assert (anon_status, anon_error["message"]) == (401, "permission denied for table users")
    assert transfer.data == {
        "amount": 300,
        "sender": {"display_name": "Amina K"},
        "recipient": {"display_name": "Jean"},
    }


def test_embedded_resources_are_written_as_postgrest_writes_them(
    edge: Edge, database_url: str
) -> None:
    seed(edge, database_url)
    with RecordingClient(edge.url, edge.user_token(OWNER)) as owner:
        owner.supabase.table("users").select("id, wallets(currency,balance)").order(
            "currency", foreign_table="wallets"
        ).execute()
        wallets_body = owner.last.content
        owner.supabase.table("transactions").select("amount").order("amount").execute()
        amounts_body = owner.last.content
        senders_csv = (
            owner.supabase.table("transactions")
            .select("amount, sender:users!transactions_user_id_fkey(display_name)")
            .order("amount")
            .limit(2)
            .csv()
            .execute()
            .data
        )

    # The rows as json_agg writes them.
    assert (
        amounts_body
        == b'[{"amount":200}, \n {"amount":300}, \n {"amount":700}, \n {"amount":1500}]'
    )
    # PostgREST embeds as jsonb (row_to_json(...)::jsonb, json_agg(...)::jsonb): Postgres writes
    # jsonb with its keys shortest first and a space after each colon and comma, inside the
    # compact row of the table itself, and the same text lands in a CSV field.
    assert (
        wallets_body
        == (
            f'[{{"id":"{OWNER}","wallets":'
            '[{"balance": 2500, "currency": "RWF"}, {"balance": 12.5, "currency": "USD"}]}]'
        ).encode()
    )
    assert senders_csv == (
        'amount,sender\n200,"{""display_name"": ""Amina K""}"\n'
        '300,"{""display_name"": ""Amina K""}"'
    )

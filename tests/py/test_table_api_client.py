"""The table API (/rest/v1/<table>) through supabase-py's own query builder against the edge, per
role (anon, the owner, a transfer's counterparty, a stranger, service_role), on the tables whose
RLS README promises: users, user_preferences, transactions, transaction_events, wallets,
payment_methods (a column grant that leaves out the ciphertext), locations, WhatsApp sessions,
conversations and messages, the audit log, feature_flags (no signed-in user reads target lists)
and the security_invoker view user_recent_transactions; every other table and view of the schema
in a matrix of who reads it, and resources embedded along foreign keys, RLS applying inside.

Every expectation is PostgREST's: the rows RLS lets through (a filter never widens them), the
Content-Range and status of a page (206 for part of a counted result, 416 past its end), a
single object or PGRST116 (406), CSV as PostgREST writes it, a write the grants refuse as 42501
(401 for anon, 403 for a signed-in role, with PostgREST's JSON body), a write the policies
filter out as 0 rows, upserts 201 or 200 (PostgREST 12: 200 when nothing was inserted), the
singular and max-affected refusals rolled back, PGRST205 for a table outside the schema, and an
expired token refused before any of it.
Whatever the edge refuses or filters out is checked unchanged in the database itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from postgrest import APIError, CountMethod, ReturnMethod

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge
from tests.support.races import run_together
from tests.support.rls_seed import (
    COUNTERPARTY,
    COUNTERPARTY_HOME,
    COUNTERPARTY_MOMO,
    OWNER,
    OWNER_CARD,
    OWNER_CONVERSATION,
    OWNER_FAVOURITE,
    OWNER_HOME,
    OWNER_MOMO,
    SNAPSHOT,
    STRANGER,
    STRANGER_NAME,
    seed,
    snapshot,
)

NEWCOMER = "d0000000-0000-4000-8000-000000000004"
SECOND_NEWCOMER = "d0000000-0000-4000-8000-000000000005"
THIRD_NEWCOMER = "d0000000-0000-4000-8000-000000000006"
FOURTH_NEWCOMER = "d0000000-0000-4000-8000-000000000007"
FIFTH_NEWCOMER = "d0000000-0000-4000-8000-000000000008"
JSON_UTF8 = "application/json; charset=utf-8"


def test_owner_reads_own_rows_with_filters_order_range_count_single_and_csv(
    edge: Edge, database_url: str
) -> None:
    made = seed(edge, database_url)
    own_references = {
        made[name]["reference"] for name in ("credit", "debit", "payment", "transfer")
    }

    with RecordingClient(edge.url, edge.user_token(OWNER)) as owner:
        users = owner.supabase.table("users").select("*").execute()
        users_response = owner.last
        other_user = owner.supabase.table("users").select("id").eq("id", COUNTERPARTY).execute()
        renamed = (
            owner.supabase.table("users").select("id,name:display_name").eq("id", OWNER).execute()
        )
        single = owner.supabase.table("users").select("id,display_name").eq("id", OWNER).single()
        own_single = single.execute().data
        single_response = owner.last
        none_single_status, none_single = owner.error(
            owner.supabase.table("users").select("id").eq("id", COUNTERPARTY).single()
        )
        maybe_own = (
            owner.supabase.table("users").select("id").eq("id", OWNER).maybe_single().execute()
        )
        maybe_other = (
            owner.supabase.table("users")
            .select("id")
            .eq("id", COUNTERPARTY)
            .maybe_single()
            .execute()
        )
        stripped = (
            owner.supabase.table("users")
            .select("display_name,terms_version")
            .strip_nulls()
            .execute()
        )
        stripped_type = owner.last.headers["content-type"]
        stripped_single = (
            owner.supabase.table("users")
            .select("id,terms_accepted_at")
            .strip_nulls()
            .single()
            .execute()
        )
        stripped_single_type = owner.last.headers["content-type"]
        searched = (
            owner.supabase.table("users")
            .select("id")
            .text_search("display_name", "amina k", {"type": "plain", "config": "simple"})
            .execute()
        )
        csv = (
            owner.supabase.table("users")
            .select("display_name,phone_number")
            .eq("id", OWNER)
            .csv()
            .execute()
        )
        csv_response = owner.last

        transactions = owner.supabase.table("transactions")
        everything = transactions.select("reference", count=CountMethod.exact).execute()
        everything_range = owner.last.headers.get("content-range")
        everything_applied = owner.last.headers.get("preference-applied")
        page = (
            transactions.select("reference,amount", count=CountMethod.exact)
            .order("amount", desc=True)
            .range(1, 2)
            .execute()
        )
        page_response = owner.last
        uncounted_page = transactions.select("amount").order("amount").range(0, 1).execute()
        uncounted_response = owner.last
        past_the_end_status, past_the_end = owner.error(
            transactions.select("amount", count=CountMethod.exact).order("amount").range(10, 19)
        )
        past_the_end_range = owner.last.headers["content-range"]
        past_the_end_uncounted = transactions.select("amount").range(10, 19).execute()
        past_the_end_uncounted_range = owner.last.headers.get("content-range")
        # Below max_rows (1000 here, as Supabase's default) an estimated count is the exact
        # one; a planned count is the planner's guess, whatever the page.
        estimated = transactions.select("id", count=CountMethod.estimated).execute()
        estimated_range = owner.last.headers["content-range"]
        planned = transactions.select("id", count=CountMethod.planned).execute()
        planned_range = owner.last.headers["content-range"]
        head = transactions.select("id", count=CountMethod.exact, head=True).execute()
        head_response = owner.last
        none_counted = transactions.select("id", count=CountMethod.exact).limit(0).execute()
        none_counted_response = owner.last

        def amounts(builder: Any) -> list[Any]:
            return [row["amount"] for row in builder.order("amount").execute().data]

        chosen_statuses = amounts(
            transactions.select("amount").in_("status", ["pending", "failed"])
        )
        between = amounts(transactions.select("amount").gte("amount", 300).lt("amount", 1500))
        not_transfers = amounts(transactions.select("amount").neq("type", "transfer"))
        liked = amounts(transactions.select("amount").like("reference", "TXN-%"))
        iliked = amounts(transactions.select("amount").ilike("reference", "txn-%"))
        without_counterparty = amounts(transactions.select("amount").is_("counterparty_id", "null"))
        with_counterparty = amounts(
            transactions.select("amount").not_.is_("counterparty_id", "null")
        )
        either = amounts(transactions.select("amount").or_("amount.gt.1000,type.eq.transfer"))
        quoted_in = (
            owner.supabase.table("users")
            .select("id")
            .in_("display_name", ["Amina K", 'a,"b)', "Jean"])
            .execute()
        )
        nested = amounts(
            transactions.select("amount").or_("and(amount.gte.300,amount.lte.700),type.eq.credit")
        )
        starred = amounts(transactions.select("amount").like("type", "*it"))
        any_of = amounts(transactions.select("amount").ilike_any_of("type", "DEB*,cred*"))
        not_in = amounts(transactions.select("amount").not_.in_("type", ["debit", "credit"]))
        matched = amounts(transactions.select("amount").match({"type": "debit", "currency": "RWF"}))
        contains = amounts(transactions.select("amount").contains("metadata", {"channel": "momo"}))
        # isdistinct keeps the nulls that neq drops.
        distinct = amounts(
            transactions.select("amount").filter("counterparty_id", "isdistinct", COUNTERPARTY)
        )
        not_equal = amounts(transactions.select("amount").neq("counterparty_id", COUNTERPARTY))
        contained = amounts(
            transactions.select("amount").contained_by("metadata", {"channel": "momo", "x": 1})
        )
        by_channel = [
            row["amount"]
            for row in transactions.select("amount")
            .order("metadata->>channel", nullsfirst=False)
            .order("amount", desc=True)
            .execute()
            .data
        ]
        counterpartys_own = amounts(transactions.select("amount").eq("user_id", COUNTERPARTY))
        widened = amounts(
            transactions.select("amount").or_(
                f"user_id.eq.{COUNTERPARTY},counterparty_id.eq.{COUNTERPARTY}"
            )
        )
        nulls_first = [
            row["amount"]
            for row in transactions.select("amount")
            .order("counterparty_id", nullsfirst=True)
            .order("amount")
            .execute()
            .data
        ]
        nulls_last_desc = [
            row["amount"]
            for row in transactions.select("amount")
            .order("counterparty_id", desc=True, nullsfirst=False)
            .order("amount")
            .execute()
            .data
        ]
        json_path = (
            transactions.select("channel:metadata->>channel,amount_text:amount::text")
            .eq("id", made["credit"]["id"])
            .execute()
            .data
        )
        many_single_status, many_single = owner.error(transactions.select("id").single())
        csv_transactions = (
            transactions.select("amount,status,type").order("amount").csv().execute().data
        )

        wallets = (
            owner.supabase.table("wallets").select("user_id,currency,balance").order("currency")
        ).execute()
        preferences = owner.supabase.table("user_preferences").select("user_id,language").execute()
        methods = (
            owner.supabase.table("payment_methods")
            .select("id,masked_label,is_default")
            .order("masked_label")
            .execute()
        )
        ciphertext_status, ciphertext = owner.error(
            owner.supabase.table("payment_methods").select("*")
        )
        ciphertext_headers = owner.last.headers
        flags_status, flags = owner.error(owner.supabase.table("feature_flags").select("key"))
        probed = {
            "filter": owner.error(
                owner.supabase.table("payment_methods").select("id").eq("key_id", "local-1")
            ),
            "order": owner.error(
                owner.supabase.table("payment_methods").select("id").order("account_details")
            ),
        }
        locations = (
            owner.supabase.table("locations").select("id,location_type,place_name").order("id")
        ).execute()
        events = (
            owner.supabase.table("transaction_events")
            .select("transaction_id,to_status", count=CountMethod.exact)
            .not_.is_("from_status", "null")
            .order("to_status")
            .execute()
        )
        events_total = (
            owner.supabase.table("transaction_events")
            .select("id", count=CountMethod.exact, head=True)
            .execute()
            .count
        )
        sessions = (
            owner.supabase.table("whatsapp_sessions").select("user_id,phone_number").execute()
        )
        conversations = owner.supabase.table("conversation_mappings").select("id,wa_id").execute()
        messages = (
            owner.supabase.table("message_tracking")
            .select("wamid,direction,body")
            .order("wamid")
            .execute()
        )
        summary = (
            owner.supabase.table("user_recent_transactions")
            .select("user_id,currency,transaction_count,credits,debits,payments,transfers")
            .execute()
        )

    # users: the owner's row alone, with PostgREST's headers.
    assert [row["id"] for row in users.data] == [OWNER]
    assert users.data[0]["phone_number"] == "+250788100001"
    # Values as Postgres writes them in JSON (timestamps with their offset).
    assert [users.data[0]["created_at"]] == [
        text
        for (text,) in query(
            database_url,
            "select to_json(created_at) #>> '{}' from public.users where id = %s",
            (OWNER,),
        )
    ]
    # `*` is every column, in the table's order.
    assert list(users.data[0]) == [
        name
        for (name,) in query(
            database_url,
            "select attname::text from pg_catalog.pg_attribute"
            " where attrelid = 'public.users'::regclass and attnum > 0 and not attisdropped"
            " order by attnum",
        )
    ]
    assert users_response.status_code == 200
    assert users_response.headers["content-type"] == JSON_UTF8
    assert users_response.headers["content-range"] == "0-0/*"
    assert other_user.data == []
    assert renamed.data == [{"id": OWNER, "name": "Amina K"}]
    assert own_single == {"id": OWNER, "display_name": "Amina K"}
    assert single_response.headers["content-type"] == (
        "application/vnd.pgrst.object+json; charset=utf-8"
    )
    assert none_single_status == 406
    assert none_single == {
        "code": "PGRST116",
        "details": "The result contains 0 rows",
        "hint": None,
        "message": "Cannot coerce the result to a single JSON object",
    }
    assert searched.data == [{"id": OWNER}]
    # nulls=stripped leaves out the keys whose value is null, and says so in the media type.
    assert stripped.data == [{"display_name": "Amina K"}]
    assert stripped_type == "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8"
    assert stripped_single.data == {"id": OWNER}
    assert stripped_single_type == (
        "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8"
    )
    assert maybe_own is not None
    assert maybe_own.data == {"id": OWNER}
    assert maybe_other is None
    # PostgREST's CSV: the header from the first row's keys, each row as Postgres writes a
    # record (a value with a space quoted), lines joined by \n with none after the last.
    assert csv.data == 'display_name,phone_number\n"Amina K",+250788100001'
    assert csv_response.headers["content-type"] == "text/csv; charset=utf-8"

    # transactions: the owner's four (the counterparty's credit never, whatever the filter).
    assert {row["reference"] for row in everything.data} == own_references
    assert everything.count == 4
    assert everything_range == "0-3/4"
    assert everything_applied == "count=exact"
    assert page.data == [
        {"reference": made["payment"]["reference"], "amount": 700},
        {"reference": made["transfer"]["reference"], "amount": 300},
    ]
    assert page.count == 4
    assert page_response.status_code == 206
    assert page_response.headers["content-range"] == "1-2/4"
    assert uncounted_page.data == [{"amount": 200}, {"amount": 300}]
    assert uncounted_page.count is None
    assert uncounted_response.status_code == 200
    assert uncounted_response.headers["content-range"] == "0-1/*"
    assert past_the_end_status == 416
    assert past_the_end_range == "*/4"
    assert past_the_end == {
        "code": "PGRST103",
        "details": "An offset of 10 was requested, but there are only 4 rows.",
        "hint": None,
        "message": "Requested range not satisfiable",
    }
    assert past_the_end_uncounted.data == []
    assert past_the_end_uncounted_range == "*/*"
    assert (estimated.count, estimated_range) == (4, "0-3/4")
    assert isinstance(planned.count, int)
    assert planned_range == f"0-3/{planned.count}"
    # limit=0 with a count: no rows, the total, and 206 as for any part of a counted result.
    assert (none_counted.data, none_counted.count) == ([], 4)
    assert none_counted_response.status_code == 206
    assert none_counted_response.headers["content-range"] == "*/4"
    assert head.data == []
    assert head.count == 4
    assert head_response.status_code == 200
    assert head_response.content == b""
    assert head_response.headers["content-range"] == "0-3/4"
    assert chosen_statuses == [300, 700, 1500]
    assert between == [300, 700]
    assert not_transfers == [200, 700, 1500]
    assert liked == iliked == [200, 300, 700, 1500]
    assert without_counterparty == [200, 700, 1500]
    assert with_counterparty == [300]
    assert either == [300, 1500]
    assert quoted_in.data == [{"id": OWNER}]
    assert nested == [300, 700, 1500]
    assert starred == [200, 1500]
    assert any_of == [200, 1500]
    assert not_in == [300, 700]
    assert matched == [200]
    assert contains == [1500]
    assert distinct == [200, 700, 1500]
    assert not_equal == []
    assert contained == [200, 300, 700, 1500]
    assert by_channel == [1500, 700, 300, 200]
    assert counterpartys_own == []
    assert widened == [300]
    assert nulls_first == [200, 700, 1500, 300]
    assert nulls_last_desc == [300, 200, 700, 1500]
    assert json_path == [{"channel": "momo", "amount_text": "1500"}]
    assert many_single_status == 406
    assert many_single["code"] == "PGRST116"
    assert many_single["details"] == "The result contains 4 rows"
    assert csv_transactions == (
        "amount,status,type\n200,cancelled,debit\n300,pending,transfer\n"
        "700,failed,payment\n1500,pending,credit"
    )

    # The owner's wallets, preferences, methods (not the ciphertext) and places, and the view.
    assert wallets.data == [
        {"user_id": OWNER, "currency": "RWF", "balance": 2500},
        {"user_id": OWNER, "currency": "USD", "balance": 12.5},
    ]
    assert preferences.data == [{"user_id": OWNER, "language": "en-GB"}]
    assert methods.data == [
        {"id": OWNER_MOMO, "masked_label": "MTN **** 4567", "is_default": False},
        {"id": OWNER_CARD, "masked_label": "VISA **** 4242", "is_default": True},
    ]
    # `*` names account_details and key_id, which the column grant leaves out: Postgres refuses
    # the whole statement, as it does under PostgREST.
    assert ciphertext_status == 403
    assert ciphertext == {
        "code": "42501",
        "details": None,
        "hint": None,
        "message": "permission denied for table payment_methods",
    }
    assert ciphertext_headers["content-type"] == JSON_UTF8
    # Target lists are private: a signed-in user reads no flag.
    assert (flags_status, flags["code"], flags["message"]) == (
        403,
        "42501",
        "permission denied for table feature_flags",
    )
    # Nor may a filter or an order probe the columns the grant leaves out.
    for use, (status, error) in probed.items():
        assert (use, status, error["code"], error["message"]) == (
            use,
            403,
            "42501",
            "permission denied for table payment_methods",
        )
    assert "www-authenticate" not in ciphertext_headers
    assert locations.data == [
        {"id": OWNER_HOME, "location_type": "home", "place_name": "Home"},
        {"id": OWNER_FAVOURITE, "location_type": "favorite", "place_name": "Convention Centre"},
    ]
    # Every creation and move writes an event: four created, two moved.
    assert events.count == 2
    assert events.data == [
        {"transaction_id": made["debit"]["id"], "to_status": "cancelled"},
        {"transaction_id": made["payment"]["id"], "to_status": "failed"},
    ]
    assert events_total == 6
    assert sessions.data == [{"user_id": OWNER, "phone_number": "+250788100001"}]
    assert conversations.data == [{"id": OWNER_CONVERSATION, "wa_id": "250788100001"}]
    assert messages.data == [
        {"wamid": "wamid.owner.1", "direction": "INBOUND", "body": "Muraho"},
        {"wamid": "wamid.owner.2", "direction": "OUTBOUND", "body": "Murakoze"},
    ]
    assert summary.data == [
        {
            "user_id": OWNER,
            "currency": "RWF",
            "transaction_count": 4,
            "credits": 1500,
            "debits": 200,
            "payments": 700,
            "transfers": 300,
        }
    ]


def test_counterparty_and_stranger_see_only_what_rls_gives_them(
    edge: Edge, database_url: str
) -> None:
    made = seed(edge, database_url)

    with RecordingClient(edge.url, edge.user_token(COUNTERPARTY)) as counterparty:
        seen = (
            counterparty.supabase.table("transactions")
            .select("reference,user_id,counterparty_id", count=CountMethod.exact)
            .order("amount")
            .execute()
        )
        seen_range = counterparty.last.headers["content-range"]
        users = counterparty.supabase.table("users").select("id").execute()
        wallets = counterparty.supabase.table("wallets").select("user_id,balance").execute()
        events = (
            counterparty.supabase.table("transaction_events").select("transaction_id").execute()
        )
        messages = counterparty.supabase.table("message_tracking").select("wamid").execute()

    with RecordingClient(edge.url, edge.user_token(STRANGER)) as stranger:
        own = stranger.supabase.table("users").select("id,display_name").execute()
        own_csv = (
            stranger.supabase.table("users").select("display_name,terms_version").csv().execute()
        )
        user_rows = stranger.supabase.table("users")
        # A plain operator takes the rest of the value as it is, quotes and commas included; in
        # a logic tree the value is quoted, with backslash escapes.
        by_raw_name = user_rows.select("id").eq("display_name", STRANGER_NAME).execute()
        by_quoted_name = (
            user_rows.select("id")
            .or_('display_name.eq."Ngabo \\"Ngabs\\", Jr",display_name.eq.nobody')
            .execute()
        )
        not_either = (
            user_rows.select("id").not_.or_("display_name.eq.nobody,display_name.is.null").execute()
        )
        empty = {
            table: stranger.supabase.table(table).select(column, count=CountMethod.exact).execute()
            for table, column in (
                ("transactions", "id"),
                ("wallets", "user_id"),
                ("payment_methods", "id"),
                ("locations", "id"),
                ("transaction_events", "id"),
                ("whatsapp_sessions", "id"),
                ("conversation_mappings", "id"),
                ("message_tracking", "id"),
                ("user_recent_transactions", "user_id"),
            )
        }
        empty_response = stranger.last
        empty_csv = stranger.supabase.table("transactions").select("id,amount").csv().execute()
        owner_by_id = stranger.supabase.table("users").select("id").eq("id", OWNER).execute()
        owner_single_status, owner_single = stranger.error(
            stranger.supabase.table("users").select("id").eq("id", OWNER).single()
        )
        past_nothing_status, past_nothing = stranger.error(
            stranger.supabase.table("transactions")
            .select("id", count=CountMethod.exact)
            .range(5, 9)
        )
        # Naming another user's row exactly finds nothing either.
        by_reference = (
            stranger.supabase.table("transactions")
            .select("id")
            .eq("reference", made["credit"]["reference"])
            .maybe_single()
            .execute()
        )

    # The transfer reaches the counterparty (policy: user or counterparty), the owner's other
    # transactions do not.
    assert seen.data == [
        {
            "reference": made["transfer"]["reference"],
            "user_id": OWNER,
            "counterparty_id": COUNTERPARTY,
        },
        {
            "reference": made["counterparty_credit"]["reference"],
            "user_id": COUNTERPARTY,
            "counterparty_id": None,
        },
    ]
    assert seen.count == 2
    assert seen_range == "0-1/2"
    assert users.data == [{"id": COUNTERPARTY}]
    assert wallets.data == [{"user_id": COUNTERPARTY, "balance": 900}]
    # Events are the transaction owner's (policy: user_id only), not the counterparty's.
    assert events.data == [{"transaction_id": made["counterparty_credit"]["id"]}]
    assert messages.data == [{"wamid": "wamid.counterparty.1"}]

    assert own.data == [{"id": STRANGER, "display_name": STRANGER_NAME}]
    assert by_raw_name.data == by_quoted_name.data == not_either.data == [{"id": STRANGER}]
    # Quotes doubled and the value quoted, as Postgres writes a record; null an empty field.
    assert own_csv.data == 'display_name,terms_version\n"Ngabo ""Ngabs"", Jr",'

    for table, response in empty.items():
        assert (table, response.data, response.count) == (table, [], 0)
    assert empty_response.status_code == 200
    assert empty_response.headers["content-range"] == "*/0"
    # PostgREST's CSV of no rows: no header (it comes from the first row), then the newline.
    assert empty_csv.data == "\n"
    assert owner_by_id.data == []
    assert owner_single_status == 406
    assert owner_single["code"] == "PGRST116"
    assert owner_single["details"] == "The result contains 0 rows"
    assert past_nothing_status == 416
    assert past_nothing == {
        "code": "PGRST103",
        "details": "An offset of 5 was requested, but there are only 0 rows.",
        "hint": None,
        "message": "Requested range not satisfiable",
    }
    assert by_reference is None


def test_owner_writes_what_grants_and_policies_allow_and_a_stranger_changes_nothing(
    edge: Edge, database_url: str
) -> None:
    seed(edge, database_url)
    before = snapshot(database_url)

    with RecordingClient(edge.url, edge.user_token(OWNER)) as owner:
        refused = {
            "phone": owner.error(
                owner.supabase.table("users")
                .update({"phone_number": "+250700000009"})
                .eq("id", OWNER)
            ),
            "insert user": owner.error(
                owner.supabase.table("users").insert({"id": NEWCOMER, "phone_number": "+2507001"})
            ),
            "delete user": owner.error(owner.supabase.table("users").delete().eq("id", OWNER)),
            "upsert preferences": owner.error(
                owner.supabase.table("user_preferences").upsert(
                    {"user_id": OWNER, "language": "sw-KE"}, on_conflict="user_id"
                )
            ),
            "insert transaction": owner.error(
                owner.supabase.table("transactions").insert(
                    {"user_id": OWNER, "type": "credit", "amount": 1, "currency": "RWF"}
                )
            ),
            "update wallet": owner.error(
                owner.supabase.table("wallets").update({"balance": 1000000}).eq("user_id", OWNER)
            ),
            "update location": owner.error(
                owner.supabase.table("locations")
                .update({"place_name": "Elsewhere"})
                .eq("id", OWNER_HOME)
            ),
        }
        refused_headers = owner.last.headers
        bad_language_status, bad_language = owner.error(
            owner.supabase.table("user_preferences")
            .update({"language": "not a tag"})
            .eq("user_id", OWNER)
        )
        others_name = (
            owner.supabase.table("users")
            .update({"display_name": "Hijacked"})
            .eq("id", COUNTERPARTY)
            .execute()
        )
        others_name_response = owner.last
        others_place = owner.supabase.table("locations").delete().eq("id", COUNTERPARTY_HOME)
        others_place_deleted = others_place.execute().data
        both_places_status, both_places = owner.error(
            owner.supabase.table("locations")
            .delete()
            .in_("id", [OWNER_HOME, OWNER_FAVOURITE])
            .single()
        )
        # An empty body updates nothing (PostgREST selects no row instead of an empty SET).
        nothing = owner.supabase.table("users").update({}).eq("id", OWNER).execute()
        nothing_response = owner.last
        after_refusals = snapshot(database_url)

        renamed = (
            owner.supabase.table("users")
            .update({"display_name": "Amina Uwase"})
            .eq("id", OWNER)
            .execute()
        )
        renamed_response = owner.last
        preferences = (
            owner.supabase.table("user_preferences")
            .update({"language": "rw-RW", "delay_threshold_minutes": 30}, count=CountMethod.exact)
            .eq("user_id", OWNER)
            .execute()
        )
        preferences_range = owner.last.headers["content-range"]
        preferences_applied = owner.last.headers["preference-applied"]
        quiet = (
            owner.supabase.table("user_preferences")
            .update({"notification_enabled": False}, returning=ReturnMethod.minimal)
            .eq("user_id", OWNER)
            .execute()
        )
        quiet_response = owner.last
        forgotten = (
            owner.supabase.table("locations")
            .delete()
            .eq("id", OWNER_FAVOURITE)
            .select("id,location_type")
            .execute()
        )
        forgotten_response = owner.last

    with RecordingClient(edge.url, edge.user_token(STRANGER)) as stranger:
        stranger_rename = (
            stranger.supabase.table("users")
            .update({"display_name": "Stolen"})
            .eq("id", OWNER)
            .execute()
        )
        stranger_preferences = (
            stranger.supabase.table("user_preferences")
            .update({"language": "de-DE"}, returning=ReturnMethod.minimal)
            .eq("user_id", OWNER)
            .execute()
        )
        stranger_preferences_status = stranger.last.status_code
        stranger_delete = stranger.supabase.table("locations").delete().eq("id", OWNER_HOME)
        stranger_deleted = stranger_delete.execute().data

    for name, (status, error) in refused.items():
        table = {
            "phone": "users",
            "insert user": "users",
            "delete user": "users",
            "upsert preferences": "user_preferences",
            "insert transaction": "transactions",
            "update wallet": "wallets",
            "update location": "locations",
        }[name]
        assert (name, status, error) == (
            name,
            403,
            {
                "code": "42501",
                "details": None,
                "hint": None,
                "message": f"permission denied for table {table}",
            },
        )
    assert refused_headers["content-type"] == JSON_UTF8
    assert refused_headers["proxy-status"] == "PostgREST; error=42501"
    assert bad_language_status == 400
    assert bad_language["code"] == "23514"
    assert bad_language["message"] == (
        'new row for relation "user_preferences" violates check constraint '
        '"user_preferences_language_tag"'
    )
    # RLS filters the other user's rows out of an update or delete: no error, no row.
    assert others_name.data == []
    assert others_name_response.status_code == 200
    assert others_name_response.headers["content-range"] == "*/*"
    assert others_place_deleted == []
    # One object asked for, two deleted: PGRST116, and the delete is rolled back.
    assert both_places_status == 406
    assert both_places["code"] == "PGRST116"
    assert both_places["details"] == "The result contains 2 rows"
    assert nothing.data == []
    assert nothing_response.status_code == 200
    assert nothing_response.headers["content-range"] == "*/*"
    assert after_refusals == before

    assert renamed.data[0]["id"] == OWNER
    assert renamed.data[0]["display_name"] == "Amina Uwase"
    assert renamed.data[0]["phone_number"] == "+250788100001"
    assert renamed_response.status_code == 200
    assert renamed_response.headers["content-range"] == "0-0/*"
    assert preferences.data[0]["language"] == "rw-RW"
    assert preferences.data[0]["delay_threshold_minutes"] == 30
    assert preferences.count == 1
    assert preferences_range == "0-0/1"
    assert preferences_applied == "return=representation, count=exact"
    assert quiet.data == []
    assert quiet_response.status_code == 204
    assert quiet_response.content == b""
    assert forgotten.data == [{"id": OWNER_FAVOURITE, "location_type": "favorite"}]
    assert forgotten_response.status_code == 200
    assert forgotten_response.headers["content-range"] == "*/*"

    assert stranger_rename.data == []
    assert stranger_preferences.data == []
    assert stranger_preferences_status == 204
    assert stranger_deleted == []
    assert query(
        database_url,
        "select id::text, display_name from public.users order by id",
    ) == [(OWNER, "Amina Uwase"), (COUNTERPARTY, "Jean"), (STRANGER, STRANGER_NAME)]
    assert query(
        database_url,
        "select user_id::text, language, delay_threshold_minutes, notification_enabled"
        " from public.user_preferences order by user_id",
    ) == [
        (OWNER, "rw-RW", 30, False),
        (COUNTERPARTY, "fr-RW", 15, True),
        (STRANGER, "rw-RW", 15, True),
    ]
    assert query(database_url, "select id::text from public.locations order by id") == [
        (OWNER_HOME,),
        (COUNTERPARTY_HOME,),
    ]
    after = snapshot(database_url)
    for table in ("transactions", "wallets", "payment_methods"):
        assert (table, after[table]) == (table, before[table])


def test_anon_is_refused_every_table_and_changes_nothing(edge: Edge, database_url: str) -> None:
    seed(edge, database_url)
    before = snapshot(database_url)

    with RecordingClient(edge.url, edge.anon_key) as anon:
        reads = {
            table: anon.error(anon.supabase.table(table).select(column))
            for table, column in (
                ("users", "id"),
                ("user_preferences", "user_id"),
                ("transactions", "id"),
                ("wallets", "user_id"),
                ("payment_methods", "id"),
                ("locations", "id"),
                ("feature_flags", "key"),
            )
        }
        read_headers = anon.last.headers
        view_status, view = anon.error(
            anon.supabase.table("user_recent_transactions").select("user_id")
        )
        counted_status, counted = anon.error(
            anon.supabase.table("users").select("id", count=CountMethod.exact, head=True)
        )
        writes = {
            "insert users": anon.error(
                anon.supabase.table("users").insert({"id": NEWCOMER, "phone_number": "+2507002"})
            ),
            "upsert users": anon.error(
                anon.supabase.table("users").upsert(
                    {"id": OWNER, "phone_number": "+250788100001", "display_name": "anon"}
                )
            ),
            "update user_preferences": anon.error(
                anon.supabase.table("user_preferences")
                .update({"language": "de-DE"})
                .eq("user_id", OWNER)
            ),
            "delete locations": anon.error(
                anon.supabase.table("locations").delete().eq("id", OWNER_HOME)
            ),
        }
        write_headers = anon.last.headers

    expired_token = edge.user_token(OWNER, exp=int(time.time()) - 3600)
    with RecordingClient(edge.url, expired_token) as expired:
        expired_status, expired_error = expired.error(expired.supabase.table("users").select("id"))
        expired_headers = expired.last.headers

    for table, (status, error) in reads.items():
        assert (table, status, error) == (
            table,
            401,
            {
                "code": "42501",
                "details": None,
                "hint": None,
                "message": f"permission denied for table {table}",
            },
        )
    assert read_headers["www-authenticate"] == "Bearer"
    assert read_headers["content-type"] == JSON_UTF8
    assert view_status == 401
    assert view["message"] == "permission denied for view user_recent_transactions"
    # HEAD has no body: supabase-py reads the error from Proxy-Status.
    assert counted_status == 401
    assert counted["code"] == "42501"
    for name, (status, error) in writes.items():
        table = name.split(" ")[1]
        assert (name, status, error["code"], error["message"]) == (
            name,
            401,
            "42501",
            f"permission denied for table {table}",
        )
    assert write_headers["www-authenticate"] == "Bearer"
    assert expired_status == 401
    assert (expired_error["code"], expired_error["message"]) == ("PGRST303", "JWT expired")
    assert expired_headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="JWT expired"'
    )
    assert snapshot(database_url) == before


def test_service_role_reads_everything_and_writes_where_granted(
    edge: Edge, database_url: str
) -> None:
    made = seed(edge, database_url)
    start = snapshot(database_url)
    newcomer = {"id": NEWCOMER, "phone_number": "+250788100004", "display_name": "New"}

    with RecordingClient(edge.url, edge.service_role_key) as service:
        users = (
            service.supabase.table("users")
            .select("id", count=CountMethod.exact)
            .order("id")
            .execute()
        )
        users_range = service.last.headers["content-range"]
        transactions = (
            service.supabase.table("transactions").select("reference").order("amount").execute()
        )
        methods = (
            service.supabase.table("payment_methods").select("id,user_id").order("id").execute()
        )
        ciphertext_status, ciphertext = service.error(
            service.supabase.table("payment_methods").select("*")
        )
        refused_transaction_status, refused_transaction = service.error(
            service.supabase.table("transactions").insert(
                {"user_id": OWNER, "type": "credit", "amount": 1, "currency": "RWF"}
            )
        )
        refused_wallet_status, refused_wallet = service.error(
            service.supabase.table("wallets").delete().eq("user_id", OWNER)
        )
        unknown_column_status, unknown_column = service.error(
            service.supabase.table("users").select("nope")
        )
        unknown_payload_status, unknown_payload = service.error(
            service.supabase.table("users").insert(newcomer | {"nope": 1})
        )
        unknown_table_status, unknown_table = service.error(
            service.supabase.table("zzqx_nothing_here").select("*")
        )
        unknown_table_headers = service.last.headers
        near_misses = {
            name: service.error(service.supabase.table(name).select("*"))[1]["hint"]
            for name in ("user", "wallet", "transaction")
        }
        other_schema_status, other_schema = service.error(
            service.supabase.schema("monitoring").table("transaction_summary").select("*")
        )
        private_table_status, private_table = service.error(
            service.supabase.table("otp_codes").select("*")
        )
        hostile_value = (
            service.supabase.table("users")
            .select("id")
            .eq("display_name", "x'); drop table public.users; --")
            .execute()
        )
        hostile_pattern = (
            service.supabase.table("users").select("id").ilike("display_name", '%"\\%').execute()
        )
        hostile_table_status, hostile_table = service.error(
            service.supabase.table('users"; drop table public.users; --').select("id")
        )
        before_writes = snapshot(database_url)

        inserted = service.supabase.table("users").insert(newcomer).execute()
        inserted_response = service.last
        unicode_name = "Uwase 🚕 ناصر & co/?#%"
        renamed_unicode = (
            service.supabase.table("users")
            .update({"display_name": unicode_name})
            .eq("id", NEWCOMER)
            .select("display_name")
            .single()
            .execute()
        )
        found_unicode = (
            service.supabase.table("users").select("id").eq("display_name", unicode_name).execute()
        )
        liked_unicode = (
            service.supabase.table("users").select("id").like("display_name", "*🚕 ناصر*").execute()
        )
        service.supabase.table("users").update({"display_name": "New"}).eq("id", NEWCOMER).execute()
        quiet = (
            service.supabase.table("users")
            .insert(
                [
                    {"id": SECOND_NEWCOMER, "phone_number": "+250788100005"},
                    {"id": THIRD_NEWCOMER, "phone_number": "+250788100006"},
                ],
                returning=ReturnMethod.minimal,
            )
            .execute()
        )
        quiet_response = service.last
        # A key some rows lack: null for them (a not-null violation here), or with
        # missing=default the column's default.
        two_preferences = [
            {"user_id": SECOND_NEWCOMER},
            {"user_id": THIRD_NEWCOMER, "language": "sw-KE"},
        ]
        nulls_status, nulls = service.error(
            service.supabase.table("user_preferences").insert(two_preferences)
        )
        defaults = (
            service.supabase.table("user_preferences")
            .insert(two_preferences, default_to_null=False)
            .select("user_id,language")
            .execute()
        )
        duplicate_status, duplicate = service.error(
            service.supabase.table("users").insert(
                {"id": FOURTH_NEWCOMER, "phone_number": newcomer["phone_number"]}
            )
        )
        bad_phone_status, bad_phone = service.error(
            service.supabase.table("users").insert({"id": FOURTH_NEWCOMER, "phone_number": "0788"})
        )
        half_bad_status, half_bad = service.error(
            service.supabase.table("users").insert(
                [
                    {"id": FOURTH_NEWCOMER, "phone_number": "+250788100007"},
                    {"id": FIFTH_NEWCOMER, "phone_number": "0788"},
                ]
            )
        )
        merged = (
            service.supabase.table("users")
            .upsert(newcomer | {"display_name": "Merged"}, on_conflict="id")
            .execute()
        )
        merged_response = service.last
        ignored = (
            service.supabase.table("users")
            .upsert(newcomer | {"display_name": "Ignored"}, ignore_duplicates=True)
            .execute()
        )
        ignored_status = service.last.status_code
        bulk = (
            service.supabase.table("user_preferences")
            .upsert(
                [
                    {"user_id": NEWCOMER, "language": "sw-KE"},
                    {"user_id": OWNER, "language": "en-US"},
                ],
                count=CountMethod.exact,
                on_conflict="user_id",
            )
            .execute()
        )
        bulk_response = service.last
        by_phone = (
            service.supabase.table("users")
            .upsert(
                {"phone_number": "+250788100001", "display_name": "By phone"},
                on_conflict="phone_number",
            )
            .select("id,display_name")
            .execute()
        )
        by_phone_status = service.last.status_code
        no_such_key_status, no_such_key = service.error(
            service.supabase.table("users").upsert(
                {"id": OWNER, "display_name": "x"}, on_conflict="display_name"
            )
        )
        after_writes = snapshot(database_url)
        newcomer_name = query(
            database_url, "select display_name from public.users where id = %s", (NEWCOMER,)
        )
        languages = query(
            database_url,
            "select user_id::text, language from public.user_preferences order by user_id",
        )

        two = [OWNER, COUNTERPARTY]
        one_of_two_status, one_of_two = service.error(
            service.supabase.table("users").update({"display_name": "Same"}).in_("id", two).single()
        )
        capped_status, capped = service.error(
            service.supabase.table("users")
            .update({"display_name": "Same"})
            .in_("id", two)
            .max_affected(1)
        )
        after_rollbacks = snapshot(database_url)
        deleted = (
            service.supabase.table("users")
            .delete(count=CountMethod.exact)
            .eq("id", NEWCOMER)
            .select("id")
            .execute()
        )
        deleted_response = service.last

    assert [row["id"] for row in users.data] == [OWNER, COUNTERPARTY, STRANGER]
    assert users.count == 3
    assert users_range == "0-2/3"
    assert [row["reference"] for row in transactions.data] == [
        made[name]["reference"]
        for name in ("debit", "transfer", "payment", "credit", "counterparty_credit")
    ]
    assert methods.data == [
        {"id": OWNER_CARD, "user_id": OWNER},
        {"id": OWNER_MOMO, "user_id": OWNER},
        {"id": COUNTERPARTY_MOMO, "user_id": COUNTERPARTY},
    ]
    assert (ciphertext_status, ciphertext["code"], ciphertext["message"]) == (
        403,
        "42501",
        "permission denied for table payment_methods",
    )
    assert (refused_transaction_status, refused_transaction["message"]) == (
        403,
        "permission denied for table transactions",
    )
    assert (refused_wallet_status, refused_wallet["message"]) == (
        403,
        "permission denied for table wallets",
    )
    assert (unknown_column_status, unknown_column["code"], unknown_column["message"]) == (
        400,
        "42703",
        "column users.nope does not exist",
    )
    assert unknown_payload_status == 400
    assert unknown_payload == {
        "code": "PGRST204",
        "details": None,
        "hint": None,
        "message": "Could not find the 'nope' column of 'users' in the schema cache",
    }
    assert unknown_table_status == 404
    assert unknown_table == {
        "code": "PGRST205",
        "details": None,
        "hint": None,
        "message": "Could not find the table 'public.zzqx_nothing_here' in the schema cache",
    }
    assert unknown_table_headers["content-type"] == JSON_UTF8
    assert unknown_table_headers["proxy-status"] == "PostgREST; error=PGRST205"
    # A name close to one the schema has gets PostgREST's fuzzy hint.
    assert near_misses == {
        "user": "Perhaps you meant the table 'public.users'",
        "wallet": "Perhaps you meant the table 'public.wallets'",
        "transaction": "Perhaps you meant the table 'public.transactions'",
    }
    # Only the exposed schema is served: monitoring's views are the analyst's, not the API's.
    assert other_schema_status == 406
    assert other_schema == {
        "code": "PGRST106",
        "details": None,
        "hint": "Only the following schemas are exposed: public",
        "message": "Invalid schema: monitoring",
    }
    assert private_table_status == 404
    assert private_table["code"] == "PGRST205"
    assert private_table["message"] == (
        "Could not find the table 'public.otp_codes' in the schema cache"
    )
    assert hostile_value.data == []
    assert hostile_pattern.data == []
    assert hostile_table_status == 404
    assert hostile_table["code"] == "PGRST205"
    assert hostile_table["message"] == (
        "Could not find the table 'public.users\"; drop table public.users; --' in the schema cache"
    )
    assert before_writes == start

    assert inserted.data[0]["id"] == NEWCOMER
    assert inserted.data[0]["display_name"] == "New"
    assert inserted_response.status_code == 201
    assert renamed_unicode.data == {"display_name": unicode_name}
    assert found_unicode.data == liked_unicode.data == [{"id": NEWCOMER}]
    assert inserted_response.headers["content-range"] == "*/*"
    # PostgREST names the new row in Location only for return=headers-only.
    assert "location" not in inserted_response.headers
    assert quiet.data == []
    assert quiet_response.status_code == 201
    assert quiet_response.content == b""
    assert quiet_response.headers["content-range"] == "*/*"
    assert "content-type" not in quiet_response.headers
    assert nulls_status == 400
    assert nulls["code"] == "23502"
    assert nulls["message"] == (
        'null value in column "language" of relation "user_preferences" violates not-null '
        "constraint"
    )
    assert sorted((row["user_id"], row["language"]) for row in defaults.data) == [
        (SECOND_NEWCOMER, "en-GB"),
        (THIRD_NEWCOMER, "sw-KE"),
    ]
    assert duplicate_status == 409
    assert duplicate["code"] == "23505"
    assert duplicate["message"] == (
        'duplicate key value violates unique constraint "users_phone_number_key"'
    )
    assert duplicate["details"] == "Key (phone_number)=(+250788100004) already exists."
    assert bad_phone_status == 400
    assert bad_phone["code"] == "23514"
    assert bad_phone["message"] == (
        'new row for relation "users" violates check constraint "users_phone_number_e164"'
    )
    # A bulk insert is one statement: one bad row and none is kept.
    assert (half_bad_status, half_bad["code"]) == (400, "23514")
    assert (
        query(
            database_url,
            "select id from public.users where id in (%s, %s)",
            (FOURTH_NEWCOMER, FIFTH_NEWCOMER),
        )
        == []
    )
    # PostgREST 12: merge-duplicates that inserts nothing is 200; ignore-duplicates stays 201.
    assert merged.data[0]["display_name"] == "Merged"
    assert merged_response.status_code == 200
    assert merged_response.headers["preference-applied"] == (
        "resolution=merge-duplicates, return=representation"
    )
    assert ignored.data == []
    assert ignored_status == 201
    assert sorted((row["user_id"], row["language"]) for row in bulk.data) == [
        (OWNER, "en-US"),
        (NEWCOMER, "sw-KE"),
    ]
    assert bulk.count == 2
    # on_conflict names any unique key; one that is none is Postgres's 42P10, a 400.
    assert by_phone.data == [{"id": OWNER, "display_name": "By phone"}]
    assert by_phone_status == 200
    assert no_such_key_status == 400
    assert no_such_key["code"] == "42P10"
    assert no_such_key["message"] == (
        "there is no unique or exclusion constraint matching the ON CONFLICT specification"
    )
    assert bulk_response.status_code == 201
    assert bulk_response.headers["content-range"] == "*/2"
    assert newcomer_name == [("Merged",)]
    assert languages == [
        (OWNER, "en-US"),
        (COUNTERPARTY, "fr-RW"),
        (STRANGER, "rw-RW"),
        (NEWCOMER, "sw-KE"),
        (SECOND_NEWCOMER, "en-GB"),
        (THIRD_NEWCOMER, "sw-KE"),
    ]

    # A singular request or a max-affected cap that the statement exceeds is rolled back.
    assert one_of_two_status == 406
    assert one_of_two == {
        "code": "PGRST116",
        "details": "The result contains 2 rows",
        "hint": None,
        "message": "Cannot coerce the result to a single JSON object",
    }
    assert capped_status == 400
    assert capped == {
        "code": "PGRST124",
        "details": "The query affects 2 rows",
        "hint": None,
        "message": "Query result exceeds max-affected preference constraint",
    }
    assert after_rollbacks == after_writes

    assert deleted.data == [{"id": NEWCOMER}]
    assert deleted.count == 1
    assert deleted_response.status_code == 200
    assert deleted_response.headers["content-range"] == "*/1"
    assert deleted_response.headers["preference-applied"] == "return=representation, count=exact"
    assert query(database_url, "select 1 from public.users where id = %s", (NEWCOMER,)) == []


def test_users_read_their_own_audit_entries_with_array_filters(
    edge: Edge, database_url: str
) -> None:
    seed(edge, database_url)

    with RecordingClient(edge.url, edge.user_token(OWNER)) as owner:
        # Flipping the default updates both of the owner's methods: two audited rows by them.
        owner.rpc("set_default_payment_method", {"p_payment_method_id": OWNER_MOMO}).execute()
        audit = owner.supabase.table("system_audit_logs")
        own_audit = (
            audit.select("actor_type,actor_identifier,action,resource_id,changed_keys")
            .order("resource_id")
            .execute()
        )

        def resources(builder: Any) -> list[str]:
            return [row["resource_id"] for row in builder.order("resource_id").execute().data]

        containing = resources(audit.select("resource_id").contains("changed_keys", ["is_default"]))
        overlapping = resources(
            audit.select("resource_id").overlaps("changed_keys", ["masked_label", "is_default"])
        )
        contained = resources(
            audit.select("resource_id").contained_by("changed_keys", ["is_default"])
        )
        contained_wider = resources(
            audit.select("resource_id").contained_by(
                "changed_keys", ["is_default", "updated_at", "verified_at"]
            )
        )
    with RecordingClient(edge.url, edge.user_token(STRANGER)) as stranger:
        strangers_audit = (
            stranger.supabase.table("system_audit_logs").select("id", count=CountMethod.exact)
        ).execute()
    with RecordingClient(edge.url, edge.anon_key) as anon:
        anon_status, anon_error = anon.error(anon.supabase.table("system_audit_logs").select("id"))
    with RecordingClient(edge.url, edge.service_role_key) as service:
        every_audit = (
            service.supabase.table("system_audit_logs")
            .select("id", count=CountMethod.exact, head=True)
            .execute()
        )

    assert own_audit.data == [
        {
            "actor_type": "user",
            "actor_identifier": OWNER,
            "action": "update",
            "resource_id": method,
            "changed_keys": ["is_default", "updated_at"],
        }
        for method in (OWNER_CARD, OWNER_MOMO)
    ]
    assert containing == overlapping == contained_wider == [OWNER_CARD, OWNER_MOMO]
    assert contained == []
    assert (strangers_audit.data, strangers_audit.count) == ([], 0)
    assert (anon_status, anon_error["message"]) == (
        401,
        "permission denied for table system_audit_logs",
    )
    # service_role reads the whole log: the transactions' and wallets' rows of the seed too.
    total = query(database_url, "select count(*) from public.system_audit_logs")[0][0]
    assert total > 2
    assert every_audit.count == total


ALL = "all"  # every row in the table: service_role bypasses RLS
# table: (a column every reader may select, what each role reads: a row count, every row, or
# the HTTP status of the refusal). The counterparty sees the owner's transfer, and in the view
# the group it falls in; transaction events are the transaction owner's alone.
READS: dict[str, tuple[str, dict[str, int | str]]] = {
    "users": ("id", {"owner": 1, "counterparty": 1, "stranger": 1, "service": ALL}),
    "user_preferences": ("user_id", {"owner": 1, "counterparty": 1, "stranger": 1, "service": ALL}),
    "transactions": ("id", {"owner": 4, "counterparty": 2, "stranger": 0, "service": ALL}),
    "transaction_events": ("id", {"owner": 6, "counterparty": 1, "stranger": 0, "service": ALL}),
    "wallets": ("user_id", {"owner": 2, "counterparty": 1, "stranger": 0, "service": ALL}),
    "payment_methods": ("id", {"owner": 2, "counterparty": 1, "stranger": 0, "service": ALL}),
    "locations": ("id", {"owner": 2, "counterparty": 1, "stranger": 0, "service": ALL}),
    "whatsapp_sessions": ("id", {"owner": 1, "counterparty": 1, "stranger": 0, "service": ALL}),
    "conversation_mappings": ("id", {"owner": 1, "counterparty": 1, "stranger": 0, "service": ALL}),
    "message_tracking": ("id", {"owner": 2, "counterparty": 1, "stranger": 0, "service": ALL}),
    "system_audit_logs": ("id", {"owner": 0, "counterparty": 0, "stranger": 0, "service": ALL}),
    "user_recent_transactions": (
        "user_id",
        {"owner": 1, "counterparty": 2, "stranger": 0, "service": ALL},
    ),
    # service_role only, by design (README): queues, outbox, event store, jobs, metrics.
    **{
        table: ("*", {"owner": "403", "counterparty": "403", "stranger": "403", "service": ALL})
        for table in (
            "outbox_events",
            "message_queue",
            "message_queue_completed",
            "whatsapp_message_queue",
            "background_jobs",
            "event_store",
            "event_snapshots",
            "event_subscriptions",
            "system_metrics",
            "routes",
            "feature_flag_evaluations",
        )
    },
    # Nobody but the table's owner: read through RPCs only.
    **{
        table: ("*", {"owner": "403", "counterparty": "403", "stranger": "403", "service": "403"})
        for table in ("cache_entries", "service_registry")
    },
}


# README: "Nobody but the table's owner reads feature_flags", yet service_role holds every table
# privilege on it (reads work; writes fail inside the table's check and triggers, which use
# schema private). Which one is meant is the project's call, so only the refusals of anon and
# users are asserted (above), not service_role's read.
UNDECIDED = {"feature_flags"}


def test_every_table_reads_per_role_as_grants_and_policies_say(
    edge: Edge, database_url: str
) -> None:
    seed(edge, database_url)
    keys = {
        "anon": edge.anon_key,
        "owner": edge.user_token(OWNER),
        "counterparty": edge.user_token(COUNTERPARTY),
        "stranger": edge.user_token(STRANGER),
        "service": edge.service_role_key,
    }
    seen: dict[tuple[str, str], int | str] = {}
    for role, key in keys.items():
        with RecordingClient(edge.url, key) as client:
            for table, (column, _) in READS.items():
                builder = client.supabase.table(table).select(
                    column, count=CountMethod.exact, head=True
                )
                try:
                    seen[table, role] = builder.execute().count or 0
                except APIError:
                    seen[table, role] = str(client.last.status_code)

    expected: dict[tuple[str, str], int | str] = {}
    for table, (_, reads) in READS.items():
        expected[table, "anon"] = "401"  # anon is granted no table at all
        for role, read in reads.items():
            everything = query(database_url, f"select count(*) from public.{table}")[0][0]
            expected[table, role] = everything if read == ALL else read
    assert seen == expected
    # Every table and view the API serves is in the matrix: a new one must say who reads it.
    served = query(
        database_url,
        "select c.relname::text from pg_catalog.pg_class as c"
        " where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')"
        " and not c.relispartition order by 1",
    )
    assert {name for (name,) in served} == set(READS) | UNDECIDED


# The owner's rows of each table with RLS that README promises, by a column that names them;
# updates write that column's own value back (users and preferences: a column users may change).
OWNED_BY: dict[str, tuple[str, dict[str, Any]]] = {
    "users": ("id", {"display_name": "Written"}),
    "user_preferences": ("user_id", {"language": "en-US"}),
    "transactions": ("user_id", {"user_id": OWNER}),
    "transaction_events": ("user_id", {"user_id": OWNER}),
    "wallets": ("user_id", {"user_id": OWNER}),
    "payment_methods": ("user_id", {"user_id": OWNER}),
    "locations": ("user_id", {"user_id": OWNER}),
    "whatsapp_sessions": ("user_id", {"user_id": OWNER}),
    "conversation_mappings": ("user_id", {"user_id": OWNER}),
    "message_tracking": ("user_id", {"user_id": OWNER}),
    "system_audit_logs": ("actor_identifier", {"actor_identifier": OWNER}),
}


def test_every_write_to_an_owners_rows_per_role_as_grants_and_policies_say(
    edge: Edge, database_url: str
) -> None:
    seed(edge, database_url)
    before = snapshot(database_url)
    seen: dict[tuple[str, str, str], int | str] = {}
    # The owner last: their delete and updates must not hide what the others could do.
    for role, key in (
        ("anon", edge.anon_key),
        ("stranger", edge.user_token(STRANGER)),
        ("owner", edge.user_token(OWNER)),
    ):
        with RecordingClient(edge.url, key) as client:
            for table, (column, change) in OWNED_BY.items():
                rows = client.supabase.table(table)
                for action, builder in (
                    ("insert", rows.insert({column: OWNER})),
                    ("update", rows.update(change).eq(column, OWNER)),
                    ("delete", rows.delete().eq(column, OWNER)),
                ):
                    try:
                        seen[role, action, table] = len(builder.execute().data)
                    except APIError:
                        seen[role, action, table] = str(client.last.status_code)

    allowed = {
        ("owner", "update", "users"): 1,
        ("owner", "update", "user_preferences"): 1,
        ("owner", "delete", "locations"): 2,
        ("stranger", "update", "users"): 0,
        ("stranger", "update", "user_preferences"): 0,
        ("stranger", "delete", "locations"): 0,
    }
    expected = {
        (role, action, table): allowed.get((role, action, table), refusal)
        for role, refusal in (("anon", "401"), ("stranger", "403"), ("owner", "403"))
        for action in ("insert", "update", "delete")
        for table in OWNED_BY
    }
    assert seen == expected
    after = snapshot(database_url)
    for table in set(SNAPSHOT) - {"users", "user_preferences", "locations"}:
        assert (table, after[table]) == (table, before[table])
    assert query(database_url, "select id::text, display_name from public.users order by id") == [
        (OWNER, "Written"),
        (COUNTERPARTY, "Jean"),
        (STRANGER, STRANGER_NAME),
    ]
    assert query(
        database_url, "select user_id::text, language from public.user_preferences order by 1"
    ) == [(OWNER, "en-US"), (COUNTERPARTY, "fr-RW"), (STRANGER, "rw-RW")]
    assert query(database_url, "select id::text from public.locations") == [(COUNTERPARTY_HOME,)]


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


def test_a_page_holds_at_most_max_rows(edge: Edge, database_url: str) -> None:
    # No analyze while the test runs: the planner's guess stays one from request to request.
    query(database_url, "alter table public.users set (autovacuum_enabled = false)")
    query(
        database_url,
        "insert into public.users (phone_number)"
        " select '+25078830' || lpad(n::text, 4, '0') from generate_series(1, 1005) as n",
    )
    with RecordingClient(edge.url, edge.service_role_key) as service:
        table = service.supabase.table("users")
        first = table.select("id", count=CountMethod.exact).execute()
        first_response = service.last
        asked_more = table.select("id").limit(2000).execute()
        asked_more_range = service.last.headers["content-range"]
        rest = table.select("id", count=CountMethod.exact).range(1000, 1099).execute()
        rest_response = service.last
        estimated = table.select("id", count=CountMethod.estimated, head=True).execute()
        estimated_range = service.last.headers["content-range"]
        planned = table.select("id", count=CountMethod.planned, head=True).execute()

    # max_rows (1000, Supabase's default) caps every page, whatever limit was asked.
    assert (len(first.data), first.count) == (1000, 1005)
    assert first_response.status_code == 206
    assert first_response.headers["content-range"] == "0-999/1005"
    assert len(asked_more.data) == 1000
    assert asked_more_range == "0-999/*"
    assert (len(rest.data), rest.count) == (5, 1005)
    assert rest_response.status_code == 206
    assert rest_response.headers["content-range"] == "1000-1004/1005"
    # Past max_rows an estimated count is the planner's guess, but never below what was counted
    # (the exact count stops at max_rows + 1): PostgREST takes the greater of the two.
    assert planned.count is not None
    assert estimated.count == max(1001, planned.count)
    assert estimated_range == f"0-999/{estimated.count}"


def test_requests_postgrest_refuses_before_reading_anything(edge: Edge) -> None:
    """A bad operator, a plan (db-plan-enabled is off, as on Supabase), an aggregate (so is
    db-aggregates-enabled) or an embedding no foreign key supports is refused from the request
    alone, with PostgREST's code and words (its parser's, for the operator: the example of its
    own documentation)."""
    with RecordingClient(edge.url, edge.service_role_key) as service:
        users = service.supabase.table("users")
        refused = {
            "operator": service.error(users.select("id").filter("id", "noop", "0")),
            "unknown operator": service.error(users.select("id").filter("id", "xx", "1")),
            "plan": service.error(users.select("id").explain()),
            "aggregate": service.error(users.select("count()")),
            "no relationship": service.error(
                service.supabase.table("transactions").select("amount, wallets(balance)")
            ),
        }

    assert refused == {
        "operator": (
            400,
            {
                "code": "PGRST100",
                "details": 'unexpected "o" expecting "not" or operator (eq, gt, ...)',
                "hint": None,
                "message": '"failed to parse filter (noop.0)" (line 1, column 1)',
            },
        ),
        "unknown operator": (
            400,
            {
                "code": "PGRST100",
                "details": 'unexpected "x" expecting "not" or operator (eq, gt, ...)',
                "hint": None,
                "message": '"failed to parse filter (xx.1)" (line 1, column 1)',
            },
        ),
        "aggregate": (
            400,
            {
                "code": "PGRST123",
                "details": None,
                "hint": None,
                "message": "Use of aggregate functions is not allowed",
            },
        ),
        "no relationship": (
            400,
            {
                "code": "PGRST200",
                "details": "Searched for a foreign key relationship between 'transactions' and "
                "'wallets' in the schema 'public', but no matches were found.",
                "hint": None,
                "message": "Could not find a relationship between 'transactions' and 'wallets' "
                "in the schema cache",
            },
        ),
        # The media type as PostgREST reads it: the plan of (by default) application/json.
        "plan": (
            406,
            {
                "code": "PGRST107",
                "details": None,
                "hint": None,
                "message": "None of these media types are available: "
                'application/vnd.pgrst.plan+text; for="application/json"',
            },
        ),
    }


def test_limit_and_offset_do_not_narrow_a_write(edge: Edge, database_url: str) -> None:
    """PostgREST 13 dropped limited updates and deletes: on PATCH and DELETE, limit and offset
    are ignored, so every row the filters match is changed (and returned)."""
    query(
        database_url,
        "insert into public.users (id, phone_number) values"
        " (%s, '+250788100001'), (%s, '+250788100002'), (%s, '+250788100003')",
        (OWNER, COUNTERPARTY, STRANGER),
    )
    with RecordingClient(edge.url, edge.service_role_key) as service:
        users = service.supabase.table("users")
        renamed = (
            users.update({"display_name": "Renamed"})
            .in_("id", [OWNER, COUNTERPARTY])
            .limit(1)
            .offset(1)
            .select("id")
            .execute()
        )
        deleted = users.delete().in_("id", [COUNTERPARTY, STRANGER]).limit(1).execute()

    assert sorted(row["id"] for row in renamed.data) == [OWNER, COUNTERPARTY]
    assert sorted(row["id"] for row in deleted.data) == [COUNTERPARTY, STRANGER]
    assert query(database_url, "select id::text, display_name from public.users") == [
        (OWNER, "Renamed")
    ]


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


def test_concurrent_callers_each_read_as_themselves(edge: Edge, database_url: str) -> None:
    """Claims and role are the request's own, however the edge's few pooled connections are
    shared: many callers at once each see exactly their rows."""
    seed(edge, database_url)
    callers = {
        OWNER: edge.user_token(OWNER),
        COUNTERPARTY: edge.user_token(COUNTERPARTY),
        STRANGER: edge.user_token(STRANGER),
        "anon": edge.anon_key,
        "service": edge.service_role_key,
    }
    seen: list[tuple[str, Any]] = []

    def read_as(caller: str) -> Callable[[], None]:
        def read() -> None:
            with RecordingClient(edge.url, callers[caller]) as client:
                for _ in range(5):
                    builder = client.supabase.table("users").select("id").order("id")
                    try:
                        ids = [row["id"] for row in builder.execute().data]
                    except APIError:
                        ids = [str(client.last.status_code)]
                    seen.append((caller, ids))

        return read

    errors = run_together([read_as(caller) for caller in callers for _ in range(6)])

    assert errors == []
    expected = {
        OWNER: [OWNER],
        COUNTERPARTY: [COUNTERPARTY],
        STRANGER: [STRANGER],
        "anon": ["401"],
        "service": [OWNER, COUNTERPARTY, STRANGER],
    }
    assert len(seen) == len(callers) * 6 * 5
    assert [(caller, ids) for caller, ids in seen if ids != expected[caller]] == []


def owners_row(
    client: RecordingClient, count: CountMethod | None = None, *, head: bool | None = None
) -> Any:
    """users?select=id,terms_version&id=eq.<owner>: one query string for every variant."""
    return (
        client.supabase.table("users")
        .select("id,terms_version", count=count, head=head)
        .eq("id", OWNER)
    )


def test_one_query_string_answers_each_requests_own_headers(edge: Edge, database_url: str) -> None:
    """The same path and query string, asked again with another media type, preference, role
    or method, is answered by what this request asked for, never by an earlier one."""
    seed(edge, database_url)
    owner_token = edge.user_token(OWNER)
    answers: list[tuple[str, int, Any, str | None]] = []
    for caller, key in (
        ("service", edge.service_role_key),
        ("owner", owner_token),
        ("anon", edge.anon_key),
        ("owner again", owner_token),
    ):
        with RecordingClient(edge.url, key) as client:
            for kind, builder in (
                ("json", owners_row(client)),
                ("object", owners_row(client).single()),
                ("csv", owners_row(client).csv()),
                ("stripped", owners_row(client).strip_nulls()),
                ("counted", owners_row(client, CountMethod.exact)),
                ("head", owners_row(client, CountMethod.exact, head=True)),
            ):
                try:
                    data = builder.execute().data
                except APIError:
                    data = None
                answers.append(
                    (
                        f"{caller} {kind}",
                        client.last.status_code,
                        data,
                        client.last.headers.get("content-range"),
                    )
                )

    row = {"id": OWNER, "terms_version": None}
    readers = {
        caller: [
            (f"{caller} json", 200, [row], "0-0/*"),
            (f"{caller} object", 200, row, "0-0/*"),
            (f"{caller} csv", 200, f"id,terms_version\n{OWNER},", "0-0/*"),
            (f"{caller} stripped", 200, [{"id": OWNER}], "0-0/*"),
            (f"{caller} counted", 200, [row], "0-0/1"),
            (f"{caller} head", 200, [], "0-0/1"),
        ]
        for caller in ("service", "owner", "owner again")
    }
    refused = [
        (f"anon {kind}", 401, None, None)
        for kind in ("json", "object", "csv", "stripped", "counted", "head")
    ]
    assert answers == readers["service"] + readers["owner"] + refused + readers["owner again"]

"""The table API (/rest/v1/<table>) through supabase-py's own query builder against the edge, per
role (anon, the owner, a transfer's counterparty, a stranger, service_role), on the tables whose
RLS README promises: users, user_preferences, transactions, transaction_events, wallets,
payment_methods (a column grant that leaves out the ciphertext), locations, WhatsApp sessions,
conversations and messages, the audit log, feature_flags (no signed-in user reads target lists)
and the security_invoker view user_recent_transactions. Beside it: the matrix of who reads and
writes every table (_matrix), embedded resources (_embedding), requests as wholes (_requests).

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
from typing import Any

from postgrest import CountMethod, ReturnMethod

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge
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

"""Who reads and writes what through the table API, table by table: every table and view of
the exposed schema read by each role (a row count, every row, or the refusal's status), and
every insert, update and delete of the owner's rows on the tables whose RLS README promises,
by anon, a stranger and the owner, as grants and policies say; nothing else changes."""

from __future__ import annotations

from typing import Any

from postgrest import APIError, CountMethod

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge
from tests.support.rls_seed import (
    COUNTERPARTY,
    COUNTERPARTY_HOME,
    OWNER,
    SNAPSHOT,
    STRANGER,
    STRANGER_NAME,
    seed,
    snapshot,
)

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
# users are asserted (test_table_api_client.py), not service_role's read.
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

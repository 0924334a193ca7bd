"""The payments bench's floor (bench/payments_floor.sql) writes what a transfer writes: a transfer
through the RPCs and one call of the floor insert and update the same number of rows in every
table, and move the wallets alike. Should a transfer come to write more or less, the floor would
no longer be its floor, and this fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from tests.py.test_payments_races import add_users, create, fund, move

FLOOR = Path(__file__).parents[2] / "bench" / "payments_floor.sql"

# Inserts and updates per table, partitions under their root, that this session has not yet
# reported to the statistics system: the current transaction's, and maybe some before it.
WRITES = """
select
    coalesce(pg_partition_root(s.relid), s.relid)::regclass::text,
    sum(s.n_tup_ins)::int,
    sum(s.n_tup_upd)::int
from pg_stat_xact_user_tables as s
group by 1
having sum(s.n_tup_ins) + sum(s.n_tup_upd) > 0
order by 1
"""


def unreported(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, int]]:
    return {table: (inserted, updated) for table, inserted, updated in conn.execute(WRITES)}


def written(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> list[tuple[str, int, int]]:
    """(table, inserted, updated) between two readings of one session, tables with any."""
    rows = []
    for table, (inserted, updated) in sorted(after.items()):
        first = before.get(table, (0, 0))
        if (inserted, updated) != first:
            rows.append((table, inserted - first[0], updated - first[1]))
    return rows


def balance(conn: psycopg.Connection[Any], user: str) -> int:
    row = conn.execute(
        "select balance from public.wallets where user_id = %s and currency = 'RWF'", (user,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_floor_writes_the_rows_a_transfer_writes(database_url: str) -> None:
    sender, receiver = add_users(database_url, 2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(FLOOR.read_text())
        fund(conn, sender, 10_000)
        fund(conn, receiver, 10_000)

        with conn.transaction():
            start = unreported(conn)
            transfer = create(conn, sender, "transfer", 300, counterparty=receiver, key="t-1")
            move(conn, transfer, "processing")
            move(conn, transfer, "completed")
            by_transfer = written(start, unreported(conn))
        with conn.transaction():
            start = unreported(conn)
            conn.execute("set local session_replication_role = replica")
            conn.execute("select public.bench_floor_transfer(%s, %s, 300)", (sender, receiver))
            by_floor = written(start, unreported(conn))

        assert (balance(conn, sender), balance(conn, receiver)) == (9_400, 10_600)

    assert by_transfer == [
        ("outbox_events", 3, 0),
        ("private.transaction_directory", 1, 0),
        ("system_audit_logs", 5, 0),
        ("transaction_events", 3, 0),
        ("transactions", 1, 2),
        ("wallets", 0, 2),
    ]
    assert by_floor == by_transfer


def test_the_floor_of_transfer_funds_writes_the_rows_it_writes(database_url: str) -> None:
    sender, receiver = add_users(database_url, 2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(FLOOR.read_text())
        fund(conn, sender, 10_000)
        fund(conn, receiver, 10_000)

        with conn.transaction():
            start = unreported(conn)
            conn.execute(
                "select public.transfer_funds(%s, %s, 300, 'RWF', 'tf-1')", (sender, receiver)
            )
            by_transfer = written(start, unreported(conn))
        with conn.transaction():
            start = unreported(conn)
            conn.execute("set local session_replication_role = replica")
            conn.execute(
                "select public.bench_floor_transfer_funds(%s, %s, 300)", (sender, receiver)
            )
            by_floor = written(start, unreported(conn))

        assert (balance(conn, sender), balance(conn, receiver)) == (9_400, 10_600)

    assert by_transfer == [
        ("outbox_events", 1, 0),
        ("private.transaction_directory", 1, 0),
        ("system_audit_logs", 3, 0),
        ("transaction_events", 1, 0),
        ("transactions", 1, 0),
        ("wallets", 0, 2),
    ]
    assert by_floor == by_transfer

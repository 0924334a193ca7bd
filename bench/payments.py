"""Transfers through create_transaction and update_transaction_status against pgbench's built-in
TPC-B (Postgres' own bank-transfer benchmark), on one throwaway cluster with fsync and
synchronous_commit on.

  transfer  one transaction: create_transaction (a transfer in RWF between two distinct users,
            a new idempotency key each time), then update_transaction_status to processing and
            to completed: the idempotency directory, the state machine, transaction_events and
            the outbox for each of the three steps, both wallets locked in order, checked and moved
  transfer_funds
            one call: transfer_funds (the same transfer, a new idempotency key each time),
            created completed: the directory, one transactions row, one event, one outbox row,
            both wallets locked in order, checked and moved
  floor     the rows one transfer writes (1 directory row, the transaction inserted and updated
            twice, 3 events, 3 outbox rows, 5 audit rows, 2 wallets moved, both users locked
            FOR KEY SHARE), written by one plain PL/pgSQL call with no checks and no triggers
            (bench/payments_floor.sql), on a clone of its own: what no implementation can shed
  floor_funds
            the same for the rows one transfer_funds call writes (1 directory row, the transaction
            inserted completed, 1 event, 1 outbox row, 3 audit rows, 2 wallets moved)
  TPC-B     `pgbench -i -s 10` in a database of its own, then its default tpcb-like script
            (three account/teller/branch updates, a select and a history insert)

pgbench -M prepared for all, -c 8 -j 2 by default. Each row but TPC-B runs on a fresh clone
prepared the same way, in --rounds rounds whose order alternates; the ratios are medians. The
users (1,000 by default) are each funded by a completed credit far above what the run can move,
so no transfer is short of funds. After each run, reconcile_wallet_balances() must find nothing
and the sum of balances must be what it was. Target: transfers at least half of TPC-B's
transactions per second, transfer_funds at least 0.6 of its floor.

    .venv/bin/python -m bench.payments [--seconds 30] [--rounds 3] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.pgbench import PgbenchRun, pgbench, pgbench_builtin, pgbench_init
from tests.support.server import TestServer, start_test_server

TPCB_SCALE = 10
FUNDING = 1_000_000_000  # RWF per user: a run moves at most 1,000 per transfer

# Deterministic user ids, so that the script names two users without a lookup: user n is
# 00000000-0000-4000-8000-<n, 12 digits>.
USER_ID = "('00000000-0000-4000-8000-' || lpad(({n})::text, 12, '0'))::uuid"

CREATE_USERS = f"""
insert into public.users (id, phone_number, display_name)
select {USER_ID.format(n="n")}, '+2507' || lpad(n::text, 8, '0'), 'Bench ' || n
from generate_series(1, %(users)s) as n
"""

# One completed credit per user, each its own create and two moves, as a top-up would go.
FUND_USERS = f"""
do $$
declare
    v_user uuid;
    v_id uuid;
begin
    for v_user in select u.id from public.users as u order by u.id loop
        v_id := (public.create_transaction(
            v_user, 'credit', {FUNDING}, 'RWF', 'bench-fund-' || v_user
        )).id;
        perform public.update_transaction_status(v_id, 'processing');
        perform public.update_transaction_status(v_id, 'completed');
    end loop;
end;
$$
"""

# :to is :from shifted by 1 to users - 1 places around the ring: never the same user. :seq
# counts this client's transfers (-D seq=0), so client, seq and the run's label make a key no
# other transfer has.
TRANSFER = """\
\\set from random(1, {users})
\\set to 1 + (:from - 1 + random(1, {users} - 1)) % {users}
\\set amount random(1, 1000)
\\set seq :seq + 1
begin;
select t.id as transfer_id from public.create_transaction(
    {from_id}, 'transfer', :amount, 'RWF', '{label}-' || :client_id || '-' || :seq, '{{}}',
    {to_id}
) as t \\gset
select t.status from public.update_transaction_status(:transfer_id, 'processing') as t;
select t.status from public.update_transaction_status(:transfer_id, 'completed') as t;
commit;
"""

TRANSFER_FUNDS = """\
\\set from random(1, {users})
\\set to 1 + (:from - 1 + random(1, {users} - 1)) % {users}
\\set amount random(1, 1000)
\\set seq :seq + 1
select t.status from public.transfer_funds(
    {from_id}, {to_id}, :amount, 'RWF', '{label}-' || :client_id || '-' || :seq
) as t;
"""

# The floor (bench/payments_floor.sql): the same rows, written by one plain call with no logic and
# no triggers.
FLOOR = """\
\\set from random(1, {users})
\\set to 1 + (:from - 1 + random(1, {users} - 1)) % {users}
\\set amount random(1, 1000)
select public.bench_floor_{function}({from_id}, {to_id}, :amount);
"""
FLOOR_FUNCTION = Path(__file__).with_name("payments_floor.sql")


def floor_script(users: int, function: str = "transfer") -> str:
    return FLOOR.format(
        users=users,
        from_id=USER_ID.format(n=":from"),
        to_id=USER_ID.format(n=":to"),
        function=function,
    )


def prepare_floor(url: str, database: str) -> None:
    """The floor function, and every later session of the database without triggers (a
    per-call SET of session_replication_role would empty the plan cache on every call)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FLOOR_FUNCTION.read_text())
        conn.execute(f"alter database {database} set session_replication_role = replica")
        conn.execute("checkpoint")


def transfer_script(users: int, script: str = TRANSFER) -> str:
    return script.format(
        users=users,
        from_id=USER_ID.format(n=":from"),
        to_id=USER_ID.format(n=":to"),
        label=f"bench-{uuid.uuid4().hex[:8]}",
    )


def prepare(url: str, users: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CREATE_USERS, {"users": users})
        conn.execute(FUND_USERS)
        conn.execute(
            "vacuum analyze public.users, public.wallets, public.transactions,"
            " public.transaction_events, public.outbox_events, private.transaction_directory"
        )
        conn.execute("checkpoint")


# A run's ledger before and after it (ledger()), and the transfers pgbench counted.
LedgerCheck = tuple[tuple[int, int, int], tuple[int, int, int], int]


def ledger(url: str) -> tuple[int, int, int]:
    """The sum of balances, the wallets reconcile_wallet_balances() finds wrong, and the
    completed transfers."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select (select coalesce(sum(balance), 0) from public.wallets),"
            " (select count(*) from public.reconcile_wallet_balances()),"
            " (select count(*) from public.transactions"
            "  where type = 'transfer' and status = 'completed')"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    if args.users < 2:
        parser.error("--users: a transfer needs two users")

    rounds: list[dict[str, Row]] = []
    ledgers: list[LedgerCheck] = []
    server = start_test_server(durable=True)
    try:
        for number in range(args.rounds):
            # Each row on a fresh clone prepared the same way, so that none runs on the tables
            # another row grew; which goes first changes from round to round.
            runs: dict[str, Callable[[], Row]] = {
                "transfer": lambda: transfers(server, args, transfer_script(args.users), ledgers),
                "transfer_funds": lambda: transfers(
                    server, args, transfer_script(args.users, TRANSFER_FUNDS), ledgers
                ),
                "floor": lambda: floor_row(server, args, "transfer"),
                "floor_funds": lambda: floor_row(server, args, "transfer_funds"),
            }
            names = list(runs)
            order = names if number % 2 == 0 else names[::-1]
            measured_rows = {name: runs[name]() for name in order}
            rounds.append({name: measured_rows[name] for name in names})

        tpcb_url = server.url(server.empty_database("bench_tpcb"))
        pgbench_init(tpcb_url, scale=TPCB_SCALE)
        with psycopg.connect(tpcb_url, autocommit=True) as conn:
            conn.execute("checkpoint")
        tpcb = measured(
            tpcb_url,
            lambda: pgbench_builtin(tpcb_url, seconds=args.seconds, concurrency=args.clients),
        )
    finally:
        server.close()

    report(args, rounds=rounds, tpcb=tpcb, ledgers=ledgers)
    if any(after[1] or after[0] != before[0] for before, after, _ in ledgers):
        raise SystemExit("the ledger does not balance after a run")


def transfers(
    server: TestServer,
    args: argparse.Namespace,
    script: str,
    ledgers: list[LedgerCheck],
) -> Row:
    """`script` on a fresh clone, and its ledger before and after."""
    url = server.url(server.clone("bench_payments"))
    prepare(url, args.users)
    before = ledger(url)
    row = measured(url, lambda: script_run(args, url, script, {"seq": "0"}))
    ledgers.append((before, ledger(url), row.run.transactions))
    return row


def floor_row(server: TestServer, args: argparse.Namespace, function: str) -> Row:
    database = server.clone("bench_floor")
    url = server.url(database)
    prepare(url, args.users)
    prepare_floor(url, database)
    return measured(url, lambda: script_run(args, url, floor_script(args.users, function)))


def script_run(
    args: argparse.Namespace, url: str, script: str, defines: dict[str, str] | None = None
) -> PgbenchRun:
    return pgbench(url, script, seconds=args.seconds, concurrency=args.clients, defines=defines)


@dataclass
class Row:
    run: PgbenchRun
    wal_records: float  # per transaction, from pg_stat_wal (the whole cluster: runs take turns)
    wal_bytes: float


def measured(url: str, run: Callable[[], PgbenchRun]) -> Row:
    """`run`, and the WAL the cluster wrote meanwhile per transaction it counted."""
    query = "select wal_records, wal_bytes from pg_stat_wal"
    with psycopg.connect(url, autocommit=True) as conn:
        start = conn.execute(query).fetchone()
        done = run()
        end = conn.execute(query).fetchone()
    assert start is not None
    assert end is not None
    count = max(1, done.transactions)
    return Row(done, (end[0] - start[0]) / count, float(end[1] - start[1]) / count)


def report(
    args: argparse.Namespace,
    *,
    rounds: list[dict[str, Row]],
    tpcb: Row,
    ledgers: list[LedgerCheck],
) -> None:
    print(
        f"{os.cpu_count()} cores, {args.clients} clients, {args.seconds:.0f}s per row,"
        f" {args.rounds} rounds, fsync on, {args.users} users, TPC-B scale {TPCB_SCALE}"
    )
    print(
        f"{'':<16}{'rnd':>4}{'tps':>10}{'ms':>9}{'/TPC-B':>8}{'WAL records':>13}{'WAL bytes':>11}"
    )
    for number, rows in enumerate(rounds, 1):
        for name, row in rows.items():
            print(
                f"{name:<16}{number:>4}{row.run.tps:>10.0f}{row.run.latency_ms:>9.2f}"
                f"{row.run.tps / tpcb.run.tps:>8.2f}{row.wal_records:>13.1f}"
                f"{row.wal_bytes:>11,.0f}"
            )
    print(
        f"{'TPC-B':<16}{'':>4}{tpcb.run.tps:>10.0f}{tpcb.run.latency_ms:>9.2f}{1:>8.2f}"
        f"{tpcb.wal_records:>13.1f}{tpcb.wal_bytes:>11,.0f}"
    )
    for before, after, counted in ledgers:
        print(
            f"ledger: reconcile_wallet_balances() {after[1]} rows, sum of balances {before[0]:,}"
            f" before and {after[0]:,} after"
            f" ({'unchanged' if after[0] == before[0] else 'CHANGED'}),"
            f" {after[2] - before[2]:,} transfers completed (pgbench counted {counted:,})"
        )

    def ratios(name: str, baseline: str) -> str:
        each = [rows[name].run.tps / rows[baseline].run.tps for rows in rounds]
        return f"{statistics.median(each):.2f} (rounds: {', '.join(f'{r:.2f}' for r in each)})"

    transfer_tpcb = [rows["transfer"].run.tps / tpcb.run.tps for rows in rounds]
    print(f"transfer / TPC-B, median: {statistics.median(transfer_tpcb):.2f}")
    print(
        "floor: a transfer's rows written by one plain call, no checks and no triggers;"
        f" transfers run at {ratios('transfer', 'floor')} of it"
    )
    print(
        "floor_funds: the rows of one transfer_funds call, the same way; transfer_funds runs at"
        f" {ratios('transfer_funds', 'floor_funds')} of it"
        f" ({ratios('transfer_funds', 'floor')} of the three-step floor)"
    )
    print("target: transfer >= 0.5 of TPC-B, transfer_funds >= 0.6 of floor_funds")


if __name__ == "__main__":
    main()

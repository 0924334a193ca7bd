"""Transactions and wallets under real concurrent connections: one idempotency key created from 50
connections at once, 50 debits completed at once against a wallet that covers 10 of them, first
credits creating a wallet at once, random transfers among ten users from 8 connections, and
opposite transfers completed at the same time (never a deadlock)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.support.db import query
from tests.support.races import one_value_at_once, run_together, service_connections

CURRENCY = "RWF"


def user_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def add_users(url: str, count: int) -> list[str]:
    """count users, +250788400001 onwards; their ids in order."""
    ids = [user_id(n) for n in range(1, count + 1)]
    query(
        url,
        "insert into public.users (id, phone_number)"
        " select u.id, '+25078840' || lpad(u.n::text, 4, '0')"
        " from unnest(%s::uuid[]) with ordinality as u (id, n)",
        (ids,),
    )
    return ids


def create(
    conn: psycopg.Connection[Any],
    user: str,
    kind: str,
    amount: int,
    *,
    counterparty: str | None = None,
    key: str | None = None,
) -> str:
    row = conn.execute(
        "select id::text from public.create_transaction(%s, %s, %s, %s, %s, '{}', %s)",
        (user, kind, amount, CURRENCY, key, counterparty),
    ).fetchone()
    assert row is not None
    return row[0]


def move(conn: psycopg.Connection[Any], transaction: str, status: str) -> str:
    row = conn.execute(
        "select status::text from public.update_transaction_status(%s, %s)",
        (transaction, status),
    ).fetchone()
    assert row is not None
    return row[0]


def fund(conn: psycopg.Connection[Any], user: str, amount: int) -> None:
    """A credit of amount to user, completed."""
    credit = create(conn, user, "credit", amount)
    assert move(conn, credit, "processing") == "processing"
    assert move(conn, credit, "completed") == "completed"


def balances(url: str) -> dict[str, int]:
    rows = query(
        url,
        "select user_id::text, balance from public.wallets where currency = %s",
        (CURRENCY,),
    )
    return {user: int(balance) for user, balance in rows}


def reconciliation(url: str) -> list[tuple[Any, ...]]:
    return query(url, "select * from public.reconcile_wallet_balances()")


def test_fifty_creates_with_one_key_make_one_transaction(database_url: str) -> None:
    (user,) = add_users(database_url, 1)

    ids, errors = one_value_at_once(
        database_url,
        "select id from public.create_transaction(%s, 'credit', 2500, 'RWF', %s, %s)",
        (user, "topup-42", Jsonb({"channel": "momo"})),
    )

    assert errors == []
    assert len(ids) == 50
    assert len(set(ids)) == 1
    (transaction,) = set(ids)
    assert query(database_url, "select id, status::text, amount::int from public.transactions") == [
        (transaction, "pending", 2500)
    ]
    assert query(database_url, "select id, idempotency_key from private.transaction_directory") == [
        (transaction, "topup-42")
    ]
    assert query(
        database_url,
        "select transaction_id, from_status, to_status from public.transaction_events",
    ) == [(transaction, None, "pending")]
    assert query(
        database_url,
        "select aggregate_id, event_type from public.outbox_events"
        " where aggregate_type = 'transaction'",
    ) == [(str(transaction), "transaction.created")]
    assert query(database_url, "select count(*) from public.wallets") == [(0,)]


def test_one_key_raced_with_two_requests_keeps_the_first_and_refuses_the_other(
    database_url: str,
) -> None:
    (user,) = add_users(database_url, 1)
    outcomes: list[tuple[int, str]] = []  # (amount asked, id or SQLSTATE)

    def caller(conn: psycopg.Connection[Any], amount: int) -> None:
        try:
            outcomes.append((amount, create(conn, user, "credit", amount, key="topup-7")))
        except psycopg.Error as error:
            outcomes.append((amount, error.sqlstate or ""))

    with service_connections(database_url, 50) as conns:
        errors = run_together([partial(caller, c, 100 + i % 2) for i, c in enumerate(conns)])

    assert errors == []
    ((transaction, kept),) = query(
        database_url, "select id::text, amount::int from public.transactions"
    )
    assert len(outcomes) == 50
    assert [
        (amount, got)
        for amount, got in outcomes
        if got != (transaction if amount == kept else "PT409")
    ] == [], "the kept request's callers get its id, the other request's PT409"
    assert query(database_url, "select count(*) from private.transaction_directory") == [(1,)]
    assert query(database_url, "select count(*) from public.transaction_events") == [(1,)]


def test_fifty_debits_completed_at_once_take_exactly_what_the_wallet_holds(
    database_url: str,
) -> None:
    (user,) = add_users(database_url, 1)
    debit, count, covered = 700, 50, 10
    with service_connections(database_url, count) as conns:
        fund(conns[0], user, covered * debit)
        debits = [create(conns[0], user, "debit", debit) for _ in range(count)]
        for transaction in debits:
            assert move(conns[0], transaction, "processing") == "processing"
        outcomes: list[str] = []

        def complete(conn: psycopg.Connection[Any], transaction: str) -> None:
            try:
                outcomes.append(move(conn, transaction, "completed"))
            except psycopg.Error as error:
                message = error.diag.message_primary or ""
                outcomes.append(f"{error.sqlstate}: {message.partition(':')[0]}")

        errors = run_together([partial(complete, c, t) for c, t in zip(conns, debits, strict=True)])

    assert errors == []
    assert Counter(outcomes) == {
        "completed": covered,
        "PT402: insufficient funds": count - covered,
    }
    assert query(
        database_url,
        "select status::text, count(*)::int from public.transactions where type = 'debit'"
        " group by status order by status",
    ) == [("completed", covered), ("processing", count - covered)]
    assert balances(database_url) == {user: 0}
    assert reconciliation(database_url) == []
    assert query(
        database_url,
        "select count(*)::int from public.transaction_events where to_status = 'completed'",
    ) == [(covered + 1,)]  # the credit and the debits that went through
    assert query(
        database_url,
        "select count(*)::int from public.outbox_events where event_type = 'transaction.completed'",
    ) == [(covered + 1,)]


def test_first_credits_completed_at_once_create_one_wallet_holding_them_all(
    database_url: str,
) -> None:
    (user,) = add_users(database_url, 1)
    amounts = list(range(101, 121))
    with service_connections(database_url, len(amounts)) as conns:
        credits = [create(conns[0], user, "credit", amount) for amount in amounts]
        for transaction in credits:
            move(conns[0], transaction, "processing")
        outcomes: list[str] = []

        def complete(conn: psycopg.Connection[Any], transaction: str) -> None:
            try:
                outcomes.append(move(conn, transaction, "completed"))
            except psycopg.Error as error:
                outcomes.append(error.sqlstate or "")

        errors = run_together(
            [partial(complete, c, t) for c, t in zip(conns, credits, strict=True)]
        )

    assert errors == []
    assert outcomes == ["completed"] * len(amounts)
    assert balances(database_url) == {user: sum(amounts)}
    assert reconciliation(database_url) == []


def test_random_transfers_from_eight_connections_keep_every_balance_and_the_total(
    database_url: str,
) -> None:
    users = add_users(database_url, 10)
    rng = random.Random(20260401)  # noqa: S311  # reproducible transfers, not secrets
    # 60 pairs of opposite transfers, each pair next to each other in the queue so that two
    # connections take them up at about the same moment, and 80 transfers from three big
    # spenders, who run out of money: some transfers fail for insufficient funds.
    units: list[list[tuple[str, str, int]]] = []
    for _ in range(60):
        a, b = rng.sample(users, 2)
        units.append([(a, b, rng.randint(1, 300)), (b, a, rng.randint(1, 300))])
    for _ in range(80):
        spender = rng.choice(users[:3])
        to = rng.choice([u for u in users if u != spender])
        units.append([(spender, to, rng.randint(1, 300))])
    rng.shuffle(units)
    transfers = [transfer for unit in units for transfer in unit]
    assert len(transfers) == 200
    lock = threading.Lock()
    queue = iter(enumerate(transfers))
    completed: list[int] = []
    short: list[tuple[int, str | None]] = []  # (transfer, its id when it was left processing)
    failures: list[tuple[int, str, str]] = []

    def next_transfer() -> tuple[int, tuple[str, str, int]] | None:
        with lock:
            return next(queue, None)

    def in_one_transaction(conn: psycopg.Connection[Any], sender: str, to: str, n: int) -> None:
        with conn.transaction():
            transaction = create(conn, sender, "transfer", n, counterparty=to)
            move(conn, transaction, "processing")
            move(conn, transaction, "completed")

    def in_separate_calls(
        conn: psycopg.Connection[Any], sender: str, to: str, n: int, created: list[str]
    ) -> None:
        transaction = create(conn, sender, "transfer", n, counterparty=to)
        created.append(transaction)
        move(conn, transaction, "processing")
        move(conn, transaction, "completed")

    def worker(conn: psycopg.Connection[Any], one_transaction: bool) -> None:
        while (item := next_transfer()) is not None:
            i, (sender, to, amount) = item
            created: list[str] = []
            try:
                if one_transaction:
                    in_one_transaction(conn, sender, to, amount)
                else:
                    in_separate_calls(conn, sender, to, amount, created)
            except psycopg.Error as error:
                with lock:
                    if error.sqlstate == "PT402":
                        short.append((i, created[0] if created else None))
                    else:
                        failures.append((i, error.sqlstate or "", str(error)))
                continue
            with lock:
                completed.append(i)

    with service_connections(database_url, 8) as conns:
        for user in users:
            fund(conns[0], user, 1000)
        # Half the connections complete each transfer in one database transaction (a shortfall
        # rolls its creation back too), half in separate calls (a shortfall leaves it
        # processing).
        errors = run_together([partial(worker, c, i % 2 == 0) for i, c in enumerate(conns)])

    assert errors == []
    assert failures == [], "only insufficient funds may stop a transfer (no 40P01, no 40001)"
    assert len(completed) + len(short) == len(transfers)
    left_processing = sorted(t for _, t in short if t is not None)
    rolled_back = [i for i, t in short if t is None]
    assert left_processing, "a shortfall in separate calls leaves the transfer processing"
    assert rolled_back, "a shortfall in one database transaction rolls its creation back"
    assert sorted(completed + [i for i, _ in short]) == list(range(len(transfers)))
    expected = dict.fromkeys(users, 1000)
    for i in completed:
        sender, to, amount = transfers[i]
        expected[sender] -= amount
        expected[to] += amount
    final = balances(database_url)
    assert final == expected
    assert sum(final.values()) == 10 * 1000
    assert min(final.values()) >= 0
    assert reconciliation(database_url) == []
    assert query(
        database_url,
        "select status::text, count(*)::int from public.transactions where type = 'transfer'"
        " group by status order by status",
    ) == [
        (status, n)
        for status, n in (("completed", len(completed)), ("processing", len(left_processing)))
        if n
    ]
    assert [
        t
        for (t,) in query(
            database_url,
            "select id::text from public.transactions where status = 'processing' order by 1",
        )
    ] == left_processing
    # A refused completion wrote nothing: no event, no outbox event.
    assert query(
        database_url,
        "select count(*)::int from public.transaction_events as e"
        " join public.transactions as t on e.transaction_id = t.id where t.type = 'transfer'",
    ) == [(3 * len(completed) + 2 * len(left_processing),)]
    assert query(
        database_url,
        "select count(*)::int from public.outbox_events where event_type = 'transaction.completed'",
    ) == [(len(users) + len(completed),)]


def test_opposite_transfers_completed_at_the_same_time_never_deadlock(database_url: str) -> None:
    a, b = add_users(database_url, 2)
    rounds, amount = 100, 7
    with service_connections(database_url, 2) as conns:
        setup = conns[0]
        fund(setup, a, 1000)
        fund(setup, b, 1000)
        lanes: list[list[str]] = [[], []]
        for _ in range(rounds):
            for lane, (sender, to) in zip(lanes, ((a, b), (b, a)), strict=True):
                transaction = create(setup, sender, "transfer", amount, counterparty=to)
                move(setup, transaction, "processing")
                lane.append(transaction)
        together = threading.Barrier(2)
        failures: list[tuple[int, str, str]] = []

        def complete_each_round(conn: psycopg.Connection[Any], lane: list[str]) -> None:
            for n, transaction in enumerate(lane):
                together.wait(timeout=30)
                try:
                    assert move(conn, transaction, "completed") == "completed"
                except psycopg.Error as error:
                    failures.append((n, error.sqlstate or "", str(error)))

        jobs: list[Callable[[], None]] = [
            partial(complete_each_round, conn, lane)
            for conn, lane in zip(conns, lanes, strict=True)
        ]
        errors = run_together(jobs)

    assert errors == []
    assert failures == []
    assert balances(database_url) == {a: 1000, b: 1000}
    assert reconciliation(database_url) == []
    assert query(
        database_url,
        "select count(*)::int from public.transactions"
        " where type = 'transfer' and status = 'completed'",
    ) == [(2 * rounds,)]


def add_method(conn: psycopg.Connection[Any], user: str, provider: str, default: bool) -> str:
    row = conn.execute(
        "select id::text from public.add_payment_method(%s, 'cash', %s, '{}', %s)",
        (user, provider, default),
    ).fetchone()
    assert row is not None
    return row[0]


def defaults(url: str, user: str) -> list[tuple[Any, ...]]:
    return query(
        url,
        "select provider from public.payment_methods where user_id = %s and is_default",
        (user,),
    )


def test_first_defaults_added_at_once_take_turns(database_url: str) -> None:
    """A user with no method yet: 8 methods added as default at once all succeed (none meets
    the one-default index as a 23505), and exactly one of them ends as the default."""
    (user,) = add_users(database_url, 1)
    added: list[str] = []
    with service_connections(database_url, 8) as conns:
        errors = run_together(
            [
                lambda c=c, n=n: added.append(add_method(c, user, f"p{n}", True))  # type: ignore[misc]
                for n, c in enumerate(conns)
            ]
        )
    assert errors == []
    assert len(added) == 8
    assert len(defaults(database_url, user)) == 1


def test_default_flips_and_adds_for_one_user_never_deadlock(database_url: str) -> None:
    """8 connections flip one user's default among 4 methods while adding more, 20 rounds each:
    no error at all (a deadlock would be 40P01, two defaults 23505), one default at the end."""
    (user,) = add_users(database_url, 1)
    with service_connections(database_url, 8) as conns:
        methods = [add_method(conns[0], user, f"m{n}", n == 0) for n in range(4)]

        def churn(conn: psycopg.Connection[Any], seed: int) -> None:
            draw = random.Random(seed)  # noqa: S311  # a test's draw, not a secret
            for n in range(20):
                if draw.random() < 0.2:
                    add_method(conn, user, f"w{seed}-{n}", draw.random() < 0.5)
                else:
                    conn.execute(
                        "select public.set_default_payment_method(%s)", (draw.choice(methods),)
                    )

        errors = run_together([partial(churn, conn, seed) for seed, conn in enumerate(conns)])
    assert errors == []
    assert len(defaults(database_url, user)) == 1

"""transfer_funds under real concurrent connections: one idempotency key sent from 50 connections
at once makes one transfer and moves the wallets once."""

from __future__ import annotations

import psycopg

from tests.py.test_payments_races import add_users, balances, fund
from tests.support.db import query
from tests.support.races import one_value_at_once


def test_fifty_transfers_with_one_key_make_one_transfer(database_url: str) -> None:
    sender, receiver = add_users(database_url, 2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        fund(conn, sender, 10_000)
    before = query(database_url, "select count(*) from public.outbox_events")[0][0]

    ids, errors = one_value_at_once(
        database_url,
        "select id from public.transfer_funds(%s, %s, 700, 'RWF', %s)",
        (sender, receiver, "rent-7"),
    )

    assert errors == []
    assert len(ids) == 50
    assert len(set(ids)) == 1
    (transfer,) = set(ids)
    assert query(
        database_url,
        "select status::text, amount::int from public.transactions where type = 'transfer'",
    ) == [("completed", 700)]
    assert balances(database_url)[sender] == 9_300
    assert balances(database_url)[receiver] == 700
    assert query(
        database_url,
        "select from_status, to_status from public.transaction_events where transaction_id = %s",
        (transfer,),
    ) == [(None, "completed")]
    assert query(database_url, "select count(*) from public.outbox_events")[0][0] == before + 1

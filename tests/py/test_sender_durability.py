"""The sender across a database that goes away: real `python -m app worker` processes send into
the fake provider while Postgres is restarted (`pg_ctl restart -m fast`) or stopped, and the
provider's own record of queue ids says what went out how often.

The server is a cluster of this module's own: restarting the session's would cut the
connections of every other test's fixtures."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.db import query
from tests.support.fake_provider import FakeProvider, fake_provider
from tests.support.sender import enqueue_templates, sends_per_queue_id, start_worker, wait_for
from tests.support.server import AUTHENTICATOR_PASSWORD, TestServer, start_cluster_server

# Short leases so that claims lost with the connection come back within the test; the sender
# requires a lease of at least twice the HTTP timeout plus 5 s.
QUICK = {"SENDER_LEASE_SECONDS": "10", "SENDER_HTTP_TIMEOUT_SECONDS": "2", "LOG_LEVEL": "warning"}


@pytest.fixture(scope="module")
def own_server() -> Iterator[TestServer]:
    server = start_cluster_server()
    yield server
    server.close()


@pytest.fixture
def own_database(own_server: TestServer) -> Iterator[str]:
    name = own_server.clone("durability")
    yield name
    own_server.drop(name)


def statuses(url: str) -> dict[str, int]:
    """The queue by status; {} while the database is away."""
    try:
        rows = query(url, "select status, count(*) from public.whatsapp_message_queue group by 1")
    except psycopg.OperationalError:
        return {}
    return dict(rows)


def outbound_rows(url: str) -> tuple[int, int]:
    rows = query(
        url,
        "select count(*), count(distinct metadata ->> 'queue_id') from public.message_tracking"
        " where direction = 'OUTBOUND'",
    )
    return rows[0]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM; every one must exit 0."""
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            _, stderr = worker.communicate(timeout=30)
        finally:
            worker.kill()
        assert worker.returncode == 0, stderr.decode(errors="replace")


def sent_once(fake: FakeProvider, ids: list[int]) -> None:
    """The provider received every queue id exactly once."""
    sends = sends_per_queue_id(r.json for r in fake.requests)
    twice = sorted(queue_id for queue_id, n in sends.items() if n > 1)
    assert twice == [], f"{len(twice)} messages reached the provider more than once: {twice[:20]}"
    assert sorted(sends) == ids, "every message reached the provider"


def test_a_database_restart_mid_drain_sends_nothing_twice(own_server, own_database, tmp_path):
    url = own_server.url(own_database)
    sender_url = own_server.url(own_database, "authenticator", AUTHENTICATOR_PASSWORD)
    messages = 1000
    enqueue_templates(url, messages, per_recipient=5)
    ids = [row[0] for row in query(url, "select id from public.whatsapp_message_queue order by 1")]
    assert own_server.cluster is not None

    with fake_provider() as fake:
        # Every loop has a batch in the air most of the time: whatever the restart catches, the
        # answers come back while the database is away and must be held until it returns.
        fake.delay(0.1)
        logs = [tmp_path / f"worker{n}.log" for n in range(2)]
        workers = [
            start_worker(
                sender_url,
                fake.url,
                log=log,
                SENDER_WORKERS="2",
                SENDER_BATCH_SIZE="20",
                **QUICK,
            )
            for log in logs
        ]
        try:
            wait_for(lambda: statuses(url).get("sent", 0) >= messages // 3, what="a third sent")
            in_the_air = len(fake.requests)
            own_server.cluster.restart()
            assert statuses(url).get("sent", 0) < messages, "the restart came mid-drain"
            # Claims the restart cut off come back when their 10 s lease ends.
            wait_for(lambda: statuses(url).get("sent", 0) == messages, timeout=90, what="all sent")
            # Anything sent twice would be a lost result's lease running out and a resend.
            time.sleep(1)
        finally:
            stop_workers(workers)
        sent_once(fake, ids)

    losses = [
        line
        for log in logs
        for line in map(json.loads, log.read_text().splitlines())
        if line["event"] == "sender lost the database"
    ]
    assert losses, f"the restart reached the workers ({in_the_air} requests before it)"
    assert any(loss["held"] > 0 for loss in losses), "some loop held outcomes across the restart"
    assert statuses(url) == {"sent": messages}
    assert outbound_rows(url) == (messages, messages)


def test_sigterm_while_the_database_is_down_records_the_sends_before_exiting(
    own_server, own_database
):
    url = own_server.url(own_database)
    sender_url = own_server.url(own_database, "authenticator", AUTHENTICATOR_PASSWORD)
    enqueue_templates(url, 12, per_recipient=1)
    ids = [row[0] for row in query(url, "select id from public.whatsapp_message_queue order by 1")]
    cluster = own_server.cluster
    assert cluster is not None

    with fake_provider() as fake:
        fake.delay(1.5)
        worker = start_worker(
            sender_url, fake.url, SENDER_WORKERS="1", SENDER_BATCH_SIZE="6", **QUICK
        )
        try:
            wait_for(lambda: len(fake.requests) == 6, what="a batch in the air")
            cluster.stop()
            worker.send_signal(signal.SIGTERM)
            # The answers come back; the database is away: the worker holds them and waits.
            time.sleep(3)
            assert worker.poll() is None, "the worker waits for the database to record its sends"
            cluster.start()
            _, stderr = worker.communicate(timeout=20)
        finally:
            worker.kill()
            cluster.start()
        assert worker.returncode == 0, stderr.decode()
        assert len(fake.requests) == 6, "nothing claimed after SIGTERM"
        sent = sends_per_queue_id(r.json for r in fake.requests)

    rows = query(
        url,
        "select id, status, claimed_at is not null from public.whatsapp_message_queue order by id",
    )
    assert [(i, s) for i, s, _ in rows if s == "sent"] == [(i, "sent") for i in sorted(sent)]
    assert [(s, claimed) for _, s, claimed in rows].count(("pending", False)) == 6, (
        "the rest were never claimed"
    )
    assert outbound_rows(url) == (6, 6)
    assert set(sent) <= set(ids)


def test_sigterm_gives_up_on_held_sends_when_their_lease_ends(own_server, own_database, tmp_path):
    url = own_server.url(own_database)
    sender_url = own_server.url(own_database, "authenticator", AUTHENTICATOR_PASSWORD)
    enqueue_templates(url, 3, per_recipient=1)
    ids = [row[0] for row in query(url, "select id from public.whatsapp_message_queue order by 1")]
    cluster = own_server.cluster
    assert cluster is not None
    log = tmp_path / "worker.log"

    with fake_provider() as fake:
        fake.delay(0.5)
        worker = start_worker(sender_url, fake.url, log=log, SENDER_WORKERS="1", **QUICK)
        try:
            wait_for(lambda: len(fake.requests) == 3, what="a batch in the air")
            claimed = time.monotonic()
            cluster.stop()
            worker.send_signal(signal.SIGTERM)
            # It waits for the database no longer than the 10 s lease: then another worker may
            # claim those messages, and recording them could no longer keep them from going twice.
            _, stderr = worker.communicate(timeout=20)
            waited = time.monotonic() - claimed
        finally:
            worker.kill()
            cluster.start()
    assert worker.returncode == 0, stderr.decode()
    assert 9 < waited < 15
    gave_up = [
        line
        for line in map(json.loads, log.read_text().splitlines())
        if line["event"].startswith("stopping with sends the database never recorded")
    ]
    assert [(line["level"], sorted(line["queue_ids"])) for line in gave_up] == [("error", ids)]
    # Still claimed: they come back when the lease ends.
    assert query(
        url,
        "select count(*) from public.whatsapp_message_queue"
        " where status = 'pending' and claimed_at is not null",
    ) == [(3,)]

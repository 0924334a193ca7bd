"""The sender (app.sender.worker) end to end: messages enqueued in the database go to a fake
provider on a loopback port, and what the provider answered comes back into the queue and
message_tracking. The last tests run `python -m app worker` as a process, to stop it with
SIGTERM and to kill it with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from app.sender.providers import Provider
from app.sender.worker import SenderConfig, run_senders
from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge
from tests.support.fake_provider import fake_provider
from tests.support.sender import start_worker, wait_for
from tests.support.server import AUTHENTICATOR_PASSWORD, TestServer

FAST = SenderConfig(
    batch_size=10, lease_seconds=30, http_timeout_seconds=2.0, idle_poll_seconds=0.05
)


@pytest.fixture
def sender_url(server: TestServer, database: str) -> str:
    """What the worker connects with: authenticator, as the edge does, then service_role."""
    return server.url(database, "authenticator", AUTHENTICATOR_PASSWORD)


def open_window(database_url: str, *phones: str) -> None:
    """The recipients wrote a minute ago: free-form messages may go to them."""
    for phone in phones:
        query(database_url, "insert into public.users (phone_number) values (%s)", (phone,))
        query(
            database_url,
            "insert into public.conversation_mappings (wa_id, user_id, last_inbound_at)"
            " select %s, id, now() - interval '1 minute' from public.users"
            " where phone_number = %s",
            (phone.removeprefix("+"), phone),
        )


def enqueue(database_url: str, phone: str, message_type: str, payload: dict[str, Any]) -> int:
    rows = query(
        database_url,
        "select public.enqueue_whatsapp_message(%s, %s, %s)",
        (phone, message_type, json.dumps(payload)),
    )
    return rows[0][0]


def pending(database_url: str) -> int:
    return query(
        database_url, "select count(*) from public.whatsapp_message_queue where status = 'pending'"
    )[0][0]


def send_until(
    url: str,
    provider: Provider,
    done: Callable[[], bool],
    *,
    config: SenderConfig = FAST,
    concurrency: int = 2,
    timeout: float = 30.0,
) -> int:
    """Runs the senders until done() (polled) or the timeout; returns how many they sent."""

    async def main() -> int:
        stop = asyncio.Event()

        async def watch() -> None:
            deadline = time.monotonic() + timeout
            # The database has no event to await here: poll it.
            while time.monotonic() < deadline and not await asyncio.to_thread(done):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            stop.set()

        watcher = asyncio.create_task(watch())
        sent = await run_senders(url, provider, config, concurrency=concurrency, stop=stop)
        await watcher
        return sent

    return asyncio.run(main())


def test_every_type_goes_out_and_is_tracked(database_url: str, sender_url: str) -> None:
    phones = [f"+25078800010{n}" for n in range(5)]
    open_window(database_url, *phones)
    messages = {
        "text": {"body": "Your driver is 3 minutes away"},
        "template": {"name": "ride_receipt", "language": {"code": "en"}},
        "media": {
            "media_type": "image",
            "link": "https://cdn.easymo.test/map.png",
            "caption": "Map",
        },
        "interactive": {
            "type": "button",
            "body": {"text": "Confirm the ride?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]},
        },
        "location": {"latitude": -1.9441, "longitude": 30.0619, "name": "Kigali Heights"},
    }
    ids = {
        kind: enqueue(database_url, phone, kind, payload)
        for phone, (kind, payload) in zip(phones, messages.items(), strict=True)
    }

    with fake_provider() as fake:
        sent = send_until(sender_url, fake.meta(), lambda: pending(database_url) == 0)
        requests = fake.requests

    assert sent == 5
    by_queue_id = {int(r.json["biz_opaque_callback_data"]): r.json for r in requests}
    assert set(by_queue_id) == set(ids.values())
    assert by_queue_id[ids["text"]]["text"] == messages["text"]
    assert by_queue_id[ids["media"]]["type"] == "image"
    assert by_queue_id[ids["media"]]["image"] == {
        "link": "https://cdn.easymo.test/map.png",
        "caption": "Map",
    }
    assert by_queue_id[ids["location"]]["to"] == phones[4].removeprefix("+")

    rows = query(
        database_url,
        "select q.message_type, q.status, q.attempts, t.direction, t.status, t.message_type,"
        " t.user_id is not null, t.mapping_id is not null, (t.metadata ->> 'queue_id')::bigint"
        " from public.whatsapp_message_queue as q"
        " join public.message_tracking as t on t.wamid = q.provider_message_id"
        " order by q.id",
    )
    assert [(r[0], r[5]) for r in rows] == [
        ("text", "text"),
        ("template", "template"),
        ("media", "image"),
        ("interactive", "interactive"),
        ("location", "location"),
    ]
    assert {r[1:5] for r in rows} == {("sent", 1, "OUTBOUND", "accepted")}
    assert all(r[6] and r[7] for r in rows), "the outbound rows belong to the user and chat"
    assert [r[8] for r in rows] == sorted(ids.values())


def test_each_provider_answer_becomes_its_outcome(database_url: str, sender_url: str) -> None:
    undeliverable, throttled, slow, fine = (f"+25078800020{n}" for n in range(4))
    open_window(database_url, undeliverable, throttled, slow, fine)
    ids = {
        phone: enqueue(database_url, phone, "text", {"body": "hello"})
        for phone in (undeliverable, throttled, slow, fine)
    }

    with fake_provider() as fake:
        fake.fail(
            undeliverable.removeprefix("+"),
            **fake.meta_error(131026, "Message undeliverable"),
        )
        fake.fail(
            throttled.removeprefix("+"),
            **fake.meta_error(130429, "Rate limit hit", http_status=429),
        )
        # Slower than the HTTP timeout: the request left, no answer came back.
        fake.delay(3.0, slow.removeprefix("+"))
        config = SenderConfig(
            batch_size=10, lease_seconds=30, http_timeout_seconds=0.5, idle_poll_seconds=0.05
        )
        send_until(sender_url, fake.meta(), lambda: pending(database_url) == 0, config=config)

    outcome = dict(
        query(
            database_url,
            "select id, array[status, attempts::text, coalesce(last_error_code, '')]"
            " from public.whatsapp_message_queue",
        )
    )
    assert outcome[ids[undeliverable]] == ["failed", "1", "131026"]
    # Throttled once, then sent on the retry after its backoff.
    assert outcome[ids[throttled]] == ["sent", "2", "130429"]
    assert outcome[ids[slow]] == ["unconfirmed", "1", "ReadTimeout"]
    assert outcome[ids[fine]] == ["sent", "1", ""]
    events = query(
        database_url,
        "select event_type, (payload ->> 'queue_id')::bigint from public.outbox_events"
        " where event_type like 'whatsapp.send_%%' order by 2",
    )
    assert events == sorted(
        [("whatsapp.send_failed", ids[undeliverable]), ("whatsapp.send_unconfirmed", ids[slow])],
        key=lambda e: e[1],
    )


def test_an_expired_token_stops_the_line(database_url: str, sender_url: str) -> None:
    phone = "+250788000300"
    open_window(database_url, phone)
    first = enqueue(database_url, phone, "text", {"body": "one"})

    def paused() -> bool:
        return query(database_url, "select paused from monitoring.whatsapp_queue_stats limit 1")[0][
            0
        ]

    with fake_provider() as fake:
        send_until(sender_url, fake.meta(access_token="expired"), paused)
        assert len(fake.requests) == 1, "no send after the line stopped"

        row = query(
            database_url,
            "select status, attempts, claimed_by from public.whatsapp_message_queue where id = %s",
            (first,),
        )
        assert row == [("pending", 0, None)], "released with its attempts as they were"
        stats = query(
            database_url,
            "select pause_error_code, pause_reason like 'meta 190:%%'"
            " from monitoring.whatsapp_queue_stats where status = 'pending'",
        )
        assert stats == [("190", True)]

        # Fixed token, line resumed: it goes out.
        query(database_url, "select public.resume_whatsapp_queue()")
        send_until(sender_url, fake.meta(), lambda: pending(database_url) == 0)
    assert query(
        database_url, "select status from public.whatsapp_message_queue where id = %s", (first,)
    ) == [("sent",)]


def test_a_stop_with_a_provider_message_longer_than_a_pause_reason_still_stops_the_line(
    database_url: str, sender_url: str
) -> None:
    """pause_whatsapp_queue takes a reason of 2000 characters; the provider's text is not ours to
    bound, and a refused pause would leave the line running into the same error."""
    phone = "+250788000301"
    open_window(database_url, phone)
    enqueue(database_url, phone, "text", {"body": "one"})

    def paused() -> bool:
        return query(database_url, "select paused from monitoring.whatsapp_queue_stats limit 1")[0][
            0
        ]

    with fake_provider() as fake:
        fake.fail(phone, **fake.meta_error(368, "Temporarily blocked: " + "x" * 5000, 403))
        send_until(sender_url, fake.meta(), paused)
    assert query(
        database_url,
        "select pause_error_code, char_length(pause_reason), pause_reason like 'meta 368: Temp%%'"
        " from monitoring.whatsapp_queue_stats where status = 'pending'",
    ) == [("368", 2000, True)]


def test_one_recipient_in_order_and_never_two_at_once(database_url: str, sender_url: str) -> None:
    phones = [f"+2507880004{n:02d}" for n in range(10)]
    open_window(database_url, *phones)
    for n in range(10):
        for phone in phones:
            enqueue(database_url, phone, "text", {"body": str(n)})

    with fake_provider() as fake:
        fake.delay(0.01)
        sent = send_until(
            sender_url, fake.meta(), lambda: pending(database_url) == 0, concurrency=4
        )
        requests = fake.requests
        in_flight = fake.max_in_flight_per_recipient()

    assert sent == 100
    assert max(in_flight.values()) == 1
    bodies: dict[str, list[str]] = defaultdict(list)
    for request in requests:
        bodies[request.json["to"]].append(request.json["text"]["body"])
    assert all(seen == [str(n) for n in range(10)] for seen in bodies.values())


def test_the_supabase_client_enqueues_through_the_edge(edge: Edge, database_url: str) -> None:
    with RecordingClient(edge.url, edge.service_role_key) as service:
        queued = service.rpc(
            "enqueue_whatsapp_message",
            {
                "p_recipient_phone": "+250788000500",
                "p_message_type": "template",
                "p_payload": {"name": "welcome", "language": {"code": "en"}},
                "p_priority": 8,
                "p_idempotency_key": "welcome-500",
            },
        ).execute()
        status, error = service.error(
            service.rpc(
                "enqueue_whatsapp_message",
                {
                    "p_recipient_phone": "+250788000500",
                    "p_message_type": "text",
                    "p_payload": {"body": "hi"},
                },
            )
        )
    with RecordingClient(edge.url, edge.anon_key) as anon:
        anon_status, anon_error = anon.error(
            anon.rpc(
                "enqueue_whatsapp_message",
                {
                    "p_recipient_phone": "+250788000500",
                    "p_message_type": "template",
                    "p_payload": {"name": "welcome", "language": {"code": "en"}},
                },
            )
        )

    assert query(
        database_url,
        "select id, recipient_phone::text, priority::int from public.whatsapp_message_queue",
    ) == [(queued.data, "+250788000500", 8)]
    assert (status, error["code"]) == (409, "PT409")
    assert "24-hour customer service window" in error["message"]
    assert (anon_status, anon_error["code"]) == (401, "42501")


# The worker as a process ---------------------------------------------------------------------


def test_sigterm_finishes_the_sends_in_flight(database_url: str, sender_url: str) -> None:
    phones = [f"+2507880006{n:02d}" for n in range(12)]
    open_window(database_url, *phones)
    for phone in phones:
        enqueue(database_url, phone, "text", {"body": "hello"})

    with fake_provider() as fake:
        fake.delay(1.0)
        worker = start_worker(sender_url, fake.url, SENDER_WORKERS="1", SENDER_BATCH_SIZE="4")
        try:
            wait_for(lambda: len(fake.requests) == 4)
            worker.send_signal(signal.SIGTERM)
            _, stderr = worker.communicate(timeout=15)
        finally:
            worker.kill()
        assert worker.returncode == 0, stderr.decode()
        assert len(fake.requests) == 4, "nothing claimed after SIGTERM"

    rows = query(
        database_url,
        "select status, claimed_at is not null, count(*) from public.whatsapp_message_queue"
        " group by 1, 2 order by 1",
    )
    # The four in flight were answered and recorded; nothing is left claimed.
    assert rows == [("pending", False, 8), ("sent", True, 4)]


def test_a_worker_killed_mid_batch_loses_nothing(database_url: str, sender_url: str) -> None:
    phones = [f"+2507880007{n:02d}" for n in range(30)]
    open_window(database_url, *phones)
    ids = [enqueue(database_url, phone, "text", {"body": "hello"}) for phone in phones]

    with fake_provider() as fake:
        fake.delay(0.5)
        worker = start_worker(
            sender_url,
            fake.url,
            SENDER_WORKERS="1",
            SENDER_BATCH_SIZE="10",
            SENDER_LEASE_SECONDS="7",
            SENDER_HTTP_TIMEOUT_SECONDS="1",
        )
        try:
            wait_for(lambda: len(fake.requests) >= 10)
        finally:
            worker.kill()
            worker.communicate()
        fake.delay(0)
        # Its claims come back when their 7 s leases run out, and another worker sends them.
        send_until(sender_url, fake.meta(), lambda: pending(database_url) == 0, timeout=30)
        requests = fake.requests

    rows = query(database_url, "select id, status from public.whatsapp_message_queue order by id")
    assert rows == [(message_id, "sent") for message_id in ids]
    tracked = query(
        database_url,
        "select count(*), count(distinct (metadata ->> 'queue_id'))"
        " from public.message_tracking where direction = 'OUTBOUND'",
    )
    assert tracked == [(30, 30)]
    # The provider saw the killed worker's batch twice at most: it has no idempotency key.
    received = {int(r.json["biz_opaque_callback_data"]) for r in requests}
    assert received == set(ids)
    assert len(requests) <= 30 + 10

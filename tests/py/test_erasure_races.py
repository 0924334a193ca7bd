"""erase_user racing the sender on real connections: whichever of the erasure and the sender's
record of a send to the erased user commits first, the message row left behind carries no body
and no phone number."""

from __future__ import annotations

import threading
import time
from typing import Any

from psycopg.types.json import Jsonb

from tests.support.db import query
from tests.support.races import in_thread, service_connection, wait_until_blocked

USER_ID = "e0000000-0000-4000-8000-0000000000e1"
PHONE = "+250788300001"
BODY = "Your driver Ali is outside"
MESSAGES = 100
SEND_SECONDS = 0.002  # a send between the claim and its record


def queue_and_claim(url: str) -> int:
    """A user who wrote just now, and a text to them claimed by worker w1."""
    query(url, "insert into public.users (id, phone_number) values (%s, %s)", (USER_ID, PHONE))
    query(
        url,
        "insert into public.conversation_mappings (wa_id, user_id, last_inbound_at)"
        " values (%s, %s, now())",
        (PHONE.lstrip("+"), USER_ID),
    )
    with service_connection(url) as conn:
        row = conn.execute(
            "select public.enqueue_whatsapp_message(%s, 'text', %s)", (PHONE, Jsonb({"body": BODY}))
        ).fetchone()
        assert row is not None
        claimed = conn.execute(
            "select id from public.claim_whatsapp_messages(10, 60, 'w1')"
        ).fetchall()
    assert claimed == [(row[0],)]
    return int(row[0])


def sent(message_id: int) -> Jsonb:
    return Jsonb(
        [
            {
                "id": message_id,
                "outcome": "sent",
                "provider": "meta",
                "provider_message_id": "wamid.raced",
            }
        ]
    )


def tracked_row(url: str) -> tuple[Any, ...]:
    rows = query(
        url,
        "select body, content, user_id, metadata ? 'recipient_phone',"
        " to_jsonb(t)::text like %s or to_jsonb(t)::text like %s"
        " from public.message_tracking as t where wamid = 'wamid.raced'",
        (f"%{BODY}%", f"%{PHONE.lstrip('+')}%"),
    )
    assert len(rows) == 1
    return rows[0]


def test_a_send_recorded_while_the_erasure_commits_is_recorded_without_the_person(
    database_url: str,
) -> None:
    message_id = queue_and_claim(database_url)
    with service_connection(database_url) as eraser, service_connection(database_url) as sender:
        eraser.execute("begin")
        eraser.execute("select public.erase_user(%s)", (USER_ID,))
        sender_pid = sender.info.backend_pid
        thread, outcome = in_thread(
            lambda: sender.execute(
                "select public.record_whatsapp_sends(%s, 'w1')", (sent(message_id),)
            ).fetchone()
        )
        wait_until_blocked(database_url, sender_pid)
        eraser.execute("commit")
        thread.join(timeout=20)
    assert not isinstance(outcome[0], BaseException), outcome
    assert outcome[0][0]["sent"] == 1
    body, content, user_id, has_phone, names_them = tracked_row(database_url)
    assert (body, content, user_id, has_phone, names_them) == (None, None, None, False, False)


def test_an_erasure_that_waits_for_a_send_being_recorded_blanks_what_it_recorded(
    database_url: str,
) -> None:
    message_id = queue_and_claim(database_url)
    with service_connection(database_url) as sender, service_connection(database_url) as eraser:
        sender.execute("begin")
        counts = sender.execute(
            "select public.record_whatsapp_sends(%s, 'w1')", (sent(message_id),)
        ).fetchone()
        assert counts is not None
        assert counts[0]["tracked"] == 1
        eraser_pid = eraser.info.backend_pid
        thread, outcome = in_thread(
            lambda: eraser.execute("select public.erase_user(%s)", (USER_ID,)).fetchone()
        )
        wait_until_blocked(database_url, eraser_pid)
        sender.execute("commit")
        thread.join(timeout=20)
    assert not isinstance(outcome[0], BaseException), outcome
    assert outcome[0][0]["messages_blanked"] == 1
    body, content, user_id, has_phone, names_them = tracked_row(database_url)
    # user_id stays: the erased user's id is not personal, and it is how the row was found.
    assert (body, content, str(user_id), has_phone, names_them) == (
        None,
        None,
        USER_ID,
        False,
        False,
    )
    rows = query(
        database_url,
        "select status, recipient_phone, payload from public.whatsapp_message_queue where id = %s",
        (message_id,),
    )
    assert rows == [("sent", None, {})]


def test_the_erased_users_pending_messages_are_never_claimed_by_a_racing_sender(
    database_url: str,
) -> None:
    """An erasure and claims running at once: a message is either claimed before the erasure
    (and then recorded without the person) or cancelled, never sent with the person's data
    after."""
    query(
        database_url,
        "insert into public.users (id, phone_number) values (%s, %s)",
        (USER_ID, PHONE),
    )
    with service_connection(database_url) as conn:
        for n in range(MESSAGES):
            conn.execute(
                "select public.enqueue_whatsapp_message(%s, 'template', %s, 5, null,"
                " now() - make_interval(secs => %s))",
                (PHONE, Jsonb({"name": "ride_update", "language": {"code": "en"}}), MESSAGES - n),
            )
    claimed: list[tuple[Any, ...]] = []
    stop = threading.Event()

    def claim_loop() -> None:
        with service_connection(database_url) as conn:
            while not stop.is_set():
                rows = conn.execute(
                    "select id, recipient_phone, payload"
                    " from public.claim_whatsapp_messages(10, 1, 'w1')"
                ).fetchall()
                claimed.extend(rows)
                time.sleep(SEND_SECONDS)
                for message_id, _, _ in rows:
                    conn.execute(
                        "select public.record_whatsapp_sends(%s, 'w1')",
                        (
                            Jsonb(
                                [
                                    {
                                        "id": message_id,
                                        "outcome": "sent",
                                        "provider": "meta",
                                        "provider_message_id": f"wamid.{message_id}",
                                    }
                                ]
                            ),
                        ),
                    )

    thread = threading.Thread(target=claim_loop)
    with service_connection(database_url) as eraser:
        thread.start()
        deadline = time.monotonic() + 10
        while len(claimed) < 3 and time.monotonic() < deadline:
            time.sleep(0.001)
        eraser.execute("select public.erase_user(%s)", (USER_ID,))
    time.sleep(0.2)
    stop.set()
    thread.join(timeout=20)
    for _, recipient, payload in claimed:
        assert recipient == PHONE, "a claim handed out an erased message"
        assert payload != {}, "a claim handed out an erased message"
    statuses = dict(
        query(
            database_url,
            "select status, count(*) from public.whatsapp_message_queue group by status",
        )
    )
    assert statuses.get("sent", 0) == len(claimed)
    assert statuses.get("sent", 0) + statuses.get("cancelled", 0) == MESSAGES
    assert statuses.get("cancelled", 0) > 0, "the erasure came after every message was sent"
    leftover = query(
        database_url,
        "select count(*) from public.message_tracking as t where to_jsonb(t)::text like %s",
        (f"%{PHONE.lstrip('+')}%",),
    )
    assert leftover == [(0,)]

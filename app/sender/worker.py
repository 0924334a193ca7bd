"""The sender: claims due rows of whatsapp_message_queue, sends them through the provider, and
records every outcome in one call per batch.

A claim hands out at most one message per recipient (the database keeps each recipient's lane
in order), so a batch is sent all at once. What the worker promises:

- Nothing is lost. A worker that dies holds its claims only until their lease runs out; then
  another worker sends them. The lease is longer than any send may take (checked at start), so
  a live worker never loses a message it is still sending.
- Nothing is sent twice by the worker's own doing. The outcomes of a batch that went out are
  held until the database has recorded them: a lost connection (a restart, a failover) is
  opened again and they are recorded first, before anything else is claimed, so at most one
  batch is ever held. Recording twice is harmless (record_whatsapp_sends ignores results for
  messages that are no longer claimed by this worker), so a record whose answer was lost is
  simply recorded again. Held outcomes reach the database before their lease ends as long as
  the database is back by then; only past it could another worker claim and resend them.
- SIGTERM finishes the sends in flight, records them (waiting for the database until their
  lease ends if it is away), gives back what it had not started, and claims nothing more.
- Each loop writes a heartbeat (whatsapp_sender_heartbeat) every few seconds, so monitoring
  and /ready can tell a live sender from a dead or hung one.
- An error no retry can fix (an expired token, a locked account) stops the line: the queue is
  paused with the provider's reason, the message goes back without counting the attempt, and
  monitoring shows why until someone resumes it.
- A send that timed out after the request left is recorded as unconfirmed, not retried: the
  Cloud API takes no idempotency key, and a message sent twice (a payment receipt, a ride
  confirmation) is worse than one an operator redrives after checking its status webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import structlog
from psycopg.rows import dict_row

from app.sender.errors import SendResult
from app.sender.outbound import OutboundMessage
from app.sender.providers import Provider
from app.sender.transport import provider_client

log = structlog.get_logger("sender")

PAUSE_REASON_CHARS = 2000  # pause_whatsapp_queue's bound on p_reason

# The database's name for each provider outcome.
RECORDED_OUTCOME = {
    "sent": "sent",
    "retry": "retry",
    "failed": "failed",
    "ambiguous": "unconfirmed",
    "stop": "released",
}


# Reconnecting: the first pause, and the longest between attempts. While outcomes are held the
# worker tries at the first pause's pace: each second lost brings their lease's end closer.
FIRST_RECONNECT_PAUSE_SECONDS = 0.5
LONGEST_RECONNECT_PAUSE_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5
# whatsapp_sender_heartbeat's bounds.
MAX_HEARTBEAT_COUNT = 1_000_000
MAX_STALE_AFTER_SECONDS = 3600


@dataclass(frozen=True)
class SenderConfig:
    # No defaults: app.settings.Settings holds them (sender_batch_size, ...).
    batch_size: int
    lease_seconds: int
    http_timeout_seconds: float
    # How long an idle worker waits for a NOTIFY before claiming anyway: scheduled messages,
    # retries and expired leases come due without one.
    idle_poll_seconds: float = 1.0
    # How often each loop writes its heartbeat (at most; not per message).
    heartbeat_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 1000:
            raise ValueError("the batch size must be 1 to 1000")
        # A lease that ran out while its send was still in the air would let a second worker
        # send the same message, and two messages to one recipient be in flight at once.
        if self.lease_seconds < 2 * self.http_timeout_seconds + 5:
            raise ValueError(
                f"the lease ({self.lease_seconds} s) must be at least twice the HTTP timeout "
                f"({self.http_timeout_seconds} s) plus 5 s"
            )
        if not 0.1 <= self.heartbeat_seconds <= 600:
            raise ValueError("the heartbeat interval must be 0.1 to 600 s")

    @property
    def stale_after_seconds(self) -> int:
        """How long without a heartbeat before monitoring calls a loop stale: twice the longest
        a live loop can go between two (a batch in the air holds it up to the HTTP timeout)."""
        longest_gap = self.heartbeat_seconds + self.http_timeout_seconds
        return min(MAX_STALE_AFTER_SECONDS, max(2, math.ceil(2 * longest_gap)))


# A worker id is unique to this process start: a restarted container often reuses its host name
# and pid, and its heartbeats must not continue a dead process's row. The heartbeat takes ids of
# up to 200 characters and hosts of up to 255.
_PROCESS_TOKEN = secrets.token_hex(3)
_HOST = socket.gethostname()[:255]


def worker_id(index: int = 0) -> str:
    return f"{_HOST[:150]}:{os.getpid()}:{_PROCESS_TOKEN}:{index}"


def message_from_row(row: dict[str, Any]) -> OutboundMessage:
    return OutboundMessage(
        id=row["id"],
        recipient_phone=row["recipient_phone"],
        message_type=row["message_type"],
        payload=row["payload"],
    )


def recorded_result(message: OutboundMessage, result: SendResult) -> dict[str, Any]:
    """One element of record_whatsapp_sends' p_results."""
    return {
        "id": message.id,
        "outcome": RECORDED_OUTCOME[result.outcome],
        "provider": result.provider,
        "provider_message_id": result.provider_message_id,
        "error_code": result.error_code,
        "error": result.error,
        "retry_in_s": result.retry_after_s,
    }


def released(message: OutboundMessage, provider: str) -> dict[str, Any]:
    return {"id": message.id, "outcome": "released", "provider": provider}


@dataclass
class HeldOutcomes:
    """What became of a batch that went out, until the database has recorded it."""

    results: list[dict[str, Any]]
    # The answer that stops the line, until the pause is recorded.
    pause: SendResult | None
    # Monotonic time the batch's lease ends (counted from before the claim, so never late):
    # past it another worker may claim these messages and send them again.
    lease_ends: float

    @property
    def ids(self) -> list[int]:
        return [result["id"] for result in self.results]


@dataclass
class Heartbeat:
    """What a loop has done since its last heartbeat, and when that was."""

    claimed: int = 0
    sent: int = 0
    written_at: float = field(default=-math.inf)

    def due(self, interval: float) -> bool:
        return time.monotonic() - self.written_at >= interval


class Sender:
    """One claim-send-record loop. Several run side by side in a process (and several processes
    side by side): they share nothing but the database."""

    def __init__(
        self,
        conninfo: str,
        provider: Provider,
        http: httpx.AsyncClient,
        config: SenderConfig,
        worker: str,
        *,
        provider_label: str | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.provider = provider
        self.http = http
        self.config = config
        self.worker = worker
        self.provider_label = provider_label or provider.name
        self.sent = 0
        self.reconnect_pause = FIRST_RECONNECT_PAUSE_SECONDS
        self.held: HeldOutcomes | None = None
        self.heartbeat = Heartbeat()
        self.claimed_at = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        """Claims and sends until `stop`; a lost database connection is opened again. Claims
        cut off with it come back when their leases run out; outcomes held are recorded first.
        After `stop`, held outcomes are still recorded, until their lease ends."""
        while not stop.is_set() or self.held is not None:
            if self.held is not None and stop.is_set() and time.monotonic() > self.held.lease_ends:
                log.error(
                    "stopping with sends the database never recorded: their lease has ended,"
                    " so another worker may send them again",
                    worker=self.worker,
                    queue_ids=self.held.ids,
                )
                return
            try:
                await self._run_connected(stop)
            except psycopg.OperationalError as error:
                held = len(self.held.results) if self.held else 0
                log.warning(
                    "sender lost the database", worker=self.worker, error=str(error), held=held
                )
                await self._pause_before_reconnecting(stop)

    async def _pause_before_reconnecting(self, stop: asyncio.Event) -> None:
        if self.held is not None:
            # Not cut short by `stop`: the outcomes must be recorded before the loop ends.
            await asyncio.sleep(FIRST_RECONNECT_PAUSE_SECONDS)
            return
        await _sleep_unless(stop, self.reconnect_pause)
        self.reconnect_pause = min(self.reconnect_pause * 2, LONGEST_RECONNECT_PAUSE_SECONDS)

    async def _run_connected(self, stop: asyncio.Event) -> None:
        async with await self._connect() as conn:
            # What went out before the connection was lost, before anything else is claimed.
            await self._record_held(conn)
            # Connected again: the next loss waits from the start of the backoff.
            self.reconnect_pause = FIRST_RECONNECT_PAUSE_SECONDS
            if not stop.is_set():
                async with await self._connect() as listener:
                    await listener.execute("listen whatsapp_message_queue")
                    await self._write_heartbeat(conn)
                    while not stop.is_set():
                        batch = await self._claim(conn)
                        if self.heartbeat.due(self.config.heartbeat_seconds):
                            await self._write_heartbeat(conn)
                        if batch:
                            await self._send_and_record(conn, batch, stop)
                        else:
                            await self._wait_for_work(listener, stop)
            await self._write_heartbeat(conn, stopped=True)

    async def _connect(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        conn = await psycopg.AsyncConnection.connect(
            self.conninfo,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )
        # As services call RPCs: the sender needs no more than service_role.
        await conn.execute("set role service_role")
        return conn

    async def _claim(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> list[OutboundMessage]:
        # Before the call: the database starts the lease later than this, never earlier.
        self.claimed_at = time.monotonic()
        cursor = await conn.execute(
            "select id, recipient_phone, message_type, payload"
            " from public.claim_whatsapp_messages(%s, %s, %s)",
            (self.config.batch_size, self.config.lease_seconds, self.worker),
        )
        batch = [message_from_row(row) for row in await cursor.fetchall()]
        self.heartbeat.claimed += len(batch)
        return batch

    async def _send_and_record(
        self,
        conn: psycopg.AsyncConnection[dict[str, Any]],
        batch: list[OutboundMessage],
        stop: asyncio.Event,
    ) -> None:
        lease_ends = self.claimed_at + self.config.lease_seconds
        results = await asyncio.gather(*(self._send(message, stop) for message in batch))
        self.held = HeldOutcomes(
            results=[
                released(message, self.provider.name)
                if result is None
                else recorded_result(message, result)
                for message, result in results
            ],
            pause=next((r for _, r in results if r is not None and r.outcome == "stop"), None),
            lease_ends=lease_ends,
        )
        await self._record_held(conn)

    async def _record_held(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> None:
        """Records the outcomes held, if any. A failure keeps them held: recording them again
        after a record that did commit changes nothing (those messages are no longer claimed
        by this worker)."""
        held = self.held
        if held is None:
            return
        if held.pause is not None:
            await self._stop_the_line(conn, held.pause)
            held.pause = None
        cursor = await conn.execute(
            "select public.record_whatsapp_sends(%s, %s) as counts",
            (json.dumps(held.results), self.worker),
        )
        self.held = None
        row = await cursor.fetchone()
        counts = row["counts"] if row else {}
        self.sent += counts.get("sent", 0)
        self.heartbeat.sent += counts.get("sent", 0)
        if any(counts.get(k) for k in ("failed", "dead", "unconfirmed", "ignored")):
            log.warning("sends recorded", worker=self.worker, **counts)

    async def _write_heartbeat(
        self, conn: psycopg.AsyncConnection[dict[str, Any]], *, stopped: bool = False
    ) -> None:
        try:
            await conn.execute(
                "select public.whatsapp_sender_heartbeat(%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    self.worker,
                    _HOST,
                    os.getpid(),
                    self.provider_label,
                    self.config.stale_after_seconds,
                    min(self.heartbeat.claimed, MAX_HEARTBEAT_COUNT),
                    min(self.heartbeat.sent, MAX_HEARTBEAT_COUNT),
                    stopped,
                ),
            )
        except psycopg.OperationalError:
            raise
        except psycopg.Error as error:
            # A database without the heartbeat (migrations behind the code) still gets its
            # messages sent; monitoring will show this sender as absent.
            log.warning("heartbeat refused", worker=self.worker, error=str(error))
        self.heartbeat = Heartbeat(written_at=time.monotonic())

    async def _send(
        self, message: OutboundMessage, stop: asyncio.Event
    ) -> tuple[OutboundMessage, SendResult | None]:
        """The message and what became of it; None when it was not sent because the worker is
        stopping (it goes back to the queue)."""
        if stop.is_set():
            return message, None
        return message, await self.provider.send(self.http, message)

    async def _stop_the_line(
        self, conn: psycopg.AsyncConnection[dict[str, Any]], result: SendResult
    ) -> None:
        # pause_whatsapp_queue takes 2000 characters; the provider's text may be longer.
        reason = f"{result.provider} {result.error_code}: {result.error}"[:PAUSE_REASON_CHARS]
        await conn.execute(
            "select public.pause_whatsapp_queue(%s, %s, %s)",
            (reason, result.error_code, self.worker),
        )
        log.error("queue paused: no send can succeed until this is fixed", reason=reason)

    async def _wait_for_work(
        self, listener: psycopg.AsyncConnection[dict[str, Any]], stop: asyncio.Event
    ) -> None:
        notified = asyncio.ensure_future(_first_notify(listener, self.config.idle_poll_seconds))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({notified, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (notified, stopped):
            task.cancel()
        await asyncio.gather(notified, stopped, return_exceptions=True)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _first_notify(listener: psycopg.AsyncConnection[Any], seconds: float) -> None:
    async for _ in listener.notifies(timeout=seconds, stop_after=1):
        return


async def run_senders(
    conninfo: str,
    provider: Provider,
    config: SenderConfig,
    *,
    concurrency: int = 1,
    stop: asyncio.Event,
    provider_label: str | None = None,
) -> int:
    """`concurrency` sender loops sharing one HTTP client until `stop` is set; returns how many
    messages they sent. `provider_label` names the provider in heartbeats (default its name)."""
    timeout = httpx.Timeout(config.http_timeout_seconds)
    async with provider_client(concurrency * config.batch_size, timeout) as http:
        senders = [
            Sender(
                conninfo, provider, http, config, worker_id(index), provider_label=provider_label
            )
            for index in range(concurrency)
        ]
        tasks = [asyncio.create_task(sender.run(stop)) for sender in senders]
        log.info("sender started", provider=provider.name, workers=concurrency)
        await asyncio.gather(*tasks)
        return sum(sender.sent for sender in senders)

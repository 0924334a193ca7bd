"""The sender: claims due rows of whatsapp_message_queue, sends them through the provider, and
records every outcome in one call per batch.

A claim hands out at most one message per recipient (the database keeps each recipient's lane
in order), so a batch is sent all at once. What the worker promises:

- Nothing is lost. A worker that dies holds its claims only until their lease runs out; then
  another worker sends them. The lease is longer than any send may take (checked at start), so
  a live worker never loses a message it is still sending.
- SIGTERM finishes the sends in flight, records them, gives back what it had not started, and
  claims nothing more.
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
import os
import socket
from dataclasses import dataclass
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

# The database's name for each provider outcome.
RECORDED_OUTCOME = {
    "sent": "sent",
    "retry": "retry",
    "failed": "failed",
    "ambiguous": "unconfirmed",
    "stop": "released",
}


@dataclass(frozen=True)
class SenderConfig:
    # No defaults: app.settings.Settings holds them (sender_batch_size, ...).
    batch_size: int
    lease_seconds: int
    http_timeout_seconds: float
    # How long an idle worker waits for a NOTIFY before claiming anyway: scheduled messages,
    # retries and expired leases come due without one.
    idle_poll_seconds: float = 1.0

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


def worker_id(index: int = 0) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


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
    ) -> None:
        self.conninfo = conninfo
        self.provider = provider
        self.http = http
        self.config = config
        self.worker = worker
        self.sent = 0
        self.reconnect_pause = 0.5

    async def run(self, stop: asyncio.Event) -> None:
        """Claims and sends until `stop`; a lost database connection is opened again (its claims
        come back when their leases run out)."""
        while not stop.is_set():
            try:
                await self._run_connected(stop)
            except psycopg.OperationalError as error:
                log.warning("sender lost the database", worker=self.worker, error=str(error))
                await _sleep_unless(stop, self.reconnect_pause)
                self.reconnect_pause = min(self.reconnect_pause * 2, 30.0)

    async def _run_connected(self, stop: asyncio.Event) -> None:
        async with (
            await self._connect() as conn,
            await self._connect() as listener,
        ):
            await listener.execute("listen whatsapp_message_queue")
            # Connected again: the next loss waits from the start of the backoff.
            self.reconnect_pause = 0.5
            while not stop.is_set():
                batch = await self._claim(conn)
                if batch:
                    await self._send_and_record(conn, batch, stop)
                else:
                    await self._wait_for_work(listener, stop)

    async def _connect(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        conn = await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, row_factory=dict_row
        )
        # As services call RPCs: the sender needs no more than service_role.
        await conn.execute("set role service_role")
        return conn

    async def _claim(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> list[OutboundMessage]:
        cursor = await conn.execute(
            "select id, recipient_phone, message_type, payload"
            " from public.claim_whatsapp_messages(%s, %s, %s)",
            (self.config.batch_size, self.config.lease_seconds, self.worker),
        )
        return [message_from_row(row) for row in await cursor.fetchall()]

    async def _send_and_record(
        self,
        conn: psycopg.AsyncConnection[dict[str, Any]],
        batch: list[OutboundMessage],
        stop: asyncio.Event,
    ) -> None:
        results = await asyncio.gather(*(self._send(message, stop) for message in batch))
        stopping = next((r for _, r in results if r is not None and r.outcome == "stop"), None)
        if stopping is not None:
            await self._stop_the_line(conn, stopping)
        recorded = [
            released(message, self.provider.name)
            if result is None
            else recorded_result(message, result)
            for message, result in results
        ]
        cursor = await conn.execute(
            "select public.record_whatsapp_sends(%s, %s) as counts",
            (json.dumps(recorded), self.worker),
        )
        row = await cursor.fetchone()
        counts = row["counts"] if row else {}
        self.sent += counts.get("sent", 0)
        if any(counts.get(k) for k in ("failed", "dead", "unconfirmed", "ignored")):
            log.warning("sends recorded", worker=self.worker, **counts)

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
        reason = f"{result.provider} {result.error_code}: {result.error}"
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
) -> int:
    """`concurrency` sender loops sharing one HTTP client until `stop` is set; returns how many
    messages they sent."""
    timeout = httpx.Timeout(config.http_timeout_seconds)
    async with provider_client(concurrency * config.batch_size, timeout) as http:
        senders = [
            Sender(conninfo, provider, http, config, worker_id(index))
            for index in range(concurrency)
        ]
        tasks = [asyncio.create_task(sender.run(stop)) for sender in senders]
        log.info("sender started", provider=provider.name, workers=concurrency)
        await asyncio.gather(*tasks)
        return sum(sender.sent for sender in senders)

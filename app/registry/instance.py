"""A process in the service registry: it registers at start-up, heartbeats while it runs and
says `stopped` when it ends. This runs beside the process's work, on a connection of its own:
a failure is logged and retried, never raised, and never holds up a request or a send."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from psycopg.types.json import Jsonb

log = structlog.get_logger("registry")

CONNECT_TIMEOUT_SECONDS = 5
# A call that takes longer is abandoned (and logged); the next heartbeat tries again.
STATEMENT_TIMEOUT_MS = 5000
# After a failure, the next attempt waits this long at first, then twice as long, up to the
# heartbeat interval.
FIRST_RETRY_PAUSE_SECONDS = 0.5
# How long a stopping process waits for its last heartbeat (`stopped`) before it gives up.
STOP_TIMEOUT_SECONDS = 5.0


def app_version() -> str:
    """The version the project's own processes register with: the package's."""
    try:
        return importlib.metadata.version("easymo-backend")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def default_instance_id() -> str:
    """host:pid, as register_service bounds it (200 characters)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


@dataclass(frozen=True)
class ServiceInstance:
    """What the process tells the registry about itself."""

    service_name: str
    service_type: str
    version: str
    endpoint: str | None = None
    health_check_url: str | None = None
    capabilities: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    instance_id: str = field(default_factory=default_instance_id)
    heartbeat_seconds: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.heartbeat_seconds <= 3600:
            raise ValueError("the heartbeat interval must be 1 to 3600 s")


Metrics = Callable[[], dict[str, Any]]


class Registration:
    """Registers `instance` and heartbeats until `stop`; then heartbeats `stopped`."""

    def __init__(
        self, conninfo: str, instance: ServiceInstance, metrics: Metrics | None = None
    ) -> None:
        self.conninfo = conninfo
        self.instance = instance
        self.metrics = metrics
        self.heartbeats = 0

    async def run(self, stop: asyncio.Event) -> None:
        pause = FIRST_RETRY_PAUSE_SECONDS
        while not stop.is_set():
            try:
                async with await self._connect() as conn:
                    await self._register(conn)
                    pause = FIRST_RETRY_PAUSE_SECONDS
                    while not stop.is_set():
                        await self._heartbeat(conn, "healthy")
                        await _sleep_unless(stop, self.instance.heartbeat_seconds)
                    await self._heartbeat(conn, "stopped")
                    return
            except (psycopg.Error, OSError) as error:
                log.warning(
                    "service registry unreachable",
                    service=self.instance.service_name,
                    instance=self.instance.instance_id,
                    error=str(error),
                )
                await _sleep_unless(stop, pause)
                pause = min(pause * 2, self.instance.heartbeat_seconds)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
        )
        # As services call RPCs: registering needs no more than service_role.
        await conn.execute("set role service_role")
        await conn.execute(f"set statement_timeout = {STATEMENT_TIMEOUT_MS}")
        return conn

    async def _register(self, conn: psycopg.AsyncConnection[Any]) -> None:
        i = self.instance
        await conn.execute(
            "select from public.register_service("
            "p_service_name => %s, p_service_type => %s, p_version => %s, p_endpoint => %s,"
            " p_health_check_url => %s, p_capabilities => %s, p_dependencies => %s,"
            " p_instance_id => %s, p_heartbeat_interval_seconds => %s)",
            (
                i.service_name,
                i.service_type,
                i.version,
                i.endpoint,
                i.health_check_url,
                Jsonb(list(i.capabilities)),
                list(i.dependencies),
                i.instance_id,
                i.heartbeat_seconds,
            ),
        )
        log.info("registered", service=i.service_name, instance=i.instance_id)

    async def _heartbeat(self, conn: psycopg.AsyncConnection[Any], status: str) -> None:
        call = (
            "select public.service_heartbeat("
            "p_service_name => %s, p_status => %s, p_metrics => %s, p_instance_id => %s)"
        )
        params = (self.instance.service_name, status, self._metrics(), self.instance.instance_id)
        try:
            await conn.execute(call, params)
        except psycopg.Error as error:
            if error.sqlstate != "PT404":
                raise
            # The sweep removed us (silent for a day: a suspended host, a long outage).
            await self._register(conn)
            await conn.execute(call, params)
        self.heartbeats += 1

    def _metrics(self) -> Jsonb | None:
        if self.metrics is None:
            return None
        try:
            return Jsonb(self.metrics())
        except Exception as error:  # a metrics bug must not stop the heartbeat
            log.warning("heartbeat metrics failed", error=str(error))
            return None


@contextlib.asynccontextmanager
async def registered(
    conninfo: str, instance: ServiceInstance, metrics: Metrics | None = None
) -> AsyncIterator[Registration]:
    """The process is in the registry while the block runs: registration and heartbeats run as a
    background task; on exit it says `stopped`, waiting at most STOP_TIMEOUT_SECONDS."""
    registration = Registration(conninfo, instance, metrics)
    stop = asyncio.Event()
    task = asyncio.create_task(registration.run(stop))
    try:
        yield registration
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, STOP_TIMEOUT_SECONDS)
        except Exception as error:  # shutting down: log it, never let it mask the real exit
            log.warning("service registry: no clean stop", error=repr(error))


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)

"""`python -m app worker`: the sender as a process, with the provider the settings name, or the
sandbox when they name none."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterator

import structlog
import uvicorn

from app.registry.instance import ServiceInstance, app_version, registered
from app.sender.providers import MetaCloudApi, Provider, TwilioMessages
from app.sender.sandbox import create_sandbox_app
from app.sender.worker import SenderConfig, run_senders
from app.settings import Settings, load_settings
from app.shared.logs import configure_logging

log = structlog.get_logger("sender")

# What the sandbox accepts: it checks credentials as the real APIs do, so a worker configured
# with the wrong ones fails here as it would there.
SANDBOX_TOKEN = "sandbox-access-token"  # noqa: S105 - a loopback fake's, not a secret
SANDBOX_TWILIO_SID = "AC" + "0" * 32
SANDBOX_PHONE_NUMBER_ID = "100000000000001"


def configured_provider(settings: Settings) -> Provider | None:
    """Meta when its token and phone number id are set, else Twilio when its account, token and
    sender are, else None (the sandbox)."""
    if settings.whatsapp_access_token and settings.whatsapp_phone_number_id:
        return MetaCloudApi(
            base_url=settings.whatsapp_api_base_url,
            api_version=settings.whatsapp_api_version,
            phone_number_id=settings.whatsapp_phone_number_id,
            access_token=settings.whatsapp_access_token.get_secret_value(),
        )
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_whatsapp_from:
        return TwilioMessages(
            base_url=settings.twilio_api_base_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            from_number=settings.twilio_whatsapp_from,
        )
    return None


def sender_config(settings: Settings) -> SenderConfig:
    return SenderConfig(
        batch_size=settings.sender_batch_size,
        lease_seconds=settings.sender_lease_seconds,
        http_timeout_seconds=settings.sender_http_timeout_seconds,
        heartbeat_seconds=settings.sender_heartbeat_seconds,
    )


class _SandboxServer(uvicorn.Server):
    # The worker handles SIGTERM itself (finish the sends in flight, then stop the sandbox);
    # uvicorn's own handlers would stop the sandbox first.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def sandbox(port: int) -> AsyncIterator[Provider]:
    """The sandbox on 127.0.0.1:port, for as long as the context lasts, and a Meta provider
    pointed at it."""
    app, _ = create_sandbox_app(
        SANDBOX_TOKEN, SANDBOX_TWILIO_SID, SANDBOX_TOKEN, max_recorded=1000, log_sends=True
    )
    server = _SandboxServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises why it could not start (the port is taken, ...)
            raise RuntimeError(f"the sandbox provider did not start on port {port}")
        await asyncio.sleep(0.02)
    log.info("sandbox provider: sends are accepted and logged, not delivered", port=port)
    try:
        yield MetaCloudApi(
            base_url=f"http://127.0.0.1:{port}",
            phone_number_id=SANDBOX_PHONE_NUMBER_ID,
            access_token=SANDBOX_TOKEN,
        )
    finally:
        server.should_exit = True
        await serving


async def serve_worker(settings: Settings) -> int:
    """Sends until SIGTERM or SIGINT; returns how many messages went out."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    config = sender_config(settings)
    async with contextlib.AsyncExitStack() as stack:
        provider = configured_provider(settings)
        label = provider.name if provider else "sandbox"
        provider = provider or await stack.enter_async_context(sandbox(settings.sandbox_port))
        if settings.service_heartbeat_seconds is not None:
            instance = sender_instance(label, settings.service_heartbeat_seconds)
            await stack.enter_async_context(registered(settings.edge_database_url, instance))
        sent = await run_senders(
            settings.edge_database_url,
            provider,
            config,
            concurrency=settings.sender_workers,
            stop=stop,
            provider_label=label,
        )
    log.info("sender stopped", sent=sent)
    return sent


def main(settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    asyncio.run(serve_worker(settings))


def sender_instance(provider_label: str, heartbeat_seconds: int) -> ServiceInstance:
    """The sender process as the service registry shows it."""
    return ServiceInstance(
        service_name="whatsapp-sender",
        service_type="worker",
        version=app_version(),
        capabilities=("whatsapp", provider_label),
        heartbeat_seconds=heartbeat_seconds,
    )

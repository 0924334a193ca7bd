"""The webhook routes, wired to the edge's pool, role settings and metrics."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from psycopg_pool import AsyncConnectionPool
from starlette.routing import Route

from app.settings import Settings
from app.shared.metrics import EdgeMetrics
from app.shared.role_settings import RoleSettings
from app.webhooks.ingest import Ingest
from app.webhooks.meta import MetaWebhook
from app.webhooks.signatures import configured
from app.webhooks.twilio_hook import TwilioWebhook

log = structlog.get_logger("webhooks")


@dataclass(frozen=True)
class Webhooks:
    routes: list[Route]
    # Meta's events, one of `routes`, for the edge to reach without its router
    # (app/edge/hot_routes.py).
    meta_receive: Route


def webhooks(
    settings: Settings,
    pool: AsyncConnectionPool,
    role_settings: RoleSettings,
    metrics: EdgeMetrics,
) -> Webhooks:
    _warn_if_unconfigured(settings)
    ingest = Ingest(settings, pool, role_settings)
    meta = MetaWebhook(settings, ingest, metrics)
    twilio = TwilioWebhook(settings, ingest, metrics)
    receive = Route("/webhooks/whatsapp", meta.receive, methods=["POST"])
    routes = [
        Route("/webhooks/whatsapp", meta.verify, methods=["GET"]),
        receive,
        Route("/webhooks/twilio", twilio.receive, methods=["POST"]),
    ]
    return Webhooks(routes, receive)


def _warn_if_unconfigured(settings: Settings) -> None:
    """Said once at start-up: otherwise the only sign is every provider request refused."""
    for name, secret in (
        ("WHATSAPP_APP_SECRET", settings.whatsapp_app_secret),
        ("WHATSAPP_VERIFY_TOKEN", settings.whatsapp_verify_token),
        ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
    ):
        if configured(secret) is None:
            log.warning("webhook secret not set: its endpoint refuses every request", setting=name)

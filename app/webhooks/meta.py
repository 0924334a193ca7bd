"""`/webhooks/whatsapp`: Meta's Cloud API. GET is the subscription handshake, POST an event.

A POST is answered 200 only after the event is committed; Meta retries anything else. The
signature is checked over the raw bytes before anything is parsed, so unsigned input costs
no more than reading a bounded body and one HMAC. A signed body that is not an event we can
store (not JSON, another object, text Postgres cannot hold) is Meta's, and no retry changes it:
it is kept as a dead letter and answered 200."""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from app.settings import Settings
from app.shared.body import BodyTooLarge, bounded_body
from app.shared.metrics import EdgeMetrics
from app.webhooks.ingest import Ingest, outcome
from app.webhooks.payloads import meta_payload
from app.webhooks.rejection import Rejected
from app.webhooks.signatures import configured, meta_signature_valid, meta_token_valid

PROVIDER = "meta"
log = structlog.get_logger("webhooks.meta")


class MetaWebhook:
    def __init__(self, settings: Settings, ingest: Ingest, metrics: EdgeMetrics) -> None:
        self.app_secret = configured(settings.whatsapp_app_secret)
        self.verify_token = configured(settings.whatsapp_verify_token)
        self.max_body_bytes = settings.webhook_max_body_bytes
        self.ingest = ingest
        self.metrics = metrics

    async def verify(self, request: Request) -> Response:
        """hub.mode=subscribe with our verify token: echo hub.challenge. Anything else: 403."""
        params = request.query_params
        challenge = params.get("hub.challenge")
        if (
            self.verify_token is None
            or params.get("hub.mode") != "subscribe"
            or not meta_token_valid(self.verify_token, params.get("hub.verify_token"))
            or challenge is None
        ):
            self.metrics.count_webhook(PROVIDER, "verify_refused")
            return PlainTextResponse("Forbidden", 403)
        self.metrics.count_webhook(PROVIDER, "verified")
        return PlainTextResponse(challenge)

    async def receive(self, request: Request) -> Response:
        try:
            summary = await self._receive(request)
        except Rejected as rejected:
            self.metrics.count_webhook(PROVIDER, rejected.outcome)
            return rejected.response()
        self.metrics.count_webhook(PROVIDER, outcome(summary))
        return JSONResponse(summary)

    async def _receive(self, request: Request) -> dict[str, object]:
        if self.app_secret is None:
            raise Rejected(401, "unconfigured", "WHATSAPP_APP_SECRET is not set")
        try:
            body = await bounded_body(request, self.max_body_bytes)
        except BodyTooLarge as error:
            raise Rejected(413, "too_large", str(error)) from error
        signature = request.headers.get("x-hub-signature-256")
        if not meta_signature_valid(self.app_secret, body, signature):
            log.warning("webhook signature refused", provider=PROVIDER, present=bool(signature))
            raise Rejected(401, "bad_signature", "Missing or invalid X-Hub-Signature-256")
        try:
            payload = meta_payload(body, request.headers.get("content-type"))
        except Rejected as refused:
            return await self.ingest.dead_letter(request, PROVIDER, body, refused.message)
        # Kept first: a failure after that is a 503, and Meta's retry finds the same letters.
        for item in payload.set_aside:
            await self.ingest.dead_letter(request, PROVIDER, item.payload, item.detail)
        summary = await self.ingest(request, PROVIDER, payload.text)
        if payload.set_aside:
            summary["dead_lettered"] = summary.get("dead_lettered", 0) + len(payload.set_aside)
        return summary

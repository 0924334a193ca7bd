"""`/webhooks/twilio`: Twilio's WhatsApp messages and status callbacks (form-encoded).

Twilio signs the URL it called, and behind a proxy that is not the URL the edge sees: the
signed URL is PUBLIC_BASE_URL plus the request's path and query (the request's own URL when
PUBLIC_BASE_URL is unset). A bad or missing signature is 403, Twilio's own convention."""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import Response

from app.settings import Settings
from app.shared.body import BodyTooLarge, bounded_body
from app.shared.metrics import EdgeMetrics
from app.webhooks.ingest import Ingest, outcome
from app.webhooks.payloads import twilio_fields, twilio_payload
from app.webhooks.rejection import Rejected
from app.webhooks.signatures import configured, twilio_signature_valid

PROVIDER = "twilio"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
log = structlog.get_logger("webhooks.twilio")


class TwilioWebhook:
    def __init__(self, settings: Settings, ingest: Ingest, metrics: EdgeMetrics) -> None:
        self.auth_token = configured(settings.twilio_auth_token)
        self.public_base_url = (settings.public_base_url or "").rstrip("/") or None
        self.max_body_bytes = settings.webhook_max_body_bytes
        self.ingest = ingest
        self.metrics = metrics

    async def receive(self, request: Request) -> Response:
        try:
            summary = await self._receive(request)
        except Rejected as rejected:
            self.metrics.count_webhook(PROVIDER, rejected.outcome)
            return rejected.response()
        self.metrics.count_webhook(PROVIDER, outcome(summary))
        # Empty TwiML: stored, and nothing to reply from here (replies are queued and sent).
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def _receive(self, request: Request) -> dict[str, object]:
        if self.auth_token is None:
            raise Rejected(403, "unconfigured", "TWILIO_AUTH_TOKEN is not set")
        try:
            body = await bounded_body(request, self.max_body_bytes)
        except BodyTooLarge as error:
            raise Rejected(413, "too_large", str(error)) from error
        # The signature covers the parsed fields, so the form is parsed first.
        fields = twilio_fields(body, request.headers.get("content-type"))
        signature = request.headers.get("x-twilio-signature")
        if not twilio_signature_valid(
            self.auth_token,
            self.signed_url(request),
            fields,
            signature,
            request.headers.get("x-twilio-webhooks-signature-settings"),
        ):
            log.warning("webhook signature refused", provider=PROVIDER, present=bool(signature))
            raise Rejected(403, "bad_signature", "Missing or invalid X-Twilio-Signature")
        # Signed, so Twilio's: what cannot be passed on is kept, not refused (see meta.py).
        try:
            payload = twilio_payload(fields)
        except Rejected as refused:
            return await self.ingest.dead_letter(request, PROVIDER, body, refused.message)
        return await self.ingest(request, PROVIDER, payload)

    def signed_url(self, request: Request) -> str:
        if self.public_base_url is None:
            return str(request.url)
        query = request.url.query
        return self.public_base_url + request.url.path + (f"?{query}" if query else "")

"""The two ways out: Meta's WhatsApp Cloud API and Twilio's Messages API, over httpx.

A provider turns a queue row into one HTTP request and its answer into a `SendResult`. `send`
never raises for what the provider or the network does: every refusal, timeout or garbled
answer is an outcome the worker acts on (see `app.sender.errors`). It takes the worker's
`httpx.AsyncClient`, so connection pooling, limits and timeouts are the worker's to set.
A payload a provider cannot carry fails before any request: nothing to retry, nothing sent."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import httpx

from app.sender.errors import (
    SendResult,
    Unsendable,
    meta_error_result,
    request_error_result,
    sent,
    twilio_error_result,
    unparseable_success,
)
from app.sender.outbound import OutboundMessage

MEDIA_TYPES = frozenset(("image", "audio", "video", "document", "sticker"))
# What Meta's media object takes; `media_type` only names the object, it is not inside it.
MEDIA_FIELDS = ("id", "link", "caption", "filename")
# record_whatsapp_sends' bound on provider_message_id.
MAX_PROVIDER_MESSAGE_ID = 255


class Provider(Protocol):
    name: str  # 'meta' | 'twilio'

    async def send(self, client: httpx.AsyncClient, message: OutboundMessage) -> SendResult:
        """Send one message; never raises for provider or transport errors."""
        ...


# Meta -------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MetaCloudApi:
    """`POST {base_url}/{api_version}/{phone_number_id}/messages` with a bearer token."""

    base_url: str  # https://graph.facebook.com, or the sandbox's URL
    api_version: str = "v21.0"
    phone_number_id: str
    access_token: str = field(repr=False)
    name: str = field(default="meta", init=False)

    # Fixed per provider, so worked out once, not per message. (cached_property writes to the
    # instance's __dict__, which a frozen dataclass without slots has.)
    @cached_property
    def messages_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.api_version}/{self.phone_number_id}/messages"

    @cached_property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    async def send(self, client: httpx.AsyncClient, message: OutboundMessage) -> SendResult:
        try:
            body = meta_request_body(message)
        except Unsendable as unsendable:
            return unsendable.result(self.name)
        try:
            response = await client.post(
                self.messages_url,
                json=body,
                headers=self.headers,
            )
        except (httpx.RequestError, httpx.InvalidURL) as error:
            return request_error_result(self.name, error)
        if not response.is_success:
            return meta_error_result(response)
        wamid = meta_message_id(response)
        return sent(self.name, wamid) if wamid else unparseable_success(self.name, response)


def meta_request_body(message: OutboundMessage) -> dict[str, Any]:
    """The Cloud API's message object: the content under a key named after its type, and the
    queue id as `biz_opaque_callback_data`, which Meta echoes in this message's status
    webhooks (a second way to find the row, should the wamid never have been recorded)."""
    kind, content = _meta_content(message)
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.recipient_digits,
        "type": kind,
        kind: content,
        "biz_opaque_callback_data": str(message.id),
    }


def _meta_content(message: OutboundMessage) -> tuple[str, dict[str, Any]]:
    payload = message.payload
    if message.message_type in ("text", "template", "interactive", "location"):
        return message.message_type, dict(payload)  # already Meta's own object
    if message.message_type == "media":
        media_type = _media_type(payload)
        _require_media_source(payload)
        return media_type, {key: payload[key] for key in MEDIA_FIELDS if key in payload}
    raise Unsendable("unsupported_type", f"Unknown message type {message.message_type!r}")


def meta_message_id(response: httpx.Response) -> str | None:
    """The wamid of `{"messages": [{"id": "wamid..."}], ...}`, or None if the body lacks it."""
    try:
        messages = response.json().get("messages")
        wamid = messages[0]["id"]
    except (ValueError, AttributeError, LookupError, TypeError):
        return None
    return wamid if _storable_id(wamid) else None


# Twilio -----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TwilioMessages:
    """`POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`, a form with HTTP
    basic auth. Twilio's WhatsApp has no free-form interactive messages and no media by id
    (those need Content templates or public URLs): such payloads fail without a request."""

    base_url: str = "https://api.twilio.com"
    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str  # E.164 WhatsApp sender, '+1555...' (or already 'whatsapp:+1555...')
    name: str = field(default="twilio", init=False)

    # Fixed per provider, so worked out once, not per message (see MetaCloudApi).
    @cached_property
    def messages_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    @cached_property
    def auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.account_sid, self.auth_token)

    @cached_property
    def from_address(self) -> str:
        return whatsapp_address(self.from_number)

    async def send(self, client: httpx.AsyncClient, message: OutboundMessage) -> SendResult:
        try:
            form = twilio_form(message, self.from_address)
        except Unsendable as unsendable:
            return unsendable.result(self.name)
        try:
            response = await client.post(
                self.messages_url,
                data=form,
                auth=self.auth,
            )
        except (httpx.RequestError, httpx.InvalidURL) as error:
            return request_error_result(self.name, error)
        if not response.is_success:
            return twilio_error_result(response)
        sid = twilio_message_sid(response)
        return sent(self.name, sid) if sid else unparseable_success(self.name, response)


def twilio_form(message: OutboundMessage, from_address: str) -> dict[str, str]:
    """The Messages API's form fields for this message, addressed on the WhatsApp channel;
    `from_address` is the sender's already (`whatsapp_address(from_number)`)."""
    return {
        "To": whatsapp_address(message.recipient_phone),
        "From": from_address,
        **_twilio_content(message),
    }


def whatsapp_address(phone: str) -> str:
    return phone if phone.startswith("whatsapp:") else f"whatsapp:{phone}"


def _twilio_content(message: OutboundMessage) -> dict[str, str]:
    payload = message.payload
    match message.message_type:
        case "text":
            # preview_url has no Twilio field: Twilio previews the first link by itself.
            return {"Body": str(_field(payload, "body", "text"))}
        case "media":
            return _twilio_media(payload)
        case "location":
            return _twilio_location(payload)
        case "template":
            return _twilio_template(payload)
        case "interactive":
            raise Unsendable(
                "unsupported_by_provider",
                "Twilio sends interactive messages only as Content templates (ContentSid)",
            )
    raise Unsendable("unsupported_type", f"Unknown message type {message.message_type!r}")


def _twilio_media(payload: dict[str, Any]) -> dict[str, str]:
    """Twilio fetches media from a public URL: a Meta media id means nothing to it. The
    caption travels as the Body; a document's filename has no field (Twilio takes the URL's)."""
    _media_type(payload)
    link = payload.get("link")
    if not isinstance(link, str) or not link:
        raise Unsendable(
            "unsupported_by_provider", "Twilio sends media only by link, not by Meta media id"
        )
    form = {"MediaUrl": link}
    if payload.get("caption"):
        form["Body"] = str(payload["caption"])
    return form


def _twilio_location(payload: dict[str, Any]) -> dict[str, str]:
    """A pin is `PersistentAction=geo:lat,lng`; the place's name and address are the text."""
    latitude = _field(payload, "latitude", "location")
    longitude = _field(payload, "longitude", "location")
    label = [str(payload[key]) for key in ("name", "address") if payload.get(key)]
    return {
        # Twilio needs a Body with the pin: the coordinates stand in for an unnamed place.
        "Body": "\n".join(label) or f"{latitude},{longitude}",
        "PersistentAction": f"geo:{latitude},{longitude}",
    }


def _twilio_template(payload: dict[str, Any]) -> dict[str, str]:
    """Twilio sends WhatsApp templates as Content templates: the queue's template payload
    must carry the template's `content_sid` (HX...) and, if it has variables,
    `content_variables` ({"1": "value", ...}); Meta's name/language/components are unused.
    A template without content_sid cannot go through Twilio: it fails without a request."""
    content_sid = payload.get("content_sid")
    if not isinstance(content_sid, str) or not content_sid:
        raise Unsendable(
            "unsupported_by_provider",
            "A template sent through Twilio needs the Content template's content_sid",
        )
    variables = payload.get("content_variables", {})
    return {
        "ContentSid": content_sid,
        "ContentVariables": json.dumps(variables, separators=(",", ":"), ensure_ascii=False),
    }


def twilio_message_sid(response: httpx.Response) -> str | None:
    """The message resource's `sid` (SM... or MM...), or None if the body lacks it."""
    try:
        sid = response.json().get("sid")
    except (ValueError, AttributeError):
        return None
    return sid if _storable_id(sid) else None


def _storable_id(value: object) -> bool:
    """An id record_whatsapp_sends takes (1 to 255 characters): a longer one would make the
    whole batch's record fail, so that answer is unreadable, like one with no id."""
    return isinstance(value, str) and 0 < len(value) <= MAX_PROVIDER_MESSAGE_ID


# Payload checks ---------------------------------------------------------------------------------
# The database validated the payload on enqueue; these only turn a row that slipped through
# into a failed send instead of an exception in the worker's loop.


def _field(payload: dict[str, Any], key: str, kind: str) -> Any:
    if payload.get(key) is None:
        raise Unsendable("invalid_payload", f"The {kind} payload has no {key!r}")
    return payload[key]


def _media_type(payload: dict[str, Any]) -> str:
    media_type = payload.get("media_type")
    if media_type not in MEDIA_TYPES:
        raise Unsendable("invalid_payload", f"Unknown media_type {media_type!r}")
    return str(media_type)


def _require_media_source(payload: dict[str, Any]) -> None:
    if not payload.get("id") and not payload.get("link"):
        raise Unsendable("invalid_payload", "A media payload needs an id or a link")

"""One row of `whatsapp_message_queue` as the sender worker hands it to a provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OutboundMessage:
    """A queued message. The database validated `payload` against `message_type` on enqueue,
    and its shapes are Meta's own objects (text, template, interactive, location), except media:
    `{"media_type": "image"|"audio"|"video"|"document"|"sticker", "id"?|"link"?, "caption"?,
    "filename"?}`, since Meta names the object after the media type."""

    id: int
    recipient_phone: str  # E.164: '+250788123456'
    message_type: str  # 'text' | 'template' | 'media' | 'interactive' | 'location'
    payload: dict[str, Any]

    @property
    def recipient_digits(self) -> str:
        """The number without its '+', as Meta's `to` and `wa_id` write it."""
        return self.recipient_phone.removeprefix("+")

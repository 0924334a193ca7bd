"""Webhook bodies as WhatsApp providers send them, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BUSINESS_NUMBER = {"display_phone_number": "15550001111", "phone_number_id": "PHONE_NUMBER_ID"}


def meta_webhook(
    *,
    contacts: Sequence[dict[str, Any]] = (),
    messages: Sequence[dict[str, Any]] = (),
    statuses: Sequence[dict[str, Any]] = (),
    object_: str = "whatsapp_business_account",
) -> dict[str, Any]:
    """A Meta Cloud API webhook: one entry, one `messages` change to the business number."""
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": BUSINESS_NUMBER}
    for key, items in (("contacts", contacts), ("messages", messages), ("statuses", statuses)):
        if items:
            value[key] = list(items)
    return {
        "object": object_,
        "entry": [{"id": "WABA_ID", "changes": [{"field": "messages", "value": value}]}],
    }


def meta_text(sender: str, wamid: str, timestamp: int, body: str) -> dict[str, Any]:
    """One inbound text message as Meta writes it (timestamp in Unix seconds, as text)."""
    return meta_message(sender, wamid, timestamp, "text", {"body": body})


def meta_message(
    sender: str,
    wamid: str,
    timestamp: int,
    message_type: str,
    content: Any = None,
    **fields: Any,
) -> dict[str, Any]:
    """One inbound message of any type as Meta writes it: the type's own object (`content`)
    under a key named after the type, as Meta nests it, and any other top-level fields
    (context, errors) as given."""
    message: dict[str, Any] = {
        "from": sender,
        "id": wamid,
        "timestamp": str(timestamp),
        "type": message_type,
    }
    if content is not None:
        message[message_type] = content
    return message | fields


def meta_status(
    wamid: str,
    status: str,
    timestamp: int,
    recipient: str,
    errors: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """One status of an outbound message as Meta reports it (sent, delivered, read, failed);
    a failed one carries its errors."""
    reported: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(timestamp),
        "recipient_id": recipient,
    }
    if errors:
        reported["errors"] = list(errors)
    return reported

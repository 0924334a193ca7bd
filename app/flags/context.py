"""OpenFeature's evaluation context in Unleash's terms, as public.feature_flag_details reads it.

The targeting key is the user id. Unleash's standard fields (sessionId, remoteAddress, appName,
environment, currentTime) are taken from the attributes of those names; every other attribute
is a custom property, as Unleash keeps them, with its value as text (Unleash compares text)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from openfeature.evaluation_context import EvaluationContext

STANDARD_FIELDS = ("sessionId", "remoteAddress", "appName", "environment", "currentTime")


def unleash_context(context: EvaluationContext | None) -> tuple[str | None, dict[str, Any]]:
    """The user id and Unleash's context for one evaluation."""
    if context is None:
        return None, {}
    unleash: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for name, value in context.attributes.items():
        if value is None:
            continue
        if name in STANDARD_FIELDS:
            unleash[name] = _text(value)
        elif name != "userId":
            properties[name] = _text(value)
    if properties:
        unleash["properties"] = properties
    user_id = context.targeting_key or _optional_text(context.attributes.get("userId"))
    return user_id, unleash


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)

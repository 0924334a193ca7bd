"""Provider signatures, checked over exactly what the provider signed, in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from pydantic import SecretStr
from twilio.request_validator import RequestValidator, get_signature_algorithm

META_PREFIX = "sha256="


def configured(secret: SecretStr | None) -> str | None:
    """The secret's value, or None when unset or empty: an empty HMAC key is one anybody can
    sign with, so it must read as "not configured", never as a key."""
    value = secret.get_secret_value() if secret is not None else ""
    return value or None


def meta_signature_valid(app_secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex>`, Meta's HMAC-SHA256 of the raw body with the app
    secret. Computed over the bytes as received: re-serialised JSON would differ (Meta escapes
    non-ASCII and slashes, `caf\\u00e9 \\/ ok`)."""
    if header is None:
        return False
    expected = META_PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses str with non-ASCII characters, which a forged
    # header may hold (headers arrive as latin-1). Hex digits may come in either case.
    provided = header.strip().lower().encode("latin-1", "replace")
    return hmac.compare_digest(provided, expected.encode())


def meta_token_valid(verify_token: str, provided: str | None) -> bool:
    if provided is None:
        return False
    return hmac.compare_digest(
        provided.encode("utf-8", "surrogateescape"), verify_token.encode("utf-8")
    )


def twilio_signature_valid(
    auth_token: str,
    url: str,
    params: Mapping[str, Sequence[str]],
    signature: str | None,
    signature_settings: str | None,
) -> bool:
    """Twilio signs the URL it called plus every form field (all values of a repeated one).
    The algorithm is HMAC-SHA1 unless X-Twilio-Webhooks-Signature-Settings names another;
    twilio's validator refuses algorithms it does not know."""
    if signature is None:
        return False
    algorithm = get_signature_algorithm(signature_settings)
    return bool(
        RequestValidator(auth_token).validate(url, _MultiValues(params), signature, algorithm)
    )


class _MultiValues(dict[str, Sequence[str]]):
    """What twilio's validator reads a repeated field through (`getlist`, as Django's)."""

    def getlist(self, key: str) -> list[str]:
        return list(self[key])

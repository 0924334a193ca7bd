"""What a send came to, and what the queue row should do about it.

Five outcomes, each a different action for the worker:

- `sent`: the provider accepted the message; `provider_message_id` (Meta's wamid, Twilio's SM
  sid) is what its status webhooks will name.
- `retry`: nothing was sent, or the provider refused for a reason that passes (rate limits,
  its own outage): try again later, after `retry_after_s` when the provider said so.
- `failed`: this message can never be sent as it is (bad recipient, closed 24-hour window,
  invalid template or media): dead-letter it, retrying would only repeat the refusal.
- `ambiguous`: the request may have reached the provider and we cannot tell whether it sent
  the message. Meta's Cloud API takes no idempotency key (and Twilio's Messages API is called
  without one), so a retry could deliver it twice: the worker must not resend blindly, it
  parks the row until a status webhook or a person settles it.
- `stop`: every further send would fail the same way (token expired, account locked or
  blocked, sender not enabled): stop the line rather than burn the queue into dead letters.

Classification order for an HTTP error answer: a known provider error code decides first (a
5xx carrying a permanent code is still permanent), then the HTTP status: 401 stops the line,
429 and 5xx are retried, any other status is a permanent failure of this message.

Transport failures are split by whether the request can have left this process:
`httpx.ConnectError`, `ConnectTimeout`, `PoolTimeout` and `ProxyError` happen before a byte of
the request reaches the provider, so a retry is safe. `ReadTimeout`, `ReadError`,
`RemoteProtocolError`, `WriteTimeout`, `WriteError` and anything else after the connection was
made may come after the provider received the request (a write that timed out may have
flushed most of the body; a read that timed out came after the whole body was written), so
they are ambiguous. A 2xx whose body does not name the message id is ambiguous for the same
reason: the provider accepted something, and we do not know what."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Literal

import httpx

Outcome = Literal["sent", "retry", "failed", "ambiguous", "stop"]


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider: str  # 'meta' | 'twilio'
    provider_message_id: str | None = None
    error_code: str | None = None  # the provider's code, 'http_<status>', or a transport error
    error: str | None = None
    retry_after_s: float | None = None  # from the answer's Retry-After header, when it had one


def sent(provider: str, provider_message_id: str) -> SendResult:
    return SendResult("sent", provider, provider_message_id)


class Unsendable(Exception):
    """A payload this provider cannot carry: the message fails without a request."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def result(self, provider: str) -> SendResult:
        return SendResult("failed", provider, error_code=self.code, error=self.reason)


# Meta Cloud API error codes -----------------------------------------------------------------
# https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes

META_RETRY: Mapping[int, str] = {
    1: "API Unknown: invalid request or possible server error",
    2: "API Service: temporary, downtime or overload",
    4: "API Too Many Calls: the app's rate limit",
    80007: "Rate limit issues: the WhatsApp Business Account's rate limit",
    130429: "Rate limit hit: the phone number's throughput (messages per second)",
    131000: "Something went wrong: unknown error on Meta's side",
    131016: "Service unavailable: temporarily overloaded or down",
    131056: "Pair rate limit hit: too many messages to this recipient in a short time",
    133004: "Server temporarily unavailable",
}
META_FAILED: Mapping[int, str] = {
    100: "Invalid parameter: the request has an unsupported or misspelled parameter",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131026: "Message undeliverable: the recipient is not on WhatsApp, or has an old app",
    131047: "Re-engagement message: more than 24 hours since the recipient last replied",
    131049: "Not delivered to maintain healthy ecosystem engagement (marketing limits)",
    131050: "The recipient stopped marketing messages from this business",
    131051: "Unsupported message type",
    131052: "Media download error: the recipient's media could not be downloaded",
    131053: "Media upload error: the media could not be uploaded (type, size or link)",
    132000: "Template parameter count mismatch",
    132001: "Template does not exist in this language, or is not approved",
}
META_STOP: Mapping[int, str] = {
    10: "Permission denied: the app lacks the permission, or the number is not allowed",
    190: "Access token has expired or is invalid",
    368: "Temporarily blocked for policy violations",
    131005: "Access denied: the permission was not granted or was removed",
    131031: "Business account has been locked",
    # Not in the brief's list, and as final: every message from this number fails alike.
    131042: "Business eligibility payment issue (payment method)",
    133010: "The business phone number is not registered on the Cloud API",
}
META_PERMISSION_CODES = range(200, 300)  # 200-299: API permission not granted or removed
# Code 100 with subcode 33: "Object with ID ... does not exist, cannot be loaded due to missing
# permissions": the phone number id or its token is wrong, so every send would fail.
META_UNKNOWN_OBJECT_SUBCODE = 33


def classify_meta(http_status: int, code: int | None, subcode: int | None = None) -> Outcome:
    """The outcome of a Meta Cloud API error answer (see the module docstring for the order)."""
    if code is not None:
        if code in META_STOP or code in META_PERMISSION_CODES:
            return "stop"
        if code == 100 and subcode == META_UNKNOWN_OBJECT_SUBCODE:
            return "stop"
        if code in META_FAILED:
            return "failed"
        if code in META_RETRY:
            return "retry"
    return classify_http_status(http_status)


# Twilio error codes ---------------------------------------------------------------------------
# https://www.twilio.com/docs/api/errors

TWILIO_RETRY: Mapping[int, str] = {
    20429: "Too Many Requests: the account's API concurrency limit",
    63018: "Rate limit exceeded for the WhatsApp sender",
    63038: "The account exceeded its daily message limit",
}
TWILIO_FAILED: Mapping[int, str] = {
    20404: "Resource not found",
    21211: "Invalid 'To' phone number",
    21408: "Permission to send to this region is not enabled",
    21610: "The recipient unsubscribed (replied STOP)",
    21614: "'To' is not a valid mobile number",
    63003: "The channel could not find the 'To' address",
    63016: "Freeform message outside the 24-hour window: use a template",
    63024: "Invalid message recipient",
}
TWILIO_STOP: Mapping[int, str] = {
    20003: "Authentication error: wrong Account SID or auth token",
    21606: "'From' is not a valid message-capable sender for this account",
    63007: "No WhatsApp channel (sender) found for the 'From' address",
}


def classify_twilio(http_status: int, code: int | None) -> Outcome:
    """The outcome of a Twilio Messages API error answer (same order as Meta's)."""
    if code is not None:
        if code in TWILIO_STOP:
            return "stop"
        if code in TWILIO_FAILED:
            return "failed"
        if code in TWILIO_RETRY:
            return "retry"
    return classify_http_status(http_status)


def classify_http_status(http_status: int) -> Outcome:
    """An error answer whose code is unknown or absent (a proxy's 502 has no provider body)."""
    if http_status == 401:
        return "stop"  # the credentials are refused: every send would be
    if http_status == 429 or http_status >= 500:
        return "retry"
    if http_status < 400:
        return "stop"  # a redirect: the base URL is not the API's, every send would get it
    return "failed"


# Answers ----------------------------------------------------------------------------------------


def meta_error_result(response: httpx.Response) -> SendResult:
    """A non-2xx answer of the Cloud API: `{"error": {"message", "type", "code",
    "error_subcode"?, "error_data"?: {"details"}, "fbtrace_id"}}`."""
    error = _json_object(response).get("error")
    error = error if isinstance(error, dict) else {}
    code = _int_or_none(error.get("code"))
    subcode = _int_or_none(error.get("error_subcode"))
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    message = str(error.get("message") or _meaning(code, META_RETRY, META_FAILED, META_STOP))
    parts = [
        message,
        f"subcode {subcode}" if subcode is not None else None,
        details if isinstance(details, str) and details != message else None,
        f"fbtrace_id {error['fbtrace_id']}" if error.get("fbtrace_id") else None,
    ]
    return SendResult(
        classify_meta(response.status_code, code, subcode),
        "meta",
        error_code=str(code) if code is not None else f"http_{response.status_code}",
        error="; ".join(part for part in parts if part),
        retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
    )


def twilio_error_result(response: httpx.Response) -> SendResult:
    """A non-2xx answer of Twilio: `{"code", "message", "more_info", "status"}`."""
    body = _json_object(response)
    code = _int_or_none(body.get("code"))
    message = body.get("message") or _meaning(code, TWILIO_RETRY, TWILIO_FAILED, TWILIO_STOP)
    return SendResult(
        classify_twilio(response.status_code, code),
        "twilio",
        error_code=str(code) if code is not None else f"http_{response.status_code}",
        error=str(message),
        retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
    )


def unparseable_success(provider: str, response: httpx.Response) -> SendResult:
    """A 2xx that names no message: the provider took the request, so it may have sent it."""
    return SendResult(
        "ambiguous",
        provider,
        error_code="unparseable_response",
        error=f"HTTP {response.status_code} without a message id: {response.text[:200]!r}",
    )


# Transport --------------------------------------------------------------------------------------

# Raised before any byte of the request reached the provider.
NEVER_SENT: tuple[type[httpx.RequestError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
)


def classify_request_error(error: httpx.RequestError | httpx.InvalidURL) -> Outcome:
    """See the module docstring: retry only what provably never left."""
    if isinstance(error, NEVER_SENT):
        return "retry"
    if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "stop"  # the configured base URL is unusable: nothing can be sent
    return "ambiguous"


def request_error_result(provider: str, error: httpx.RequestError | httpx.InvalidURL) -> SendResult:
    return SendResult(
        classify_request_error(error),
        provider,
        error_code=type(error).__name__,
        error=str(error) or type(error).__name__,
    )


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: either delay-seconds or an HTTP date (RFC 9110 section 10.2.3).
    A date in the past is 0; an unreadable value is ignored (None), as if absent."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # '-0000': UTC, origin unknown (RFC 5322 section 3.3)
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:  # not JSON, or not UTF-8: a proxy's HTML page
        return {}
    return body if isinstance(body, dict) else {}


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _meaning(code: int | None, *tables: Mapping[int, str]) -> str:
    for table in tables:
        if code is not None and code in table:
            return table[code]
    return "no error message in the answer"

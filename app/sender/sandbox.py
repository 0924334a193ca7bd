"""A local stand-in for Meta's Cloud API and Twilio's Messages API.

It answers the two send endpoints as the providers do, with their success and error shapes,
checks the credentials it was created with (401 with Meta's code 190 / Twilio's 20003 when they
are wrong), and records every request. Tests script it (canned errors for a recipient, slow
answers) through `SandboxState`; the local stack can run it when no real provider is
configured. It is built for throughput benchmarks too: nothing sleeps or logs per request
unless asked to.

Routes (one app serves both providers):
- `POST /{api_version}/{phone_number_id}/messages`: Meta, JSON, `Authorization: Bearer`.
- `POST /2010-04-01/Accounts/{account_sid}/Messages.json`: Twilio, form, HTTP basic auth."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import parse_qsl

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = structlog.get_logger("sender.sandbox")

TWILIO_ADDRESS = re.compile(r"whatsapp:\+[1-9]\d{6,14}")


@dataclass(frozen=True)
class RecordedRequest:
    provider: str  # 'meta' | 'twilio'
    path: str
    headers: dict[str, str]  # lower-case names
    json: dict[str, Any] | None  # Meta's body
    form: dict[str, str] | None  # Twilio's fields (the last value of a repeated one)
    received_at: float  # time.monotonic()
    recipient: str  # digits, no '+': Meta's `to`, Twilio's `To` without 'whatsapp:+'


class ErrorAnswer(TypedDict):
    """A canned error, ready for `SandboxState.fail(recipient, **answer)`."""

    status: int
    body: dict[str, Any]


def meta_error(
    code: int,
    message: str,
    http_status: int = 400,
    subcode: int | None = None,
    *,
    details: str | None = None,
) -> ErrorAnswer:
    """A Cloud API error answer, as Graph writes them (`details` defaults to the message)."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["error_data"] = {"messaging_product": "whatsapp", "details": details or message}
    error["fbtrace_id"] = secrets.token_urlsafe(16)
    return {"status": http_status, "body": {"error": error}}


def twilio_error(code: int, message: str, http_status: int = 400) -> ErrorAnswer:
    """A Twilio REST error answer."""
    return {
        "status": http_status,
        "body": {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": http_status,
        },
    }


# What each provider answers to refused credentials.
META_REFUSAL = meta_error(190, "Invalid OAuth access token - Cannot parse access token", 401)
TWILIO_REFUSAL = twilio_error(20003, "Authenticate", 401)


def recipient_key(address: str | None) -> str:
    """'whatsapp:+250788123456', '+250788123456' and '250788123456' are one recipient."""
    return (address or "").removeprefix("whatsapp:").removeprefix("+")


@dataclass
class _Canned:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    remaining: int


@dataclass
class SandboxState:
    """The sandbox's credentials, its record of requests and its script. Thread-safe: the app
    runs on one event loop, tests script and read it from theirs."""

    access_token: str = field(repr=False)
    twilio_sid: str
    twilio_token: str = field(repr=False)
    max_recorded: int | None = None  # a long-running sandbox keeps only the latest requests
    log_sends: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._recorded: deque[RecordedRequest] = deque(maxlen=self.max_recorded)
        self._canned: dict[str | None, deque[_Canned]] = {}
        self._delays: dict[str | None, float] = {}
        self._in_flight: dict[str, int] = {}
        self._max_in_flight: dict[str, int] = {}
        # Compared as bytes: compare_digest refuses non-ASCII str, and a header can be anything.
        self._meta_authorization = f"Bearer {self.access_token}".encode()
        credentials = f"{self.twilio_sid}:{self.twilio_token}".encode()
        self._twilio_authorization = b"Basic " + base64.b64encode(credentials)
        # Unique ids without a random draw per message: a per-sandbox prefix and a counter.
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(8).upper()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # What tests read -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._recorded)

    def max_in_flight_per_recipient(self) -> dict[str, int]:
        """For each recipient, the most requests it ever had in flight at once (from the
        request's arrival to its answer, delays included)."""
        with self._lock:
            return dict(self._max_in_flight)

    # What tests script -----------------------------------------------------------------------

    def fail(
        self,
        recipient: str | None,
        *,
        status: int,
        body: dict[str, Any],
        times: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests to `recipient` (None: to anyone) with this, after
        any answers queued before it; a recipient's own answers come before anyone's. Meant
        for errors (see meta_error and twilio_error), but any status and body will do."""
        canned = _Canned(status, body, dict(headers or {}), times)
        with self._lock:
            self._canned.setdefault(_script_key(recipient), deque()).append(canned)

    def delay(self, seconds: float, recipient: str | None = None) -> None:
        """Answer every request to `recipient` (None: to anyone) `seconds` late, until set
        again; 0 ends it. A recipient's own delay overrides anyone's."""
        with self._lock:
            if seconds > 0:
                self._delays[_script_key(recipient)] = seconds
            else:
                self._delays.pop(_script_key(recipient), None)

    def reset(self) -> None:
        """Forget the requests, the script and the concurrency record, once the requests
        still in flight (a previous test's delayed ones, released now) have been answered, so
        they count in no later record. Call it from outside the sandbox's event loop."""
        self.release_delayed()
        deadline = time.monotonic() + 5
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        with self._lock:
            self._recorded.clear()
            self._canned.clear()
            self._delays.clear()
            self._max_in_flight.clear()

    def release_delayed(self) -> None:
        """End every delay, including those of requests already waiting (so that a server
        can shut down now, or a test start without the last one's stragglers)."""
        with self._lock:
            self._delays.clear()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing waits
                self._loop.call_soon_threadsafe(self._wake_sleepers)

    # What the app uses -----------------------------------------------------------------------

    def authorizes_meta(self, authorization: str) -> bool:
        return hmac.compare_digest(authorization.encode(), self._meta_authorization)

    def authorizes_twilio(self, account_sid: str, authorization: str) -> bool:
        """Basic auth with this account's sid and token, on this account's URL."""
        return account_sid == self.twilio_sid and hmac.compare_digest(
            authorization.encode(), self._twilio_authorization
        )

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wake = asyncio.Event()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._recorded.append(request)

    def _take_canned(self, recipient: str) -> _Canned | None:
        if not self._canned:  # the benchmark's path: no lock when nothing is scripted
            return None
        with self._lock:
            for key in (recipient, None):
                queue = self._canned.get(key)
                if queue:
                    canned = queue[0]
                    canned.remaining -= 1
                    if canned.remaining <= 0:
                        queue.popleft()
                    return canned
        return None

    def _delay_for(self, recipient: str) -> float:
        if not self._delays:
            return 0.0
        with self._lock:
            return self._delays.get(recipient, self._delays.get(None, 0.0))

    def _wake_sleepers(self) -> None:
        """On the loop: wake who waits now; later delays wait on a fresh event."""
        if self._wake is not None:
            self._wake.set()
        self._wake = asyncio.Event()

    async def _pause(self, seconds: float) -> None:
        if self._wake is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _enter(self, recipient: str) -> None:
        with self._lock:
            count = self._in_flight.get(recipient, 0) + 1
            self._in_flight[recipient] = count
            if count > self._max_in_flight.get(recipient, 0):
                self._max_in_flight[recipient] = count

    def _leave(self, recipient: str) -> None:
        with self._lock:
            count = self._in_flight[recipient] - 1
            if count:
                self._in_flight[recipient] = count
            else:
                del self._in_flight[recipient]

    def _next_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):016X}"


def _script_key(recipient: str | None) -> str | None:
    return None if recipient is None else recipient_key(recipient)


# The app --------------------------------------------------------------------------------------


def create_sandbox_app(
    access_token: str,
    twilio_sid: str,
    twilio_token: str,
    *,
    max_recorded: int | None = None,
    log_sends: bool = False,
) -> tuple[Starlette, SandboxState]:
    """The sandbox app and its state. `log_sends` logs each accepted send (for a local stack,
    where the log is the only place a sent message shows); `max_recorded` bounds the record."""
    state = SandboxState(access_token, twilio_sid, twilio_token, max_recorded, log_sends)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state._bind(asyncio.get_running_loop())
        yield

    async def meta_messages(request: Request) -> Response:
        return await _meta_messages(state, request)

    async def twilio_messages(request: Request) -> Response:
        return await _twilio_messages(state, request)

    routes = [
        Route("/{api_version}/{phone_number_id}/messages", meta_messages, methods=["POST"]),
        Route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json", twilio_messages, methods=["POST"]
        ),
    ]
    return Starlette(routes=routes, lifespan=lifespan), state


async def _meta_messages(state: SandboxState, request: Request) -> Response:
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    message = body if isinstance(body, dict) else {}
    recorded = RecordedRequest(
        "meta",
        request.scope["path"],
        dict(request.headers),
        message if isinstance(body, dict) else None,
        None,
        time.monotonic(),
        recipient_key(str(message.get("to") or "")),
    )

    def accept() -> Response:
        if invalid := _meta_invalid(message):
            return _json(meta_error(100, invalid))
        return _meta_accepted(state, message, recorded.recipient)

    return await _answer(
        state,
        recorded,
        authorized=state.authorizes_meta(request.headers.get("authorization", "")),
        refusal=META_REFUSAL,
        accept=accept,
    )


async def _answer(
    state: SandboxState,
    recorded: RecordedRequest,
    *,
    authorized: bool,
    refusal: ErrorAnswer,
    accept: Callable[[], Response],
) -> Response:
    """What both providers do with a request, in order: record it, count it in flight, wait
    out a scripted delay, refuse bad credentials, give a scripted answer, or accept it."""
    state._record(recorded)
    state._enter(recorded.recipient)
    try:
        if delay := state._delay_for(recorded.recipient):
            await state._pause(delay)
        if not authorized:
            return _json(refusal)
        if canned := state._take_canned(recorded.recipient):
            return JSONResponse(canned.body, canned.status, canned.headers)
        return accept()
    finally:
        state._leave(recorded.recipient)


def _meta_invalid(message: dict[str, Any]) -> str | None:
    """The checks Graph makes first, enough to catch a malformed request in tests."""
    if message.get("messaging_product") != "whatsapp":
        return "(#100) The parameter messaging_product is required."
    if not str(message.get("to") or "").isdigit():
        return "(#100) Invalid parameter: to"
    kind = message.get("type")
    if not isinstance(kind, str) or not isinstance(message.get(kind), dict):
        return f"(#100) Param {kind} is required"
    return None


def _meta_accepted(state: SandboxState, message: dict[str, Any], recipient: str) -> Response:
    raw = f"{recipient}{state._next_id()}".encode()
    wamid = "wamid." + base64.b64encode(raw).decode().rstrip("=")
    sent: dict[str, Any] = {"id": wamid}
    if message["type"] == "template":
        sent["message_status"] = "accepted"  # Graph adds it to template sends only
    if state.log_sends:
        log.info(
            "sandbox accepted send", provider="meta", to=recipient, type=message["type"], id=wamid
        )
    return JSONResponse(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": message["to"], "wa_id": recipient}],
            "messages": [sent],
        }
    )


async def _twilio_messages(state: SandboxState, request: Request) -> Response:
    try:
        form = dict(parse_qsl((await request.body()).decode("ascii"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        form = {}
    recorded = RecordedRequest(
        "twilio",
        request.scope["path"],
        dict(request.headers),
        None,
        form,
        time.monotonic(),
        recipient_key(form.get("To")),
    )

    def accept() -> Response:
        if invalid := _twilio_invalid(form):
            return _json(invalid)
        return _twilio_accepted(state, form)

    return await _answer(
        state,
        recorded,
        authorized=state.authorizes_twilio(
            request.path_params["account_sid"], request.headers.get("authorization", "")
        ),
        refusal=TWILIO_REFUSAL,
        accept=accept,
    )


def _twilio_invalid(form: dict[str, str]) -> ErrorAnswer | None:
    if not TWILIO_ADDRESS.fullmatch(form.get("To", "")):
        return twilio_error(21211, f"Invalid 'To' Phone Number: {form.get('To', '')}")
    if not TWILIO_ADDRESS.fullmatch(form.get("From", "")):
        return twilio_error(21606, "The 'From' phone number is not a valid WhatsApp sender")
    if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
        return twilio_error(21619, "A text message body or media url must be specified.")
    return None


def _twilio_accepted(state: SandboxState, form: dict[str, str]) -> Response:
    sid = f"SM{state._next_id().lower()}"
    now = email.utils.formatdate(usegmt=True)
    if state.log_sends:
        log.info("sandbox accepted send", provider="twilio", to=form["To"], id=sid)
    return JSONResponse(
        {
            "sid": sid,
            "account_sid": state.twilio_sid,
            "to": form["To"],
            "from": form["From"],
            "body": form.get("Body", ""),
            "status": "queued",
            "num_media": "1" if form.get("MediaUrl") else "0",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "error_code": None,
            "error_message": None,
            "price": None,
            "uri": f"/2010-04-01/Accounts/{state.twilio_sid}/Messages/{sid}.json",
        },
        status_code=201,
    )


def _json(answer: ErrorAnswer) -> Response:
    return JSONResponse(answer["body"], answer["status"])

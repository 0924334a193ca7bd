"""The provider sandbox (app.sender.sandbox) on a loopback port, in a thread, for tests and
benchmarks: both Meta's and Twilio's send endpoints at one URL, recorded and scriptable.

    with fake_provider() as fake:
        fake.fail("250788123456", **fake.meta_error(131026, "Message undeliverable"))
        result = await fake.meta().send(client, message)
        assert fake.requests[-1].json["to"] == "250788123456"
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from app.sender.providers import MetaCloudApi, TwilioMessages
from app.sender.sandbox import (
    ErrorAnswer,
    RecordedRequest,
    SandboxState,
    create_sandbox_app,
    meta_error,
    twilio_error,
)
from tests.support.loopback import serve_on_loopback

META_ACCESS_TOKEN = "test-meta-access-token"
META_PHONE_NUMBER_ID = "106540352242922"
TWILIO_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TWILIO_API_TOKEN = "test-twilio-api-token"
TWILIO_FROM = "+15550001111"


@dataclass(frozen=True)
class FakeProvider:
    url: str
    state: SandboxState

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        return self.state.requests

    def fail(
        self,
        recipient: str | None,
        *,
        status: int,
        body: dict[str, Any],
        times: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests to `recipient` (digits; None: anyone) with this
        status and body (and headers, e.g. Retry-After), before any default answer."""
        self.state.fail(recipient, status=status, body=body, times=times, headers=headers)

    def delay(self, seconds: float, recipient: str | None = None) -> None:
        """Answer `seconds` late from now on (0 ends it), for one recipient or anyone."""
        self.state.delay(seconds, recipient)

    @staticmethod
    def meta_error(
        code: int,
        message: str,
        http_status: int = 400,
        subcode: int | None = None,
        *,
        details: str | None = None,
    ) -> ErrorAnswer:
        return meta_error(code, message, http_status, subcode, details=details)

    @staticmethod
    def twilio_error(code: int, message: str, http_status: int = 400) -> ErrorAnswer:
        return twilio_error(code, message, http_status)

    def max_in_flight_per_recipient(self) -> dict[str, int]:
        return self.state.max_in_flight_per_recipient()

    def reset(self) -> None:
        self.state.reset()

    def meta(self, **overrides: Any) -> MetaCloudApi:
        """A Cloud API provider pointed at this fake, with the credentials it accepts."""
        settings: dict[str, Any] = {
            "base_url": self.url,
            "phone_number_id": META_PHONE_NUMBER_ID,
            "access_token": self.state.access_token,
        }
        return MetaCloudApi(**(settings | overrides))

    def twilio(self, **overrides: Any) -> TwilioMessages:
        """A Twilio provider pointed at this fake, with the credentials it accepts."""
        settings: dict[str, Any] = {
            "base_url": self.url,
            "account_sid": self.state.twilio_sid,
            "auth_token": self.state.twilio_token,
            "from_number": TWILIO_FROM,
        }
        return TwilioMessages(**(settings | overrides))


@contextmanager
def fake_provider(
    *,
    access_token: str = META_ACCESS_TOKEN,
    twilio_sid: str = TWILIO_ACCOUNT_SID,
    twilio_token: str = TWILIO_API_TOKEN,
) -> Iterator[FakeProvider]:
    """The sandbox served by uvicorn on 127.0.0.1 (an ephemeral port) until the block ends."""
    app, state = create_sandbox_app(access_token, twilio_sid, twilio_token)
    # A deep backlog: a benchmark opens hundreds of connections at once.
    with serve_on_loopback(app, "fake provider", backlog=4096) as url:
        try:
            yield FakeProvider(url, state)
        finally:
            # Requests still sleeping on a scripted delay would hold the shutdown until they end.
            state.release_delayed()

"""The supabase Python client, as services use it, over an httpx client that keeps every raw
response and is closed after: a test sees what the client made of a response and the status
and headers it came with."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from postgrest import APIError
from supabase import Client, ClientOptions, create_client


class RecordingClient:
    """The real supabase client, over an httpx client that keeps every raw response: a test sees
    what the client made of a response, and the status and headers it came with."""

    def __init__(self, url: str, key: str, headers: dict[str, str] | None = None) -> None:
        self.responses: list[httpx.Response] = []
        self.http = httpx.Client(timeout=30, event_hooks={"response": [self.responses.append]})
        options = ClientOptions(httpx_client=self.http, postgrest_client_retry=False)
        options.headers.update(headers or {})  # e.g. a user's Authorization beside the anon key
        self.supabase: Client = create_client(url, key, options)

    @property
    def last(self) -> httpx.Response:
        return self.responses[-1]

    def rpc(self, fn: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.supabase.rpc(fn, params or {}, **kwargs)

    def error(self, builder: Any) -> tuple[int, dict[str, Any]]:
        """Execute a call that must fail: the HTTP status and the error as APIError has it."""
        with pytest.raises(APIError) as raised:
            builder.execute()
        return self.last.status_code, raised.value.json()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RecordingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

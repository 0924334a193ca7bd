"""A webhook request refused: its status, the outcome label it is counted under, the reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.responses import JSONResponse, Response


@dataclass
class Rejected(Exception):
    status: int
    outcome: str  # a metric label: a small fixed set, never text from the request
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        return JSONResponse({"error": self.message}, self.status, dict(self.headers))

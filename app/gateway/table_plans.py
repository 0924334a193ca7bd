"""The parsed request and SQL text of recent table reads, by everything they are made from: the
same read (a client polling, a page of a list) is parsed and composed once.

Only reads are kept: a write's text holds its body. The schema cache's generation is part of
every key, so a reload (a new column, a new foreign key) leaves the old texts unreachable."""

from __future__ import annotations

from starlette.requests import Request

from app.gateway.table_request import TableRequest

CAPACITY = 2048  # emptied when full: a client sending only new queries cannot make it grow

PlanKey = tuple[object, ...]


class ReadPlans:
    def __init__(self) -> None:
        self._plans: dict[PlanKey, tuple[TableRequest, str]] = {}

    @staticmethod
    def key(request: Request, schema: str, generation: int) -> PlanKey | None:
        """None for a request that is not a read."""
        if request.method not in ("GET", "HEAD"):
            return None
        headers = request.headers
        return (
            generation,
            schema,
            request.method,
            request.path_params["table"],
            request.url.query,
            tuple(headers.getlist("prefer")),
            headers.get("range"),
            headers.get("accept"),
        )

    def get(self, key: PlanKey | None) -> tuple[TableRequest, str] | None:
        return None if key is None else self._plans.get(key)

    def put(self, key: PlanKey | None, plan: tuple[TableRequest, str]) -> None:
        if key is None:
            return
        if len(self._plans) >= CAPACITY:
            self._plans.clear()
        self._plans[key] = plan

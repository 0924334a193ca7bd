"""Prometheus metrics for the edge, in a registry of the app's own (tests build many apps)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "edge_http_requests_total",
            "HTTP requests served, by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "edge_http_request_duration_seconds",
            "Time from request to the last byte of the response.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.webhooks = Counter(
            "edge_webhook_requests_total",
            "Webhook requests, by provider and outcome (accepted, bad_signature, unavailable...).",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.client_disconnects = Counter(
            "edge_client_disconnects_total",
            "Requests whose client hung up before the edge had read them, by route.",
            ["route"],
            registry=self.registry,
        )
        self.connections_closed = Counter(
            "edge_connections_closed_total",
            "Connections the edge closed itself, by reason (head_too_large, head_timeout, "
            "body_timeout, idle_timeout, shed).",
            ["reason"],
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._webhook_children: dict[tuple[str, str], Counter] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            # labels() takes a lock and validates on every call; the label sets are few.
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_webhook(self, provider: str, outcome: str) -> None:
        child = self._webhook_children.get((provider, outcome))
        if child is None:
            child = self._webhook_children[(provider, outcome)] = self.webhooks.labels(
                provider, outcome
            )
        child.inc()

    def count_client_disconnect(self, route: str) -> None:
        self.client_disconnects.labels(route).inc()

    def count_connection_closed(self, reason: str) -> None:
        self.connections_closed.labels(reason).inc()

    def watch_pool(self, stats: Callable[[], dict[str, int]]) -> None:
        self.registry.register(_PoolCollector(stats))

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE)


class _PoolCollector(Collector):
    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.stats()
        gauge = GaugeMetricFamily(
            "edge_db_pool_connections", "Database pool connections, by state.", labels=["state"]
        )
        gauge.add_metric(["open"], stats.get("pool_size", 0))
        gauge.add_metric(["idle"], stats.get("pool_available", 0))
        gauge.add_metric(["waiting_requests"], stats.get("requests_waiting", 0))
        yield gauge

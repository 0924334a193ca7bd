"""The edge: a Starlette app with the probes, the metrics, the RPC gateway and the webhooks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Route

from app.db.sql_files import SqlSources
from app.edge.hot_routes import HotRoutes
from app.edge.pool import edge_pool
from app.edge.probes import Readiness, health
from app.gateway.catalog import Catalog
from app.gateway.openapi_route import OpenApiRoot
from app.gateway.reload_listener import listen_for_reloads
from app.gateway.route import RpcGateway
from app.gateway.table_route import TableGateway
from app.gateway.unknown_path import unknown_path
from app.keys import API_ROLES
from app.registry.instance import ServiceInstance, app_version, registered
from app.settings import Settings
from app.shared.metrics import EdgeMetrics
from app.shared.request_context import RequestContext
from app.webhooks.routes import webhooks

# Every method reaches the API's handlers, which refuse what they do not serve in PostgREST's JSON.
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


def create_app(settings: Settings, sources: SqlSources | None = None) -> Starlette:
    pool = edge_pool(settings)
    catalog = Catalog(settings.api_schemas, API_ROLES, settings.api_extra_search_path)
    metrics = EdgeMetrics()
    metrics.watch_pool(pool.get_stats)
    expected_versions = [m.version for m in (sources or SqlSources()).read_migrations()]
    gateway = RpcGateway(settings, pool, catalog)
    tables = TableGateway(settings, pool, catalog)
    openapi = OpenApiRoot(settings, pool, app_version())
    hooks = webhooks(settings, pool, catalog.role_settings, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # wait=False: the edge starts (and /health answers) while the database is still down.
        await pool.open(wait=False)
        listener = asyncio.create_task(
            listen_for_reloads(settings.edge_database_url, pool, catalog)
        )
        try:
            async with contextlib.AsyncExitStack() as stack:
                if settings.service_heartbeat_seconds is not None:
                    instance = edge_instance(settings, settings.service_heartbeat_seconds)
                    await stack.enter_async_context(
                        registered(
                            settings.edge_database_url, instance, lambda: {"pool": pool.get_stats()}
                        )
                    )
                yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await pool.close()

    rpc = Route("/rest/v1/rpc/{function}", gateway.handle, methods=["GET", "HEAD", "POST"])
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/ready", Readiness(pool, expected_versions).check, methods=["GET"]),
            Route("/metrics", metrics.endpoint, methods=["GET"]),
            Route("/rest/v1/", openapi.handle, methods=["GET", "HEAD"]),
            rpc,
            Route("/rest/v1/{table}", tables.handle, methods=ANY_METHOD),
            *hooks.routes,
            # Last: whatever else is asked under /rest/v1 answers in PostgREST's JSON.
            Route("/rest/v1/{path:path}", unknown_path, methods=ANY_METHOD),
        ],
        lifespan=lifespan,
    )
    # Added first, so inside RequestContext: the hot routes keep their request ids and metrics.
    app.add_middleware(HotRoutes, routes=[rpc, hooks.meta_receive])
    app.add_middleware(RequestContext, metrics=metrics)
    app.state.metrics = metrics  # the server counts the connections it closes here
    return app


def edge_instance(settings: Settings, heartbeat_seconds: int) -> ServiceInstance:
    """The edge as the service registry shows it."""
    endpoint = f"http://{settings.edge_host}:{settings.edge_port}"
    return ServiceInstance(
        service_name="edge",
        service_type="api",
        version=app_version(),
        endpoint=endpoint,
        health_check_url=f"{endpoint}/health",
        capabilities=("rpc", "webhooks"),
        heartbeat_seconds=heartbeat_seconds,
    )

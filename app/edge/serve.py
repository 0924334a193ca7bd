"""Serve the edge with uvicorn (uvloop, and httptools under the edge's connection limits)."""

from __future__ import annotations

from typing import Any

import uvicorn
from starlette.applications import Starlette

from app.edge.app import create_app
from app.edge.connections import ConnectionLimits, bounded_protocol, raise_open_file_limit
from app.settings import Settings, load_settings
from app.shared.logs import configure_logging


def serve(settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    raise_open_file_limit()
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.edge_host,
        port=settings.edge_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        **server_options(app, settings),
    )


def server_options(app: Starlette, settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the edge, here and in the tests' loopback edge: the protocol that
    bounds what a client may hold (app/edge/connections.py), counting into the app's metrics."""
    limits = ConnectionLimits.from_settings(settings)
    return {
        "http": bounded_protocol(limits, app.state.metrics.count_connection_closed),
        "timeout_keep_alive": settings.edge_keep_alive_timeout_seconds,
        "ws": "none",  # no route speaks WebSocket: an Upgrade header is an ordinary request
    }

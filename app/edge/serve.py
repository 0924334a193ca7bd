"""Serve the edge with uvicorn (uvloop and httptools when installed)."""

from __future__ import annotations

import uvicorn

from app.edge.app import create_app
from app.edge.logs import configure_logging
from app.settings import Settings, load_settings


def serve(settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.edge_host,
        port=settings.edge_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )

"""The ceiling of any Python edge on this machine: an ASGI app that reads the request and answers
every one with the same constant, served as the edge is (uvicorn with uvloop and httptools,
through the edge's connection protocol), and nothing else: no routing, no middleware, no
database. `bench.rpc_gateway` runs it beside the gateway, as its `asgi` row.

    .venv/bin/python -m bench.constant_asgi   (settings from the environment, as the edge's)
"""

from __future__ import annotations

import uvicorn
from starlette.types import Receive, Scope, Send

from app.edge.connections import ConnectionLimits, bounded_protocol
from app.settings import load_settings

# What bench_add(n, 1) would answer for some n: the load generator reads a body like the
# gateway's.
BODY = b"2"
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def constant(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more_body = True
    while more_body:  # the body is read, as any endpoint reads it
        message = await receive()
        more_body = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    settings = load_settings(None)
    uvicorn.run(
        constant,
        host=settings.edge_host,
        port=settings.edge_port,
        log_config=None,
        access_log=False,
        http=bounded_protocol(ConnectionLimits.from_settings(settings), lambda reason: None),
        timeout_keep_alive=settings.edge_keep_alive_timeout_seconds,
        ws="none",
    )


if __name__ == "__main__":
    main()

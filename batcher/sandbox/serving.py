"""Serving an aiohttp application on a TCP port (over TLS with an ssl context) in the running loop."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def running(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """Serve app in the running loop (over TLS with ssl_context); yields its base URL (ending in /v3)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    try:
        bound_port = port or _bound_port(runner)
        scheme = "https" if ssl_context is not None else "http"
        yield f"{scheme}://{host}:{bound_port}/v3"
    finally:
        await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the sandbox did not bind a TCP port")

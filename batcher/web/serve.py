"""`batcher ui`: serve the page on 127.0.0.1 until Ctrl-C or SIGTERM, with its own sandbox when asked."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import webbrowser
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from batcher.defaults import SANDBOX_TOKEN
from batcher.web.app import make_app
from batcher.web.jobs import FOLDER_MODE
from batcher.web.security import GATE
from batcher.web.setup import PageSetup, api_name

HOST = "127.0.0.1"
ENV_ACCESS_TOKEN = "CTCT_ACCESS_TOKEN"


@dataclass(frozen=True, slots=True)
class PageOptions:
    """What `batcher ui` was told, with run's options resolved (flag, environment, config file, default)."""

    values: Mapping[str, object]
    state_dir: Path
    port: int = 0  # 0: a free port
    browser: bool = True
    sandbox: bool = False


def serve_page(options: PageOptions, environ: Mapping[str, str], on_ready: Callable[[str], None]) -> None:
    """Serve until interrupted; on_ready hears the address with its one-time token (to print, never to log)."""
    asyncio.run(_serve(options, environ, on_ready))


async def _serve(options: PageOptions, environ: Mapping[str, str], on_ready: Callable[[str], None]) -> None:
    folder = options.state_dir / "ui"
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        values, env = dict(options.values), dict(environ)
        api = api_name(values)
        if options.sandbox:
            from batcher.flows.sandbox import sandbox_endpoint  # noqa: PLC0415

            url, token = await stack.enter_async_context(sandbox_endpoint())
            # the sandbox's requests are not the account's: their quota is counted in a folder of their own
            values |= {"base_url": url, "allow_insecure": True, "state_dir": str(folder / "sandbox-state")}
            env[ENV_ACCESS_TOKEN] = token if token else SANDBOX_TOKEN
            api = f"the sandbox at {url}"
        app = make_app(PageSetup(values, env, folder, api, sandbox=options.sandbox))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, HOST, options.port)
        await site.start()
        port = _port(runner)
        address = f"http://{HOST}:{port}/?token={app[GATE].token}"
        on_ready(address)
        if options.browser:
            with contextlib.suppress(webbrowser.Error):
                webbrowser.open(address)
        await _until_signalled()


def _port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("batcher ui did not bind a port")


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    try:
        await stop.wait()
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)

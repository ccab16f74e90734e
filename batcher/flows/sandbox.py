"""The `sandbox` flow: serve the local emulator of the endpoint until interrupted (the command line imports this
module only for `batcher sandbox`: it loads aiohttp)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from batcher.defaults import DEFAULT_REGISTRATIONS
from batcher.errors import UsageError
from batcher.sandbox import app as sandbox
from batcher.sandbox.app import Scenario

__all__ = ["Scenario", "ServeOptions", "latency", "serve_flow"]  # Scenario: the command line names the faults


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Where to serve, what the sandbox knows, and how it misbehaves."""

    host: str
    port: int
    scenario: Scenario
    registrations: Path | None = None  # None: the sample registrations


def serve_flow(options: ServeOptions, on_ready: Callable[[str], None]) -> None:
    """Serve until interrupted; on_ready hears a notice when no registrations were loaded."""
    registrations_file = options.registrations or DEFAULT_REGISTRATIONS
    registrations = sandbox.read_registrations(registrations_file) if registrations_file.exists() else []
    if not registrations:
        on_ready(f"sandbox: no registrations loaded (no file {registrations_file})")
    sandbox.serve(options.host, options.port, options.scenario, registrations)


def latency(text: str) -> tuple[float, float]:
    """--latency-ms MIN[,MAX] in seconds.

    Raises:
        UsageError: not one or two numbers with 0 <= MIN <= MAX.
    """
    try:
        parts = [float(part) / 1000 for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--latency-ms takes MIN or MIN,MAX in milliseconds (got {text!r})") from None
    if len(parts) == 1:
        parts.append(parts[0])
    if len(parts) != 2 or parts[0] < 0 or parts[1] < parts[0]:
        raise UsageError(f"--latency-ms takes MIN or MIN,MAX with 0 <= MIN <= MAX (got {text!r})")
    return parts[0], parts[1]


@asynccontextmanager
async def sandbox_endpoint(registrations: Path | None = None) -> AsyncIterator[tuple[str, str]]:
    """A sandbox served in the running loop while the block lasts (the page's --sandbox): (base URL, token).

    Unlike run --sandbox, whose sandbox lives for one run, it keeps its state from run to verify to undo.
    """
    from batcher.sandbox import app as sandbox  # noqa: PLC0415 - aiohttp only to serve

    registrations_file = registrations or DEFAULT_REGISTRATIONS
    known = sandbox.read_registrations(registrations_file) if registrations_file.exists() else []
    async with sandbox.running(sandbox.make_app(sandbox.Scenario(), known)) as url:
        yield url, sandbox.SANDBOX_TOKEN

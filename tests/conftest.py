"""Shared fixtures: CSV writing, fast settings, a real sandbox server on 127.0.0.1, a clean environment."""

from __future__ import annotations

import asyncio
import csv
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp import web

from batcher import sandbox
from batcher.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_inputs"
EVENT = "07216444-4e3b-41ea-a3b8-5a418fce41f4"
TRACK = "gqz1gb"
HEADER = ("event_id", "track_id", "registration_id", "registration_status")


def reg_id(n: int) -> str:
    """A deterministic registration UUID."""
    return f"00000000-0000-4000-8000-{n:012d}"


def rows_for(count: int, *, event: str = EVENT, track: str = TRACK, status: str = "CANCELED") -> list[list[str]]:
    return [[event, track, reg_id(n), status] for n in range(count)]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may pick up real credentials or a real base URL."""
    for name in list(os.environ):
        if name.startswith(("CTCT_", "BATCHER_")):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _private_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The daily request count and saved tokens go to the test's own folder, never the user's."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # for CLI calls given an environ without XDG_STATE_HOME
    return state / "batcher"


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    def write(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER, name: str = "input.csv") -> Path:
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    return write


@pytest.fixture
def settings() -> Settings:
    """Fast settings: no backoff waits, a high pace; every test passes its sandbox's URL."""
    return Settings(base_url="http://127.0.0.1:1/v3", rate_per_s=1000, backoff_initial_s=0, backoff_max_s=0)


@dataclass
class RunningSandbox:
    """A sandbox serving on 127.0.0.1 from its own thread, for in-process CLI tests."""

    url: str
    app: web.Application

    @property
    def state(self) -> sandbox.SandboxState:
        return self.app[sandbox.STATE]

    @property
    def scenario(self) -> sandbox.Scenario:
        return self.app[sandbox.SCENARIO]


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., RunningSandbox]]:
    """Start sandboxes on free loopback ports in background threads; stopped after the test."""
    stops: list[Callable[[], None]] = []

    def start(
        scenario: sandbox.Scenario | None = None,
        registrations: Sequence[tuple[str, str, str, str]] = (),
    ) -> RunningSandbox:
        app = sandbox.make_app(scenario or sandbox.Scenario(rate_limit_per_s=None), registrations)
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        box: dict[str, str] = {}
        finished = asyncio.Event()

        async def serve() -> None:
            async with sandbox.running(app) as url:
                box["url"] = url
                ready.set()
                await finished.wait()

        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        assert ready.wait(10), "sandbox did not start"

        def stop() -> None:
            loop.call_soon_threadsafe(finished.set)
            thread.join(10)
            loop.close()

        stops.append(stop)
        return RunningSandbox(box["url"], app)

    yield start
    for stop in stops:
        stop()


def known(rows: Sequence[Sequence[str]]) -> list[tuple[str, str, str, str]]:
    """Sandbox registrations for every row, status REGISTERED."""
    return [(row[0], row[1], row[2].lower(), "REGISTERED") for row in rows]


def with_url(settings: Settings, url: str) -> Settings:
    return replace(settings, base_url=url)


TOKEN_ENV = {"CTCT_ACCESS_TOKEN": sandbox.SANDBOX_TOKEN}
WriteCsv = Callable[..., Path]
StartSandbox = Callable[..., RunningSandbox]


def read_results(path: Path) -> list[dict[str, str]]:
    """The rows of a results file, by header."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def outcomes(path: Path) -> list[str]:
    """The outcome column of a results file."""
    return [row["outcome"] for row in read_results(path)]

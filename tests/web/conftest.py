"""The page over a real sandbox: its app under aiohttp's test client, signed in, and helpers to walk it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from batcher.defaults import DEFAULT_REGISTRATIONS
from batcher.flows.options import RUN_DEFAULTS
from batcher.sandbox import app as sandbox
from batcher.web.app import JOBS, make_app
from batcher.web.jobs import Job
from batcher.web.security import GATE
from batcher.web.setup import PageSetup
from tests.conftest import SAMPLES, RunningSandbox, StartSandbox

ACCESS_TOKEN = "page-test-access-token-7f3e9a"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Page:
    """A signed-in client of the page, and the sandbox it sends to."""

    client: TestClient[web.Request, web.Application]
    app: web.Application
    sandbox: RunningSandbox
    folder: Path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.client.port}"

    @property
    def csrf(self) -> str:
        return self.app[GATE].csrf

    def job(self, job_id: str) -> Job:
        job = self.app[JOBS].get(job_id)
        assert job is not None
        return job

    async def post(self, path: str, data: dict[str, str] | aiohttp.FormData | None = None) -> aiohttp.ClientResponse:
        form = data if data is not None else {}
        if isinstance(form, dict):
            form = {"csrf": self.csrf, **form}
        return await self.client.post(path, data=form, headers={"Origin": self.origin}, allow_redirects=False)

    async def upload(self, path: Path, name: str | None = None) -> str:
        """Upload a file; returns its job's id."""
        form = aiohttp.FormData()
        form.add_field("csrf", self.csrf)
        form.add_field("file", path.read_bytes(), filename=name or path.name)
        response = await self.post("/upload", form)
        assert response.status == 303, await response.text()
        return response.headers["Location"].rsplit("/", 1)[-1]

    async def settle(self, job_id: str, *phases: str) -> Job:
        """Wait (by turns of the loop, not by the clock) until the job reaches one of these phases."""
        job = self.job(job_id)
        for _ in range(4_000):
            if job.phase in phases and (job.phase != "done" or not job.busy):
                return job
            await asyncio.sleep(0.005)
        raise AssertionError(f"job stayed {job.phase!r}, waiting for {phases}")

    def puts(self) -> int:
        return sum(1 for request in self.sandbox.state.requests if request.method == "PUT")


PageFactory = Callable[..., Awaitable[Page]]


@pytest.fixture
def sample_registrations() -> list[sandbox.Registration]:
    return list(sandbox.read_registrations(DEFAULT_REGISTRATIONS))


@pytest.fixture
def make_page(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    start_sandbox: StartSandbox,
    sample_registrations: list[sandbox.Registration],
    tmp_path: Path,
) -> PageFactory:
    async def make(
        *,
        signed_in: bool = True,
        sandbox_page: bool = False,
        scenario: sandbox.Scenario | None = None,
        environ: dict[str, str] | None = None,
        **options: object,
    ) -> Page:
        running = start_sandbox(
            scenario or sandbox.Scenario(token=ACCESS_TOKEN, rate_limit_per_s=None), sample_registrations
        )
        values = {**RUN_DEFAULTS, "base_url": running.url, "allow_insecure": True, "rate": 1000.0}
        values["state_dir"] = str(tmp_path / "state")
        values.update(options)  # run options as a config file would set them
        folder = tmp_path / "state" / "ui"
        values["token_url"] = running.url.removesuffix("/v3") + sandbox.TOKEN_PATH
        env = {"CTCT_ACCESS_TOKEN": ACCESS_TOKEN} if environ is None else environ
        if sandbox_page:  # as `batcher ui --sandbox` does: the sandbox's quota in a state folder of its own
            values["state_dir"] = str(folder / "sandbox-state")
        setup = PageSetup(values, env, folder, "the test sandbox", sandbox=sandbox_page)
        app = make_app(setup)
        client = await aiohttp_client(app)
        page = Page(client, app, running, folder)
        if signed_in:
            response = await client.get(f"/?token={app[GATE].token}", allow_redirects=False)
            assert response.status == 303
        return page

    return make


EXPORT_CSV = SAMPLES / "event_export.csv"

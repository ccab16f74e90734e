"""The page's routes, thin as the command line's: read the form, call a flow (through jobs.py) with the page's
hooks, render a template. The guard (security.py) has checked every request before it gets here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from aiohttp import BodyPartReader, web
from markupsafe import Markup

from batcher.defaults import FIELDS, MAX_INPUT_BYTES
from batcher.errors import BatcherError, UsageError
from batcher.models import KNOWN_STATUSES
from batcher.support import redaction
from batcher.web import views
from batcher.web.jobs import Choices, Job, Jobs, safe_name
from batcher.web.security import GATE, MULTIPART, Gate, guard
from batcher.web.setup import PageSetup
from batcher.web.signin import Account, SignIn, account_of, chosen_switch, profiles_of
from batcher.web.watch import Watched

if TYPE_CHECKING:
    from batcher.results.history import RunRecord

JOBS = web.AppKey("jobs", Jobs)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
STATIC = Path(__file__).parent / "static"
KEEPALIVE_S = 15.0
CHUNK = 1 << 16
STATUS_CHOICES = ("CANCELED", *(status for status in KNOWN_STATUSES if status != "CANCELED"))
CANARY_ROWS = 20
MAX_RUNS_SHOWN = 30


def make_app(setup: PageSetup, gate: Gate | None = None) -> web.Application:
    """The page's application (its middleware guards every route, the static files too)."""
    app = web.Application(middlewares=[guard], client_max_size=1 << 20)
    app[GATE] = gate or Gate()
    app[JOBS] = Jobs(setup)
    app[TEMPLATES] = templates()
    app.router.add_get("/", index)
    app.router.add_get("/favicon.ico", no_icon)
    app.router.add_post("/upload", upload)
    app.router.add_post("/export", export)
    app.router.add_get("/job/{id}", job_page)
    app.router.add_get("/job/{id}/events", job_events)
    app.router.add_get("/job/{id}/file/{which}", job_file)
    app.router.add_post("/job/{id}/{action}", job_action)
    app.router.add_post("/runs/{run_id}/undo", undo_run)
    app.router.add_post("/login", login)
    app.router.add_post("/profile", switch_profile)
    app.router.add_get("/login", login_page)
    app.router.add_get("/login/events", login_events)
    app.router.add_get("/runs/{run_id}/file/{which}", run_file)
    app.router.add_static("/static/", STATIC, append_version=False)

    async def close_jobs(app: web.Application) -> None:
        await app[JOBS].close()

    app.on_shutdown.append(close_jobs)
    return app


def templates() -> jinja2.Environment:
    """Jinja2 with autoescape on, and every value shown passed through the redaction of known secrets."""

    def finalize(value: object) -> object:
        if isinstance(value, str) and not isinstance(value, Markup):
            return redaction.redact(value)
        return value

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("batcher.web", "templates"),
        autoescape=True,
        finalize=finalize,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters.update(views.FILTERS)
    return environment


def render(request: web.Request, name: str, status: int = 200, **context: object) -> web.Response:
    environment = request.app[TEMPLATES]
    text = environment.get_template(name).render(csrf=request.app[GATE].csrf, **context)
    return web.Response(text=text, status=status, content_type="text/html")


async def index(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    jobs = request.app[JOBS]
    try:
        runs = list(reversed(_runs(jobs)))[:MAX_RUNS_SHOWN]
        account: Account | None = account_of(jobs.setup)
        profiles = profiles_of(jobs.setup)
    except BatcherError as exc:
        runs, account, profiles, error = [], None, [], error or str(exc)
    return render(
        request,
        "index.html",
        status,
        error=error,
        files=jobs.listed(),
        runs=runs,
        account=account,
        profiles=profiles,
        api=jobs.setup.api,
        max_bytes=MAX_INPUT_BYTES,
    )


def _runs(jobs: Jobs) -> list[RunRecord]:
    """The run history of the page's state folder and profile (runs of the command line too), oldest first."""
    from batcher.flows.runs import runs_flow  # noqa: PLC0415

    values = jobs.setup.values
    state_dir = Path(str(values["state_dir"])) if values.get("state_dir") else None
    profile = str(values["profile"]) if values.get("profile") else None
    return runs_flow(state_dir, jobs.setup.environ, profile)


def _run(request: web.Request) -> RunRecord:
    from batcher.flows.runs import find_run  # noqa: PLC0415

    jobs = request.app[JOBS]
    run_id = request.match_info["run_id"]
    values = jobs.setup.values
    state_dir = Path(str(values["state_dir"])) if values.get("state_dir") else None
    profile = str(values["profile"]) if values.get("profile") else None
    try:
        return find_run(state_dir, jobs.setup.environ, run_id, profile)
    except BatcherError as exc:
        raise web.HTTPNotFound(text=f"batcher ui: {exc}") from None


async def undo_run(request: web.Request) -> web.StreamResponse:
    """Undo a run of the history (`batcher undo RUN_ID`): a job of its own, which starts with undo's preview."""
    run = _run(request)
    jobs = request.app[JOBS]
    job_id, folder = jobs.new_folder()
    job = jobs.add(job_id, folder, folder / safe_name(Path(run.input).name), f"run {run.run_id}", run_id=run.run_id)
    try:
        job.start_undo()
    except BatcherError as exc:
        return await index(request, error=str(exc), status=400)
    raise web.HTTPSeeOther(f"/job/{job.id}")


async def run_file(request: web.Request) -> web.StreamResponse:
    """The copy of a run's results, or of its latest verification, that the history keeps."""
    run = _run(request)
    path = {"results": run.results_copy, "verify": run.verify_copy}.get(request.match_info["which"])
    if path is None or not path.is_file():
        raise web.HTTPNotFound(text="batcher ui: that file is not there")
    suffix = ".results.csv" if request.match_info["which"] == "results" else ".results.verify.csv"
    name = safe_name(Path(run.input).stem.removesuffix(".results") + suffix)
    return web.FileResponse(path, headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def upload(request: web.Request) -> web.StreamResponse:
    """A CSV or xlsx from the form (or dropped on it): stored, bounded as an input is, in a 0700 folder."""
    reader = request[MULTIPART]
    part = await reader.next()
    if not isinstance(part, BodyPartReader) or part.name != "file" or not part.filename:
        return await index(request, error="choose a CSV or xlsx file first", status=400)
    jobs = request.app[JOBS]
    job_id, folder = jobs.new_folder()
    path = folder / safe_name(part.filename)
    size = 0
    with path.open("wb") as handle:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > MAX_INPUT_BYTES:
                handle.close()
                path.unlink()
                folder.rmdir()
                message = f"{part.filename}: larger than {MAX_INPUT_BYTES:,} bytes, the most an input may be"
                return await index(request, error=message, status=413)
            handle.write(chunk)
    if size == 0:
        path.unlink()
        folder.rmdir()
        return await index(request, error=f"{part.filename}: the file is empty", status=400)
    job = jobs.add(job_id, folder, path, part.filename)
    raise web.HTTPSeeOther(f"/job/{job.id}")


async def export(request: web.Request) -> web.StreamResponse:
    """`batcher export EVENT_ID` into a job's folder; the job page then offers to use the file."""
    from batcher.flows.export import export_flow, export_options  # noqa: PLC0415
    from batcher.flows.options import read_options  # noqa: PLC0415
    from batcher.flows.render_reads import export_lines  # noqa: PLC0415

    form = await request.post()
    event = str(form.get("event_id", "")).strip()
    jobs = request.app[JOBS]
    values = {**jobs.setup.values, "no_progress": True}
    try:
        chosen = export_options([event], read_options(values), out="export.csv")
    except BatcherError as exc:
        return await index(request, error=str(exc), status=400)
    job_id, folder = jobs.new_folder()
    path = folder / f"{event.lower()}.export.csv"
    chosen = replace(chosen, out=path)
    try:
        exported = await asyncio.get_running_loop().run_in_executor(
            None, lambda: export_flow(chosen, jobs.setup.environ)
        )
    except BatcherError as exc:
        with contextlib.suppress(OSError):
            folder.rmdir()
        return await index(request, error=str(exc), status=400)
    job = jobs.add(job_id, folder, path, path.name)
    job.notes = export_lines(exported)
    raise web.HTTPSeeOther(f"/job/{job.id}")


def _job(request: web.Request) -> Job:
    job = request.app[JOBS].get(request.match_info["id"])
    if job is None:
        raise web.HTTPNotFound(text="batcher ui: no such file on this page; start again from the first page")
    return job


async def job_page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    job = _job(request)
    return render(request, "job.html", status, **_context(job), error=error)


def _context(job: Job) -> dict[str, object]:
    choices = job.choices or Choices(STATUS_CHOICES[0], limit=None)
    return {
        "job": job,
        "state": views.state_of(job),
        "choices": choices,
        "statuses": STATUS_CHOICES,
        "fields": FIELDS,
        "canary_rows": CANARY_ROWS,
        "api": job.setup.api,
    }


async def job_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the job's state section, again at every change (a reconnect starts with it)."""
    job = _job(request)
    return await stream(request, job, "state.html", lambda: _context(job))


async def stream(
    request: web.Request, watched: Watched, template: str, context: Callable[[], dict[str, object]]
) -> web.StreamResponse:
    """Server-sent events named "state": the template rendered again at every change of watched."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    environment = request.app[TEMPLATES]
    jobs = request.app[JOBS]
    seen = -1
    try:
        while not jobs.closing:
            if watched.version != seen:
                seen = watched.version
                html = environment.get_template(template).render(csrf=request.app[GATE].csrf, **context())
                data = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
                await response.write(f"event: state\n{data}\n".encode())
            elif not await watched.wait_change(seen, KEEPALIVE_S):
                await response.write(b": still here\n\n")
    except (ConnectionResetError, ConnectionError):
        pass
    return response


async def login(request: web.Request) -> web.StreamResponse:
    """Start the login of the page's profile (the device flow); its page shows the link and the code."""
    form = await request.post()
    jobs = request.app[JOBS]
    if jobs.signin is None or not jobs.signin.busy:
        jobs.signin = SignIn()
        try:
            jobs.signin.start(jobs.setup, str(form.get("client_id", "")))
        except BatcherError as exc:
            jobs.signin = None
            return await index(request, error=str(exc), status=400)
    raise web.HTTPSeeOther("/login")


async def switch_profile(request: web.Request) -> web.StreamResponse:
    """Work as another profile from the next task on; refused (409) while a run or a login is going on."""
    form = await request.post()
    jobs = request.app[JOBS]
    try:
        profile = chosen_switch(jobs.setup, str(form.get("profile", "")))
    except BatcherError as exc:
        return await index(request, error=str(exc), status=400)
    try:
        jobs.switch_profile(profile)
    except BatcherError as exc:
        return await index(request, error=str(exc), status=409)
    raise web.HTTPSeeOther("/")


async def login_page(request: web.Request) -> web.Response:
    jobs = request.app[JOBS]
    if jobs.signin is None:
        raise web.HTTPSeeOther("/")
    return render(request, "login.html", error="", signin=jobs.signin, api=jobs.setup.api)


async def login_events(request: web.Request) -> web.StreamResponse:
    jobs = request.app[JOBS]
    signin = jobs.signin
    if signin is None:
        raise web.HTTPNotFound(text="batcher ui: no login going on")
    return await stream(request, signin, "signin.html", lambda: {"signin": signin})


async def job_file(request: web.Request) -> web.StreamResponse:
    """A file of the job, as an attachment: the input, the results (in the input's format), verify, undo."""
    job = _job(request)
    files = {
        "input": job.input,
        "results": job.results,
        "verify": job.verify_file,
        "undo": job.undo_results,
    }
    path = files.get(request.match_info["which"])
    if path is None or not path.is_file():
        raise web.HTTPNotFound(text="batcher ui: that file is not there (yet)")
    # named after the file the person chose: "Cancellations.xlsx" gives "Cancellations.results.csv"
    name = safe_name(Path(job.name).stem + path.name[len(job.input.stem) :])
    return web.FileResponse(path, headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def job_action(request: web.Request) -> web.StreamResponse:
    job = _job(request)
    action = request.match_info["action"]
    form = await request.post()
    try:
        if action == "preview":
            job.start_run(_choices(form))
        elif action == "send":
            job.decide(send=True)
        elif action == "cancel":
            job.decide(send=False)
        elif action == "stop":
            job.press_stop()
        elif action == "retry":
            if job.choices is None:
                raise UsageError("preview and send first: there is nothing to retry")
            job.start_run(job.choices, resume=True)
        elif action == "undo":
            job.start_undo()
        elif action == "verify":
            job.start_verify()
        else:
            raise web.HTTPNotFound(text="batcher ui: no such action")
    except BatcherError as exc:
        return await job_page(request, error=str(exc), status=409 if job.busy else 400)
    raise web.HTTPSeeOther(f"/job/{job.id}")


def _choices(form: Mapping[str, object]) -> Choices:
    """The Start form as run's options.

    Raises:
        UsageError: the canary's row count is not a whole number of 1 or more.
    """
    get = form.get
    status = str(get("status", "CANCELED"))
    canary = None
    if get("canary"):
        text = str(get("canary_rows", CANARY_ROWS)).strip()
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"the canary takes a whole number of rows, 1 or more (got {text!r})")
        canary = int(text)
    columns = tuple(
        (name, str(get(f"column_{name}"))) for name in FIELDS if str(get(f"column_{name}", "") or "").strip()
    )
    return Choices(status=status, if_status=str(get("if_status", "") or ""), limit=canary, columns=columns)

"""A local emulator of the API's registration routes (the status PUT and the reads), for rehearsals, the demo, the
tests and the bench.

make_app(scenario, registrations) builds the aiohttp application; serve() runs it for `batcher sandbox`;
serve_in_thread() serves it from a thread of the calling process for the tests and the bench. One guard serves
every API route: the per-second limit, the daily quota, the faults, the token check and the latency. The state
and the scenario live in sandbox_state.py, the reads in sandbox_reads.py, the registrations file in
sandbox_files.py. It imports nothing from the sender or the reads of batcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager

from aiohttp import web

from batcher.defaults import (
    ACTIVATE_PATH,
    DEFAULT_MAX_PAGE_SIZE,
    DEFAULT_RATE_LIMIT_PER_S,
    DEFAULT_REGISTRATIONS,
    DEVICE_PATH,
    REVOKE_PATH,
    SANDBOX_CLIENT_ID,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_TOKEN,
    TOKEN_PATH,
)
from batcher.errors import InputError, UsageError
from batcher.models import KNOWN_STATUSES
from batcher.sandbox import device
from batcher.sandbox.files import read_registrations
from batcher.sandbox.reads import error, get_event, get_registration, list_registrations, missing_group
from batcher.sandbox.serving import running
from batcher.sandbox.state import (
    REGISTRATION_FIELDS,
    RecordedRequest,
    Registration,
    SandboxState,
    Scenario,
)
from batcher.support.signals import signals_set

__all__ = [
    "ACTIVATE_PATH",
    "DEFAULT_MAX_PAGE_SIZE",
    "DEFAULT_RATE_LIMIT_PER_S",
    "DEFAULT_REGISTRATIONS",
    "DEVICE_PATH",
    "KNOWN_STATUSES",
    "REGISTRATION_FIELDS",
    "REVOKE_PATH",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_REFRESH_TOKEN",
    "SANDBOX_TOKEN",
    "TOKEN_PATH",
    "InputError",
    "RecordedRequest",
    "Registration",
    "SandboxState",
    "Scenario",
    "make_app",
    "read_registrations",
    "running",
    "serve",
    "serve_in_thread",
]

FLAG_NAMES = ("increase_count", "increase_item_count", "return_items_to_inventory")
MAX_IDS_PER_REQUEST = 500
REGISTRATIONS_PATH = "/v3/events/{event_id}/tracks/{track_id}/registrations"
AUTH_PATHS = frozenset({TOKEN_PATH, DEVICE_PATH, REVOKE_PATH, ACTIVATE_PATH})  # not the API: no token, no limits

STATE = web.AppKey("state", SandboxState)
SCENARIO = web.AppKey("scenario", Scenario)
PAYLOAD = web.RequestKey("payload", object)  # the request's parsed JSON body, kept by the guard for the PUT

Handler = Callable[[web.Request, SandboxState, Scenario], Awaitable[web.Response]]
Registrations = Iterable[Registration | tuple[str, ...]]


def make_app(scenario: Scenario | None = None, registrations: Registrations = ()) -> web.Application:
    """The emulator, knowing the given registrations (Registration values or (event, track, id, status) tuples)."""
    app = web.Application(middlewares=[_guard])
    state = SandboxState()
    state.add_all(registrations)
    scenario = scenario or Scenario()
    state.random = random.Random(scenario.seed)
    state.access_token = scenario.token
    state.refresh_token = scenario.refresh_token
    app[STATE] = state
    app[SCENARIO] = scenario
    app.router.add_post(TOKEN_PATH, _route(device.token))
    app.router.add_post(DEVICE_PATH, _route(device.authorize_device))
    app.router.add_post(REVOKE_PATH, _route(device.revoke))
    app.router.add_get(ACTIVATE_PATH, _route(device.activate_page))
    app.router.add_post(ACTIVATE_PATH, _route(device.decide))
    app.router.add_get("/v3/events/{event_id}", _route(get_event))
    app.router.add_put(REGISTRATIONS_PATH, _route(_put_registrations))
    app.router.add_get(REGISTRATIONS_PATH, _route(list_registrations))
    app.router.add_get(REGISTRATIONS_PATH + "/{registration_id}", _route(get_registration))
    return app


def _route(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def route(request: web.Request) -> web.Response:
        return await handler(request, request.app[STATE], request.app[SCENARIO])

    return route


@web.middleware
async def _guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Limits, faults and the token check for every API route, then the route; every request is recorded."""
    if request.path in AUTH_PATHS:
        return await handler(request)
    state = request.app[STATE]
    scenario = request.app[SCENARIO]
    now = time.monotonic()
    payload = await _payload(request)
    request[PAYLOAD] = payload
    try:
        response = await _stopped(request, state, scenario, now) or await handler(request)
    except _Reset:
        state.requests.append(_record(request, payload, 0, now))
        return web.Response(status=500)  # never reaches the client: the connection is gone
    state.requests.append(_record(request, payload, response.status, now))
    low, high = scenario.latency_s
    if high > 0:
        await asyncio.sleep(random.uniform(low, high))
    return response


async def _payload(request: web.Request) -> object:
    if request.method != "PUT":
        return None
    raw = await request.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _record(request: web.Request, payload: object, status: int, now: float) -> RecordedRequest:
    return RecordedRequest(
        request.method, request.path, dict(request.query), dict(request.headers), payload, status, now
    )


async def _stopped(request: web.Request, state: SandboxState, scenario: Scenario, now: float) -> web.Response | None:
    """The answer that stops a request before its route (429, a fault, a scripted status, 401); None to go on."""
    state.arrived += 1
    if _over_rate_limit(state, scenario, now) or state.arrived in scenario.throttled_arrivals:
        return error(429, "throttled", "Too Many Requests", _retry_after(scenario))
    state.quota_used += 1
    if scenario.daily_quota is not None and state.quota_used > scenario.daily_quota:
        return error(429, "quota_exceeded", "Daily request quota exceeded", _retry_after(scenario))
    if request.method in scenario.fault_methods:
        fault = await _random_fault(request, state, scenario)
        if fault is not None:
            return fault
        if scenario.statuses:
            return _scripted(scenario.statuses.pop(0), scenario)
        if scenario.status is not None:
            return _scripted(scenario.status, scenario)
    if not _authorized(request, state, scenario):
        return web.json_response({"error_key": "unauthorized", "error_message": "Unauthorized"}, status=401)
    return None


def _scripted(status: int, scenario: Scenario) -> web.Response:
    headers = _retry_after(scenario)
    if scenario.error_body is not None:
        return web.Response(status=status, text=scenario.error_body, content_type="text/html", headers=headers)
    keys = {400: "bad.request", 401: "unauthorized", 403: "forbidden", 404: "not.found", 429: "throttled"}
    return error(status, keys.get(status, "server.error"), f"scripted answer {status}", headers)


def _over_rate_limit(state: SandboxState, scenario: Scenario, now: float) -> bool:
    """True when this arrival would make more than the limit in the last second."""
    if scenario.rate_limit_per_s is None:
        return False
    while state.arrivals and state.arrivals[0] <= now - 1.0:
        state.arrivals.popleft()
    state.arrivals.append(now)
    return len(state.arrivals) > scenario.rate_limit_per_s


async def _put_registrations(request: web.Request, state: SandboxState, scenario: Scenario) -> web.Response:
    if scenario.put_answer is not None:  # a scripted answer that is not quite the API's: nothing is applied
        status, content_type, text = scenario.put_answer
        return web.Response(status=status, text=text, content_type=content_type)
    payload = request[PAYLOAD]
    event_id = request.match_info["event_id"]
    track_id = request.match_info["track_id"]
    for name, value in request.query.items():
        if name in FLAG_NAMES and value not in ("true", "false"):
            return error(400, "query.invalid", f"{name} does not have a valid value")
    if not isinstance(payload, dict):
        return error(400, "json.malformed", "The request body is not a JSON object")
    ids = payload.get("registration_ids")
    target = payload.get("registration_status")
    # set(map(type, ...)) checks 500 IDs in C; JSON strings are exactly str
    if not isinstance(ids, list) or not ids or not set(map(type, ids)) <= {str}:
        return error(400, "registration_ids.invalid", "registration_ids must be a non-empty array of strings")
    if len(ids) > MAX_IDS_PER_REQUEST:
        return error(400, "registration_ids.too_many", f"registration_ids may hold at most {MAX_IDS_PER_REQUEST}")
    if target not in KNOWN_STATUSES:
        return error(400, "registration_status.invalid", "registration_status does not have a valid value")
    missing = missing_group(state, event_id, track_id)
    if missing is not None:
        return missing
    track = state.registrations[(event_id, track_id)]
    requested = set(ids)
    if scenario.poison_ids & requested:
        return error(400, "registration_id.invalid", "a registration id in the request is not valid")
    # set operations keep a 500-ID request to a few passes in C: the sandbox must never be what a benchmark measures
    rejected = requested.difference(track)
    if scenario.fail_ids:
        rejected |= requested & scenario.fail_ids
    applied = requested - rejected if rejected else requested
    if scenario.silent_ids:
        applied = applied - scenario.silent_ids
    track.update(dict.fromkeys(applied, str(target)))
    if rejected:
        failed = [item for item in ids if item in rejected]
        return web.json_response({"failed_registration_ids": failed}, status=207)
    return web.Response(status=200)


def _retry_after(scenario: Scenario) -> dict[str, str]:
    return {"Retry-After": scenario.retry_after} if scenario.retry_after is not None else {}


def _authorized(request: web.Request, state: SandboxState, scenario: Scenario) -> bool:
    if request.headers.get("Authorization") != f"Bearer {state.access_token}":
        return False
    if scenario.token_expires_after is not None:
        if state.token_uses >= scenario.token_expires_after:
            return False
        state.token_uses += 1
    return True


class _Reset(Exception):
    """The connection was dropped on purpose."""


def _draw_fault(draw: float, scenario: Scenario) -> str | None:
    for rate, kind in (
        (scenario.error_rate, "error"),
        (scenario.reset_rate, "reset"),
        (scenario.stall_rate, "stall"),
        (scenario.throttle_rate, "throttle"),
    ):
        if draw < rate:
            return kind
        draw -= rate
    return None


async def _random_fault(request: web.Request, state: SandboxState, scenario: Scenario) -> web.Response | None:
    """A random 5xx, reset, stall or 429, by the scenario's rates; None for a normal answer."""
    kind = _draw_fault(state.random.random(), scenario)
    if kind is None:
        return None
    if kind == "reset":
        if request.transport is not None:
            request.transport.abort()
        raise _Reset
    if kind == "stall":
        await asyncio.sleep(scenario.stall_s)
        return error(503, "server.stalled", "answered after a stall")
    if kind == "throttle":
        return error(429, "throttled", "Too Many Requests", _retry_after(scenario))
    status = state.random.choice((500, 503))
    if scenario.html_errors:
        page = f"<html><head><title>{status}</title></head><body><h1>{status} Service Unavailable</h1></body></html>"
        return web.Response(status=status, text=page, content_type="text/html", headers=_retry_after(scenario))
    return error(status, "server.error", "There was a problem with our internal service.", _retry_after(scenario))


@contextmanager
def serve_in_thread(
    scenario: Scenario | None = None,
    registrations: Registrations = (),
    *,
    start_timeout_s: float = 30.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[tuple[str, SandboxState]]:
    """Serve a sandbox on a free 127.0.0.1 port from a thread of this process; yields (base URL, its state).

    The state may be read and changed from the calling thread (the server's thread only runs between requests'
    awaits, and the GIL makes each change whole); the scenario is the one given, so a test may change it too.
    """
    app = make_app(scenario, registrations)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, str] = {}
    failures: list[BaseException] = []
    finished: list[asyncio.Event] = []

    async def serve_until_finished() -> None:
        finished.append(asyncio.Event())
        try:
            async with running(app, ssl_context=ssl_context) as url:
                box["url"] = url
                ready.set()
                await finished[0].wait()
        except Exception as exc:  # reported to the caller's thread below
            failures.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve_until_finished(),), daemon=True)
    thread.start()
    try:
        if not ready.wait(start_timeout_s) or failures or "url" not in box:
            raise RuntimeError(f"the sandbox did not start: {failures[0] if failures else 'timed out'}")
        yield box["url"], app[STATE]
    finally:
        if finished:
            loop.call_soon_threadsafe(finished[0].set)
        thread.join(start_timeout_s)
        if not thread.is_alive():
            loop.close()


def serve(host: str, port: int, scenario: Scenario, registrations: Registrations) -> None:
    """Run the sandbox until SIGINT or SIGTERM (for `batcher sandbox`); says the URL it bound (--port 0: any free)."""

    async def serve_until_stopped() -> None:
        stop = asyncio.Event()
        async with running(make_app(scenario, registrations), host, port) as url:
            print(f"sandbox: serving on {url} (token: {scenario.token}); Ctrl-C stops it", flush=True)
            origin = url.removesuffix("/v3")
            print(
                f"sandbox: log in with: batcher login --client-id {scenario.client_id} "
                f"--token-url {origin}{TOKEN_PATH}",
                flush=True,
            )
            with signals_set(stop.set):
                await stop.wait()

    try:
        with contextlib.suppress(KeyboardInterrupt):  # a SIGINT before the handlers are set
            asyncio.run(serve_until_stopped())
    except OSError as exc:  # the port is taken, or the host is not this machine's: nothing was served
        raise UsageError(f"--port {port}: cannot serve on {host}:{port} ({exc}); choose another --port") from None

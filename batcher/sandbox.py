"""A local emulator of the update-registration-status endpoint, for rehearsals, the demo and the tests.

make_app(scenario, registrations) builds the aiohttp application; serve() runs it for `batcher sandbox`.
It imports nothing from the sender or the loader.
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from batcher.defaults import (  # noqa: F401 - re-exported: the sandbox's names
    DEFAULT_RATE_LIMIT_PER_S,
    DEFAULT_REGISTRATIONS,
    SANDBOX_CLIENT_ID,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_TOKEN,
    TOKEN_PATH,
)
from batcher.errors import InputError
from batcher.models import KNOWN_STATUSES

FLAG_NAMES = ("increase_count", "increase_item_count", "return_items_to_inventory")
MAX_IDS_PER_REQUEST = 500
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
REGISTRATION_COLUMNS = ("event_id", "track_id", "registration_id")

Key = tuple[str, str]


@dataclass
class Scenario:
    """Scripts the sandbox's behaviour; the defaults behave like the real endpoint."""

    token: str = SANDBOX_TOKEN
    rate_limit_per_s: int | None = DEFAULT_RATE_LIMIT_PER_S  # None: no limit
    latency_s: tuple[float, float] = (0.0, 0.0)  # uniform delay before each answer
    statuses: list[int] = field(default_factory=list)  # answered first, in order, then normal behaviour
    status: int | None = None  # answer every PUT with this status
    retry_after: str | None = None  # Retry-After header on scripted and random 429/5xx answers
    fail_ids: frozenset[str] = frozenset()  # always listed as failed in a 207
    poison_ids: frozenset[str] = frozenset()  # a batch holding one is rejected whole with 400
    error_body: str | None = None  # raw body for scripted error answers, e.g. an HTML proxy page
    # Random faults, each a fraction of PUTs, drawn from one seeded generator; nothing is applied.
    error_rate: float = 0.0  # 500 or 503
    html_errors: bool = False  # those 5xx answers carry an HTML page, as a proxy would send
    reset_rate: float = 0.0  # the connection is dropped without an answer
    stall_rate: float = 0.0  # the answer comes only after stall_s
    stall_s: float = 30.0
    throttle_rate: float = 0.0  # 429 throttled
    daily_quota: int | None = None  # 429 quota_exceeded once this many PUTs came in
    token_expires_after: int | None = None  # an access token stops working after this many PUTs
    refresh_token: str = SANDBOX_REFRESH_TOKEN  # accepted once at the token endpoint
    client_id: str = SANDBOX_CLIENT_ID
    rotate_refresh_tokens: bool = True  # each refresh makes the previous refresh token invalid
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the sandbox received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: object
    status: int  # 0: the connection was dropped without an answer
    at: float  # time.monotonic() on arrival


@dataclass
class SandboxState:
    """What the sandbox knows and has seen."""

    registrations: dict[Key, dict[str, str]] = field(default_factory=dict)
    events: set[str] = field(default_factory=set)
    requests: list[RecordedRequest] = field(default_factory=list)
    arrivals: deque[float] = field(default_factory=deque)
    random: random.Random = field(default_factory=random.Random)
    access_token: str = SANDBOX_TOKEN
    refresh_token: str = SANDBOX_REFRESH_TOKEN
    token_uses: int = 0  # PUTs authorized with the current access token
    refreshes: int = 0
    put_count: int = 0

    def add(self, event_id: str, track_id: str, registration_id: str, status: str = "REGISTERED") -> None:
        self.events.add(event_id.lower())
        self.registrations.setdefault((event_id.lower(), track_id), {})[registration_id.lower()] = status

    def status_of(self, event_id: str, track_id: str, registration_id: str) -> str | None:
        return self.registrations.get((event_id, track_id), {}).get(registration_id)

    @property
    def puts(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.method == "PUT"]


STATE = web.AppKey("state", SandboxState)
SCENARIO = web.AppKey("scenario", Scenario)


def read_registrations(path: Path) -> list[tuple[str, str, str, str]]:
    """(event_id, track_id, registration_id, status) rows from a CSV with those headers.

    Raises:
        InputError: the file cannot be read or lacks a column.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [name for name in REGISTRATION_COLUMNS if name not in (reader.fieldnames or [])]
            if missing:
                raise InputError(
                    f"{path}: a sandbox registrations file needs the columns {', '.join(REGISTRATION_COLUMNS)} "
                    f"(missing: {', '.join(missing)})"
                )
            return [
                (
                    record["event_id"].strip().lower(),
                    record["track_id"].strip(),
                    record["registration_id"].strip().lower(),
                    (record.get("registration_status") or "REGISTERED").strip().upper(),
                )
                for record in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the sandbox registrations ({exc})") from exc


def make_app(
    scenario: Scenario | None = None,
    registrations: Iterable[tuple[str, str, str, str]] = (),
) -> web.Application:
    """The emulator, knowing the given (event_id, track_id, registration_id, status) rows."""
    app = web.Application()
    state = SandboxState()
    for event_id, track_id, registration_id, status in registrations:
        state.add(event_id, track_id, registration_id, status)
    scenario = scenario or Scenario()
    state.random = random.Random(scenario.seed)
    state.access_token = scenario.token
    state.refresh_token = scenario.refresh_token
    app[STATE] = state
    app[SCENARIO] = scenario
    app.router.add_post(TOKEN_PATH, _refresh_token)
    app.router.add_put("/v3/events/{event_id}/tracks/{track_id}/registrations", _put_registrations)
    app.router.add_get("/v3/events/{event_id}/tracks/{track_id}/registrations/{registration_id}", _get_registration)
    return app


def _error(status: int, key: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    body = [{"error_key": key, "error_message": message}]
    return web.json_response(body, status=status, headers=dict(headers or {}))


def _scripted(status: int, scenario: Scenario) -> web.Response:
    headers = {"Retry-After": scenario.retry_after} if scenario.retry_after is not None else {}
    if scenario.error_body is not None:
        return web.Response(status=status, text=scenario.error_body, content_type="text/html", headers=headers)
    keys = {400: "bad.request", 401: "unauthorized", 403: "forbidden", 404: "not.found", 429: "throttled"}
    return _error(status, keys.get(status, "server.error"), f"scripted answer {status}", headers)


def _over_rate_limit(state: SandboxState, scenario: Scenario, now: float) -> bool:
    """True when this arrival would make more than the limit in the last second."""
    if scenario.rate_limit_per_s is None:
        return False
    while state.arrivals and state.arrivals[0] <= now - 1.0:
        state.arrivals.popleft()
    state.arrivals.append(now)
    return len(state.arrivals) > scenario.rate_limit_per_s


async def _put_registrations(request: web.Request) -> web.Response:
    state = request.app[STATE]
    scenario = request.app[SCENARIO]
    now = time.monotonic()
    raw = await request.read()
    try:
        payload: object = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    try:
        response = await _answer_put(request, state, scenario, now, payload)
    except _Reset:
        state.requests.append(_record(request, payload, 0, now))
        return web.Response(status=500)  # never reaches the client: the connection is gone
    state.requests.append(_record(request, payload, response.status, now))
    low, high = scenario.latency_s
    if high > 0:
        await asyncio.sleep(random.uniform(low, high))
    return response


def _record(request: web.Request, payload: object, status: int, now: float) -> RecordedRequest:
    return RecordedRequest("PUT", request.path, dict(request.query), dict(request.headers), payload, status, now)


async def _answer_put(
    request: web.Request, state: SandboxState, scenario: Scenario, now: float, payload: object
) -> web.Response:
    if _over_rate_limit(state, scenario, now):
        return _error(429, "throttled", "Too Many Requests", _retry_after(scenario))
    state.put_count += 1
    if scenario.daily_quota is not None and state.put_count > scenario.daily_quota:
        return _error(429, "quota_exceeded", "Daily request quota exceeded", _retry_after(scenario))
    fault = await _random_fault(request, state, scenario)
    if fault is not None:
        return fault
    if scenario.statuses:
        return _scripted(scenario.statuses.pop(0), scenario)
    if scenario.status is not None:
        return _scripted(scenario.status, scenario)
    if not _authorized(request, state, scenario):
        return web.json_response({"error_key": "unauthorized", "error_message": "Unauthorized"}, status=401)
    event_id = request.match_info["event_id"]
    track_id = request.match_info["track_id"]
    for name, value in request.query.items():
        if name in FLAG_NAMES and value not in ("true", "false"):
            return _error(400, "query.invalid", f"{name} does not have a valid value")
    if not isinstance(payload, dict):
        return _error(400, "json.malformed", "The request body is not a JSON object")
    ids = payload.get("registration_ids")
    target = payload.get("registration_status")
    # set(map(type, ...)) checks 500 IDs in C; JSON strings are exactly str
    if not isinstance(ids, list) or not ids or not set(map(type, ids)) <= {str}:
        return _error(400, "registration_ids.invalid", "registration_ids must be a non-empty array of strings")
    if len(ids) > MAX_IDS_PER_REQUEST:
        return _error(400, "registration_ids.too_many", f"registration_ids may hold at most {MAX_IDS_PER_REQUEST}")
    if target not in KNOWN_STATUSES:
        return _error(400, "registration_status.invalid", "registration_status does not have a valid value")
    if event_id not in state.events:
        return _error(404, "event.not_found", f"event {event_id} was not found")
    track = state.registrations.get((event_id, track_id))
    if track is None:
        return _error(404, "track.not_found", f"track {track_id} was not found in event {event_id}")
    requested = set(ids)
    if scenario.poison_ids & requested:
        return _error(400, "registration_id.invalid", "a registration id in the request is not valid")
    # set operations keep a 500-ID request to a few passes in C: the sandbox must never be what a benchmark measures
    rejected = requested.difference(track)
    if scenario.fail_ids:
        rejected |= requested & scenario.fail_ids
    track.update(dict.fromkeys(requested - rejected if rejected else requested, str(target)))
    if rejected:
        failed = [item for item in ids if item in rejected]
        return web.json_response({"failed_registration_ids": failed}, status=207)
    return web.Response(status=200)


def _retry_after(scenario: Scenario) -> dict[str, str]:
    return {"Retry-After": scenario.retry_after} if scenario.retry_after is not None else {}


def _authorized(request: web.Request, state: SandboxState, scenario: Scenario) -> bool:
    if request.headers.get("Authorization") != f"Bearer {state.access_token}":
        return False
    if scenario.token_expires_after is not None and request.method == "PUT":
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
        return _error(503, "server.stalled", "answered after a stall")
    if kind == "throttle":
        return _error(429, "throttled", "Too Many Requests", _retry_after(scenario))
    status = state.random.choice((500, 503))
    if scenario.html_errors:
        page = f"<html><head><title>{status}</title></head><body><h1>{status} Service Unavailable</h1></body></html>"
        return web.Response(status=status, text=page, content_type="text/html", headers=_retry_after(scenario))
    return _error(status, "server.error", "There was a problem with our internal service.", _retry_after(scenario))


async def _refresh_token(request: web.Request) -> web.Response:
    """The OAuth2 token endpoint: grant_type=refresh_token, with rotating refresh tokens."""
    state = request.app[STATE]
    scenario = request.app[SCENARIO]
    form = await request.post()
    if form.get("grant_type") != "refresh_token" or form.get("client_id") != scenario.client_id:
        return web.json_response({"error": "invalid_client", "error_description": "unknown client"}, status=400)
    if form.get("refresh_token") != state.refresh_token:
        return web.json_response(
            {"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."}, status=400
        )
    state.refreshes += 1
    state.access_token = f"{scenario.token}-{state.refreshes}"
    state.token_uses = 0
    if scenario.rotate_refresh_tokens:
        state.refresh_token = f"{scenario.refresh_token}-{state.refreshes}"
    return web.json_response(
        {
            "access_token": state.access_token,
            "refresh_token": state.refresh_token,
            "token_type": "Bearer",
            "expires_in": 86400,
            "scope": "campaign_data offline_access",
        }
    )


async def _get_registration(request: web.Request) -> web.Response:
    state = request.app[STATE]
    scenario = request.app[SCENARIO]
    if not _authorized(request, state, scenario):
        return web.json_response({"error_key": "unauthorized", "error_message": "Unauthorized"}, status=401)
    info = request.match_info
    status = state.status_of(info["event_id"], info["track_id"], info["registration_id"])
    if status is None:
        return _error(404, "registration.not_found", "registration not found")
    return web.json_response({"registration_id": info["registration_id"], "registration_status": status})


@asynccontextmanager
async def running(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve app in the running loop; yields its base URL (ending in /v3)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        bound_port = port or _bound_port(runner)
        yield f"http://{host}:{bound_port}/v3"
    finally:
        await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the sandbox did not bind a TCP port")


def serve(host: str, port: int, scenario: Scenario, registrations: Iterable[tuple[str, str, str, str]]) -> None:
    """Run the sandbox until interrupted (for `batcher sandbox`)."""
    app = make_app(scenario, registrations)
    print(f"sandbox: serving on http://{host}:{port}/v3 (token: {scenario.token}); Ctrl-C stops it", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None)

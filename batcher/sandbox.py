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

from batcher.errors import InputError
from batcher.models import KNOWN_STATUSES

SANDBOX_TOKEN = "sandbox-token"

FLAG_NAMES = ("increase_count", "increase_item_count", "return_items_to_inventory")
MAX_IDS_PER_REQUEST = 500
DEFAULT_RATE_LIMIT_PER_S = 4
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
REGISTRATION_COLUMNS = ("event_id", "track_id", "registration_id")
DEFAULT_REGISTRATIONS = Path(__file__).resolve().parent.parent / "sample_inputs" / "sandbox_registrations.csv"

Key = tuple[str, str]


@dataclass
class Scenario:
    """Scripts the sandbox's behaviour; the defaults behave like the real endpoint."""

    token: str = SANDBOX_TOKEN
    rate_limit_per_s: int | None = DEFAULT_RATE_LIMIT_PER_S  # None: no limit
    latency_s: tuple[float, float] = (0.0, 0.0)  # uniform delay before each answer
    statuses: list[int] = field(default_factory=list)  # answered first, in order, then normal behaviour
    status: int | None = None  # answer every PUT with this status
    retry_after: str | None = None  # Retry-After header on scripted 429/503 answers
    fail_ids: frozenset[str] = frozenset()  # always listed as failed in a 207
    poison_ids: frozenset[str] = frozenset()  # a batch holding one is rejected whole with 400
    error_body: str | None = None  # raw body for scripted error answers, e.g. an HTML proxy page


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the sandbox received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: object
    status: int
    at: float  # time.monotonic() on arrival


@dataclass
class SandboxState:
    """What the sandbox knows and has seen."""

    registrations: dict[Key, dict[str, str]] = field(default_factory=dict)
    events: set[str] = field(default_factory=set)
    requests: list[RecordedRequest] = field(default_factory=list)
    arrivals: deque[float] = field(default_factory=deque)

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
    app[STATE] = state
    app[SCENARIO] = scenario or Scenario()
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
    response = await _answer_put(request, state, scenario, now, payload)
    state.requests.append(
        RecordedRequest("PUT", request.path, dict(request.query), dict(request.headers), payload, response.status, now)
    )
    low, high = scenario.latency_s
    if high > 0:
        await asyncio.sleep(random.uniform(low, high))
    return response


async def _answer_put(
    request: web.Request, state: SandboxState, scenario: Scenario, now: float, payload: object
) -> web.Response:
    if _over_rate_limit(state, scenario, now):
        return _error(429, "throttled", "Too Many Requests")
    if scenario.statuses:
        return _scripted(scenario.statuses.pop(0), scenario)
    if scenario.status is not None:
        return _scripted(scenario.status, scenario)
    if request.headers.get("Authorization") != f"Bearer {scenario.token}":
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
    if not isinstance(ids, list) or not ids or not all(isinstance(item, str) for item in ids):
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
    if scenario.poison_ids & set(ids):
        return _error(400, "registration_id.invalid", "a registration id in the request is not valid")
    failed = [item for item in ids if item not in track or item in scenario.fail_ids]
    for item in ids:
        if item in track and item not in scenario.fail_ids:
            track[item] = str(target)
    if failed:
        return web.json_response({"failed_registration_ids": failed}, status=207)
    return web.Response(status=200)


async def _get_registration(request: web.Request) -> web.Response:
    state = request.app[STATE]
    scenario = request.app[SCENARIO]
    if request.headers.get("Authorization") != f"Bearer {scenario.token}":
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

"""What the sandbox knows: its scenario (scripted behaviour), its registrations and the requests it has seen.

Plain data, no aiohttp; the constants the command line shows live in batcher.defaults.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from batcher.defaults import (
    DEFAULT_MAX_PAGE_SIZE,
    DEFAULT_RATE_LIMIT_PER_S,
    SANDBOX_CLIENT_ID,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_TOKEN,
)

DEFAULT_REGISTRATION_TIME = "2026-01-15T12:00:00.000Z"

Key = tuple[str, str]  # (event_id, track_id)


@dataclass
class Scenario:
    """Scripts the sandbox's behaviour; the defaults behave like the real API.

    The token check, the per-second limit, the daily quota and the latency apply to every API request (reads and
    writes alike, as the API counts every call of a key); the scripted answers and random faults apply to the
    requests whose method is in fault_methods.
    """

    token: str = SANDBOX_TOKEN
    rate_limit_per_s: int | None = DEFAULT_RATE_LIMIT_PER_S  # None: no limit
    latency_s: tuple[float, float] = (0.0, 0.0)  # uniform delay before each answer
    statuses: list[int] = field(default_factory=list)  # answered first, in order, then normal behaviour
    status: int | None = None  # answer every request with this status
    retry_after: str | None = None  # Retry-After header on scripted and random 429/5xx answers
    fail_ids: frozenset[str] = frozenset()  # always listed as failed in a 207
    poison_ids: frozenset[str] = frozenset()  # a batch holding one is rejected whole with 400
    silent_ids: frozenset[str] = frozenset()  # a PUT answers 200 for them but leaves them unchanged
    error_body: str | None = None  # raw body for scripted error answers, e.g. an HTML proxy page
    # Random faults, each a fraction of requests, drawn from one seeded generator; nothing is applied.
    error_rate: float = 0.0  # 500 or 503
    html_errors: bool = False  # those 5xx answers carry an HTML page, as a proxy would send
    reset_rate: float = 0.0  # the connection is dropped without an answer
    stall_rate: float = 0.0  # the answer comes only after stall_s
    stall_s: float = 30.0
    throttle_rate: float = 0.0  # 429 throttled
    throttled_arrivals: frozenset[int] = frozenset()  # these API requests (1-based, as they arrive) answer 429
    fault_methods: frozenset[str] = frozenset({"GET", "PUT"})  # which requests the scripted and random faults hit
    daily_quota: int | None = None  # 429 quota_exceeded once this many requests came in
    token_expires_after: int | None = None  # an access token stops working after this many requests
    refresh_token: str = SANDBOX_REFRESH_TOKEN  # accepted once at the token endpoint
    client_id: str = SANDBOX_CLIENT_ID
    rotate_refresh_tokens: bool = True  # each refresh makes the previous refresh token invalid
    # Reads: a list page holds at most max_page_size records whatever limit asks; page_sizes are served first
    # (one per list answer, each still capped by limit), and short_pages halves every page, so that a client
    # must follow next_cursor rather than infer the end from a short page.
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE
    page_sizes: list[int] = field(default_factory=list)
    short_pages: bool = False
    seed: int | None = None
    # The device flow (RFC 8628): a code is approved at /activate (or by itself after auto_approve_after polls);
    # device_answers are answered first to the device grant's polls, in order (an OAuth error word, or "500" and
    # "garbage" for a broken server); token_lifetime_s is every access token's expires_in.
    device_flow: bool = True  # False: the application may not use the device flow (unauthorized_client)
    device_interval_s: int = 5
    device_expires_s: int = 600
    auto_approve_after: int | None = None
    device_answers: list[str] = field(default_factory=list)
    token_lifetime_s: int = 86_400
    revocation: bool = True  # False: {auth}/revoke answers 404, as a server without one would
    # Hostile answers, for the tests of what a server that is not quite the API does to batcher:
    list_loop: str = ""  # "same": every list page is the first, with the same next_cursor; "new": a new cursor each
    repeat_first_page: bool = False  # every list page holds the first page's records; the cursor still advances
    list_body: str | None = None  # the raw body of every list answer (HTTP 200, application/json)
    put_answer: tuple[int, str, str] | None = None  # (status, content type, body) of every PUT; nothing is applied
    issued_access_token: str | None = None  # the token endpoint issues this access token (characters unchecked)


class Registration(NamedTuple):
    """One registration the sandbox knows, with the fields a list record carries (RegistrantInformationLiteDto).

    A named tuple, not a dataclass: a tuple of strings and numbers leaves the garbage collector's lists, and the
    sandbox of a million-row bench holds a million of them.
    """

    event_id: str
    track_id: str
    registration_id: str
    registration_status: str = "REGISTERED"
    first_name: str = ""
    last_name: str = ""
    email_address: str = ""
    payment_status: str = ""
    registration_time: str = DEFAULT_REGISTRATION_TIME
    tickets: int = 1
    total: float = 0.0

    def details(self) -> tuple[object, ...]:
        """The fields beside the keys and the status."""
        return (
            self.first_name,
            self.last_name,
            self.email_address,
            self.payment_status,
            self.registration_time,
            self.tickets,
            self.total,
        )

    def record(self) -> dict[str, object]:
        """The JSON record of a list page or a single GET (event and track are in the path, not the record)."""
        return {
            "registration_id": self.registration_id,
            "registration_status": self.registration_status,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email_address": self.email_address,
            "payment_status": self.payment_status,
            "registration_time": self.registration_time,
            "tickets": self.tickets,
            "total": self.total,
        }


REGISTRATION_FIELDS = Registration._fields
_NO_DETAILS = Registration("", "", "").details()


def as_registration(item: Registration | tuple[str, ...]) -> Registration:
    """A Registration from itself or from an (event_id, track_id, registration_id[, status]) tuple."""
    if isinstance(item, Registration):
        return item
    event_id, track_id, registration_id, *status = item
    return Registration(event_id, track_id, registration_id, status[0] if status else "REGISTERED")


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
class DeviceLogin:
    """One device authorization the sandbox handed out, and what became of it."""

    device_code: str
    user_code: str
    client_id: str
    created: float  # time.monotonic()
    polls: int = 0
    approved: bool | None = None  # None: not yet decided; False: denied at the page
    granted: bool = False  # its tokens were issued (a device code is good for one grant)


@dataclass
class SandboxState:
    """What the sandbox knows and has seen.

    registrations holds each track's statuses, {registration_id: status} in insertion order (the order of a list
    page); details holds the other fields of the registrations that have any. Events map to their default track:
    the first track seen for them, unless set_default_track says otherwise.
    """

    registrations: dict[Key, dict[str, str]] = field(default_factory=dict)
    details: dict[tuple[str, str, str], Registration] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    arrivals: deque[float] = field(default_factory=deque)
    random: random.Random = field(default_factory=random.Random)
    access_token: str = SANDBOX_TOKEN
    refresh_token: str = SANDBOX_REFRESH_TOKEN
    token_uses: int = 0  # requests authorized with the current access token
    refreshes: int = 0
    quota_used: int = 0  # requests counted against the daily quota
    devices: dict[str, DeviceLogin] = field(default_factory=dict)  # by device_code
    logins: int = 0  # device grants that issued tokens
    revoked: list[str] = field(default_factory=list)  # tokens revoked at {auth}/revoke
    arrived: int = 0  # API requests that arrived, answered or not
    positions: dict[Key, list[str]] = field(default_factory=dict)  # per track, its ids in list order (see ids_in)

    def add(self, event_id: str, track_id: str, registration_id: str, status: str = "REGISTERED") -> None:
        """Know a registration (IDs are kept lower-case, track keys as given)."""
        event_id, registration_id = event_id.lower(), registration_id.lower()
        self.events.setdefault(event_id, track_id)
        track = self.registrations.setdefault((event_id, track_id), {})
        if registration_id not in track:
            self.positions.pop((event_id, track_id), None)  # a new registration: the index is made again when read
        track[registration_id] = status

    def add_registration(self, registration: Registration | tuple[str, ...]) -> None:
        """Know a registration with its details."""
        item = as_registration(registration)
        if item.event_id != item.event_id.lower() or item.registration_id != item.registration_id.lower():
            item = item._replace(event_id=item.event_id.lower(), registration_id=item.registration_id.lower())
        self.add(item.event_id, item.track_id, item.registration_id, item.registration_status)
        key = (item.event_id.lower(), item.track_id, item.registration_id.lower())
        if item.details() != _NO_DETAILS:
            self.details[key] = item
        else:
            self.details.pop(key, None)

    def add_all(self, registrations: Iterable[Registration | tuple[str, ...]]) -> None:
        for item in registrations:
            if type(item) is tuple:  # (event_id, track_id, registration_id[, status]): no details to keep
                self.add(*item)
            else:
                self.add_registration(item)

    def status_of(self, event_id: str, track_id: str, registration_id: str) -> str | None:
        return self.registrations.get((event_id, track_id), {}).get(registration_id)

    def set_status(self, event_id: str, track_id: str, registration_id: str, status: str) -> None:
        """Change a known registration's status, as someone else would between two reads.

        Raises:
            KeyError: the sandbox does not know the registration.
        """
        track = self.registrations[(event_id.lower(), track_id)]
        registration_id = registration_id.lower()
        if registration_id not in track:
            raise KeyError(registration_id)
        track[registration_id] = status

    def ids_in(self, event_id: str, track_id: str) -> list[str]:
        """A track's registration ids in list order, as an index kept between pages: a page of a track of 100,000
        costs a slice, not a pass over the track. Made again after a registration is added or removed."""
        key = (event_id, track_id)
        track = self.registrations.get(key, {})
        ids = self.positions.get(key)
        if ids is None or len(ids) != len(track):
            ids = self.positions[key] = list(track)
        return ids

    def set_default_track(self, event_id: str, track_id: str) -> None:
        self.events[event_id.lower()] = track_id

    def registration(self, event_id: str, track_id: str, registration_id: str) -> Registration | None:
        """The registration with its current status, or None when the sandbox does not know it."""
        status = self.status_of(event_id, track_id, registration_id)
        if status is None:
            return None
        known = self.details.get((event_id, track_id, registration_id))
        if known is None:
            return Registration(event_id, track_id, registration_id, status)
        return known if known.registration_status == status else known._replace(registration_status=status)

    def track(self, event_id: str, track_id: str) -> Iterator[Registration]:
        """Every registration of a track, in insertion order, with its current status."""
        for registration_id in list(self.registrations.get((event_id, track_id), {})):
            found = self.registration(event_id, track_id, registration_id)
            if found is not None:
                yield found

    @property
    def puts(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.method == "PUT"]

    @property
    def reads(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.method == "GET"]

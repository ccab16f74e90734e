"""The sandbox's reads: an event (with its default track), a track's registrations in cursor pages, one registration.

Shaped as the "Reading" section of ../shared/API.md and spec/ctct-v3-events-read.openapi.yaml say. The token check,
limits, latency and faults are the guard's (sandbox.py), applied before these handlers run.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass, replace
from urllib.parse import quote

from aiohttp import web

from batcher.sandbox.state import Registration, SandboxState, Scenario

DEFAULT_LIMIT = 50
# The published filter enum, typo included: "IN_PROGRESS, FAILED" is one value, taken to mean either status.
STATUS_FILTERS = {
    "PENDING": {"PENDING"},
    "REGISTERED": {"REGISTERED"},
    "CANCELED": {"CANCELED"},
    "EXPIRED": {"EXPIRED"},
    "IN_PROGRESS, FAILED": {"IN_PROGRESS", "FAILED"},
}
PAYMENT_FILTERS = frozenset({"PENDING", "PAID", "REFUNDED", "CANCELLED", "FAILED", "CHARGED_BACK"})
SORT_FIELDS = frozenset(
    {"first_name", "last_name", "email_address", "registration_status", "payment_status", "tickets", "total"}
)


def error(status: int, key: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """The API's error answer: a JSON array of {error_key, error_message}."""
    return web.json_response([{"error_key": key, "error_message": message}], status=status, headers=headers)


def _unknown_event(event_id: str) -> web.Response:
    return error(404, "event.not_found", f"event {event_id} was not found")


def _unknown_track(event_id: str, track_id: str) -> web.Response:
    return error(404, "track.not_found", f"track {track_id} was not found in event {event_id}")


def missing_group(state: SandboxState, event_id: str, track_id: str) -> web.Response | None:
    """The 404 for an unknown event or an unknown track of a known event; None when both exist."""
    if event_id not in state.events:
        return _unknown_event(event_id)
    if (event_id, track_id) not in state.registrations:
        return _unknown_track(event_id, track_id)
    return None


def event_body(event_id: str, default_track: str) -> dict[str, object]:
    """An EventDto with the required fields and default_track."""
    return {
        "event_id": event_id,
        "campaign_id": event_id,
        "name": f"Sandbox event {event_id[:8]}",
        "title": f"Sandbox event {event_id[:8]}",
        "description": "An event of the batcher sandbox.",
        "event_type": "OTHER",
        "location_type": "PHYSICAL",
        "status": "ACTIVE",
        "time_zone": "UTC",
        "event_start": "2026-12-01T18:00:00Z",
        "event_end": "2026-12-01T22:00:00Z",
        "default_track": {"track_id": default_track, "campaign_activity_id": event_id},
    }


async def get_event(request: web.Request, state: SandboxState, scenario: Scenario) -> web.Response:
    event_id = request.match_info["event_id"]
    default_track = state.events.get(event_id)
    if default_track is None:
        return _unknown_event(event_id)
    return web.json_response(event_body(event_id, default_track))


async def get_registration(request: web.Request, state: SandboxState, scenario: Scenario) -> web.Response:
    info = request.match_info
    event_id, track_id, registration_id = info["event_id"], info["track_id"], info["registration_id"]
    missing = missing_group(state, event_id, track_id)
    if missing is not None:
        return missing
    found = state.registration(event_id, track_id, registration_id)
    if found is None:
        return error(404, "registration.not_found", f"registration {registration_id} was not found in track {track_id}")
    return web.json_response(found.record())


@dataclass(frozen=True)
class ListQuery:
    """What a list request asks for; a next cursor carries all of it, so a cursor alone asks for the next page."""

    event_id: str
    track_id: str
    limit: int
    registration_status: str = ""
    payment_status: str = ""
    search_text: str = ""
    sort_by: str = ""
    sort_order: str = "ASC"
    after: int = -1  # the position of the previous page's last record in the track's order
    nonce: int = 0  # Scenario.list_loop "new": makes each cursor of an endless list a new one

    def cursor(self, after: int) -> str:
        data = json.dumps({**asdict(self), "after": after}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    def matches(self, item: Registration) -> bool:
        if self.registration_status and item.registration_status not in STATUS_FILTERS[self.registration_status]:
            return False
        if self.payment_status and item.payment_status != self.payment_status:
            return False
        if self.search_text:
            text = self.search_text.casefold()
            names = (item.first_name, item.last_name, item.email_address)
            return any(text in name.casefold() for name in names)
        return True


class _BadQuery(Exception):
    """A list request the API would answer with 400."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _from_cursor(text: str, event_id: str, track_id: str) -> ListQuery:
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        query = ListQuery(**data)
    except (ValueError, TypeError, binascii.Error):
        raise _BadQuery("next.invalid", "next is not a cursor this API gave") from None
    if (query.event_id, query.track_id) != (event_id, track_id):
        raise _BadQuery("next.invalid", "next is a cursor of another event or track")
    return query


def _from_parameters(request: web.Request, event_id: str, track_id: str) -> ListQuery:
    query = request.query
    limit_text, size_text = query.get("limit"), query.get("page_size")
    if limit_text is not None and size_text is not None and limit_text != size_text:
        raise _BadQuery("page_size.invalid", "limit and page_size must be the same value when both are given")
    text = limit_text if limit_text is not None else size_text
    try:
        limit = int(text) if text is not None else DEFAULT_LIMIT
    except ValueError:
        limit = 0
    if limit < 1:
        raise _BadQuery("limit.invalid", "limit must be a positive whole number")
    status = query.get("registration_status", "")
    payment = query.get("payment_status", "")
    sort_by, sort_order = query.get("sort_by", ""), query.get("sort_order", "ASC")
    for name, value, allowed in (
        ("registration_status", status, STATUS_FILTERS),
        ("payment_status", payment, PAYMENT_FILTERS),
        ("sort_by", sort_by, SORT_FIELDS),
        ("sort_order", sort_order, {"ASC", "DESC"}),
    ):
        if value and value not in allowed:
            raise _BadQuery(f"{name}.invalid", f"{name} does not have a valid value")
    return ListQuery(event_id, track_id, limit, status, payment, query.get("search_text", ""), sort_by, sort_order)


def _page_size(query: ListQuery, scenario: Scenario) -> int:
    size = min(query.limit, scenario.max_page_size)
    if scenario.page_sizes:
        size = min(size, max(0, scenario.page_sizes.pop(0)))
    if scenario.short_pages:
        size = max(1, size // 2)
    return size


def _ordered(state: SandboxState, query: ListQuery) -> list[Registration]:
    records = list(state.track(query.event_id, query.track_id))
    if query.sort_by:
        records.sort(
            key=lambda item: _sort_key(getattr(item, query.sort_by)),
            reverse=query.sort_order == "DESC",
        )
    return records


def _sort_key(value: object) -> tuple[float, str]:
    if isinstance(value, int | float):
        return float(value), ""
    return 0.0, str(value).casefold()


def _page(state: SandboxState, query: ListQuery, size: int) -> tuple[list[tuple[int, Registration]], int, bool]:
    """(the page's (position, registration) pairs, the records matching, whether more follow).

    Without a filter or a sort, the page is a slice of the track's index: it costs a page, whatever the track's size.
    A filter or a sort still goes over the whole track.
    """
    if not (query.sort_by or query.registration_status or query.payment_status or query.search_text):
        ids = state.ids_in(query.event_id, query.track_id)
        start = query.after + 1
        page = []
        for position, registration_id in enumerate(ids[start : start + size], start=start):
            found = state.registration(query.event_id, query.track_id, registration_id)
            if found is not None:
                page.append((position, found))
        return page, len(ids), start + size < len(ids)
    matching = [(position, item) for position, item in enumerate(_ordered(state, query)) if query.matches(item)]
    later = [(position, item) for position, item in matching if position > query.after]
    return later[:size], len(matching), len(later) > size


async def list_registrations(request: web.Request, state: SandboxState, scenario: Scenario) -> web.Response:
    event_id, track_id = request.match_info["event_id"], request.match_info["track_id"]
    missing = missing_group(state, event_id, track_id)
    if missing is not None:
        return missing
    try:
        if "next" in request.query and "prev" in request.query:
            raise _BadQuery("cursor.invalid", "next and prev are mutually exclusive")
        cursor = request.query.get("next")
        query = _from_cursor(cursor, event_id, track_id) if cursor else _from_parameters(request, event_id, track_id)
    except _BadQuery as bad:
        return error(400, bad.key, str(bad))
    if scenario.list_body is not None:
        return web.Response(status=200, text=scenario.list_body, content_type="application/json")
    size = _page_size(query, scenario)
    page, total, more = _page(state, query, size)
    # hostile scenarios: every page holds the first page's records
    served = (
        _page(state, replace(query, after=-1), size)[0] if scenario.list_loop or scenario.repeat_first_page else page
    )
    body: dict[str, object] = {"records": [item.record() for _, item in served], "total_records": total}
    links: dict[str, object] = {"self": {"href": request.path_qs}}
    if scenario.list_loop:  # a list that never ends: the first page again and again, always with a next cursor
        nonce = query.nonce + 1 if scenario.list_loop == "new" else 0
        next_cursor = replace(query, nonce=nonce).cursor(-1)
        body["next_cursor"] = next_cursor
        links["next"] = {"href": f"{request.path}?next={quote(next_cursor)}"}
    elif more:
        after = page[-1][0] if page else query.after
        next_cursor = query.cursor(after)
        body["next_cursor"] = next_cursor
        links["next"] = {"href": f"{request.path}?next={quote(next_cursor)}"}
    body["_links"] = links
    return web.json_response(body)

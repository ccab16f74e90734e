"""The read endpoints in pure code: their URLs and queries, and their answers parsed into plain values.

An event (for its default track), a page of a track's registrations, and one registration. No sockets here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from batcher.models import Record

# the list's registration_status filter takes only these (the spec's enum has "IN_PROGRESS, FAILED" as one value)
FILTERABLE_STATUSES = frozenset({"PENDING", "REGISTERED", "CANCELED", "EXPIRED"})
REQUESTED_PAGE_SIZE = 100  # asked for; the server may answer fewer, and its answer is what counts


class UnexpectedAnswer(ValueError):
    """A 200 answer whose body is not what the API describes."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a track's registrations."""

    records: tuple[Record, ...]
    total_records: int | None  # every record matching the filters, not just this page
    next_cursor: str  # empty on the last page


@dataclass(frozen=True, slots=True)
class ListFilters:
    """The list's server-side filters; None means not given."""

    registration_status: str | None = None
    payment_status: str | None = None
    search_text: str | None = None


def event_url(base_url: str, event_id: str) -> str:
    return f"{base_url.rstrip('/')}/events/{quote(event_id, safe='')}"


def list_url(base_url: str, event_id: str, track_id: str) -> str:
    return f"{event_url(base_url, event_id)}/tracks/{quote(track_id, safe='')}/registrations"


def registration_url(base_url: str, event_id: str, track_id: str, registration_id: str) -> str:
    return f"{list_url(base_url, event_id, track_id)}/{quote(registration_id, safe='')}"


def list_params(filters: ListFilters, cursor: str, *, page_size: int = REQUESTED_PAGE_SIZE) -> dict[str, str]:
    """The query of one list request; a status the filter cannot take is left for the caller to sift."""
    params = {"limit": str(page_size)}
    if filters.registration_status in FILTERABLE_STATUSES:
        params["registration_status"] = str(filters.registration_status)
    if filters.payment_status:
        params["payment_status"] = filters.payment_status
    if filters.search_text:
        params["search_text"] = filters.search_text
    if cursor:
        params["next"] = cursor
    return params


def parse_page(body: bytes) -> Page:
    """A list answer as a Page.

    Raises:
        UnexpectedAnswer: the body is not a list answer.
    """
    data = _json_object(body, "a page of registrations")
    records = data.get("records", [])
    if not isinstance(records, list):
        raise UnexpectedAnswer("a page of registrations whose records is not a list")
    total = data.get("total_records")
    cursor = data.get("next_cursor")
    return Page(
        records=tuple(_record(item) for item in records),
        total_records=total if isinstance(total, int) and not isinstance(total, bool) else None,
        next_cursor=cursor if isinstance(cursor, str) else "",
    )


def parse_registration(body: bytes) -> Record:
    """A single-registration answer as a Record.

    Raises:
        UnexpectedAnswer: the body is not a registration.
    """
    return _record(_json_object(body, "a registration"))


def parse_default_track(body: bytes) -> str:
    """The track key of an event's default track.

    Raises:
        UnexpectedAnswer: the body is not an event with a default track.
    """
    data = _json_object(body, "an event")
    track = data.get("default_track")
    track_id = track.get("track_id") if isinstance(track, Mapping) else None
    if not isinstance(track_id, str) or not track_id:
        raise UnexpectedAnswer("an event without default_track.track_id")
    return track_id


def _json_object(body: bytes, what: str) -> Mapping[str, object]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise UnexpectedAnswer(f"{what} that is not JSON") from None
    if not isinstance(data, dict):
        raise UnexpectedAnswer(f"{what} that is not a JSON object")
    return data


def _record(item: object) -> Record:
    if not isinstance(item, Mapping):
        raise UnexpectedAnswer("a registration record that is not a JSON object")
    registration_id = item.get("registration_id")
    if not isinstance(registration_id, str) or not registration_id:
        raise UnexpectedAnswer("a registration record without registration_id")
    return Record(
        registration_id=registration_id.lower(),
        registration_status=_text(item.get("registration_status")).upper(),
        first_name=_text(item.get("first_name")),
        last_name=_text(item.get("last_name")),
        email_address=_text(item.get("email_address")),
        payment_status=_text(item.get("payment_status")),
        registration_time=_text(item.get("registration_time")),
        tickets=_text(item.get("tickets")) if not isinstance(item.get("tickets"), list) else "",
        total=_text(item.get("total")),
    )


def _text(value: object) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

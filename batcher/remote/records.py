"""The read endpoints in pure code: their URLs and queries, and their answers parsed into plain values.

An event (for its default track), a page of a track's registrations, and one registration. No sockets here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from batcher.http.api import parse_json
from batcher.models import Record
from batcher.support.text import printable
from batcher.support.words import number, plural

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
        data = parse_json(body)
    except ValueError:
        raise UnexpectedAnswer(f"{what} that is not readable JSON") from None
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
        registration_id=printable(registration_id.lower()),
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
    """A field as text; a server's control characters (ANSI escapes, BEL, U+202E) come out escaped."""
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return printable(str(value))


ENDLESS = "the API's list of registrations did not end"


@dataclass
class PageGuard:
    """Watches one listing's pages for a list that never ends or repeats itself (a server's bug, or not the API).

    A listing stops when a cursor comes back, a page brings no registration not seen before, or more records
    arrived than total_records; a listing that ended holds duplicates, or fewer registrations than its total.
    """

    cursors: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    records: int = 0
    duplicates: int = 0
    total: int | None = None  # the largest total_records any page gave

    def take(self, page: Page, cursor: str) -> str:
        """Count page (asked for with cursor); "" when the listing may go on or ended well, else why to stop."""
        self.cursors.add(cursor)
        before = len(self.ids)
        self.ids.update(record.registration_id for record in page.records)
        new = len(self.ids) - before
        self.duplicates += len(page.records) - new
        self.records += len(page.records)
        if page.total_records is not None:
            self.total = max(self.total or 0, page.total_records)
        if not page.next_cursor:
            return ""
        if page.next_cursor in self.cursors:
            return f"{ENDLESS}: it sent a cursor it had sent before"
        if new == 0:
            return f"{ENDLESS}: a page repeated records already seen and brought no new one"
        if self.total is not None and self.records > self.total:
            return f"{ENDLESS}: it sent more records than its total_records ({self.total})"
        return ""

    @property
    def incomplete(self) -> str:
        """Why a listing that ended cannot be taken as whole ("" when it can): duplicates, or a short count."""
        if self.duplicates:
            return (
                f"the API's list of registrations repeated records across pages ({self.duplicates} seen again), "
                f"so it may have skipped others"
            )
        if self.total is not None and len(self.ids) < self.total:
            return (
                f"the API's list of registrations ended with {plural(len(self.ids), 'registration')} of the "
                f"{number(self.total)} it announced"
            )
        return ""

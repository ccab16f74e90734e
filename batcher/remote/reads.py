"""Reads of the API: the current status of the registrations a run touches, a track's whole list, a default track.

Every read goes through the run's one client (its pace, quota, retries and token). Per track the cheaper
of two ways is chosen as the answers come in, so a track never costs more than `1 + min(pages - 1, rows)`
requests: list pages (following `next_cursor`, trusting only the page size the server really returns)
or one GET per registration still unknown.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from batcher.errors import RunStopped
from batcher.http.api import Verdict
from batcher.models import EVENT_NOT_FOUND, TRACK_NOT_FOUND, Record, TrackRead
from batcher.remote import records
from batcher.remote.records import ListFilters, Page, PageGuard, UnexpectedAnswer
from batcher.support import hints

if TYPE_CHECKING:
    from batcher.http.client import ApiClient

NO_FILTERS = ListFilters()


def not_read_hint() -> str:
    """What to do about a track that could not be read, in the options of the command being run."""
    return hints.rerun() + hints.offer("--no-snapshot", ", or add --no-snapshot to send without reading")


PageCallback = Callable[[int, int | None], None]  # (records on this page, total_records)


@dataclass(frozen=True, slots=True)
class ReadAnswer:
    """A read's final answer, after the client's retries: 200 with a body, 404, or a failure."""

    http_status: int | None
    body: bytes = b""
    error: str = ""  # set when the read failed for good (not for 404)

    @property
    def ok(self) -> bool:
        return self.http_status == 200 and not self.error

    @property
    def not_found(self) -> bool:
        return self.http_status == 404


class Getter(Protocol):
    """One GET through the run's client. Raises RunStopped when no further request can succeed."""

    async def __call__(self, url: str, params: Mapping[str, str]) -> ReadAnswer: ...


def getter(client: ApiClient) -> Getter:
    """GETs through client: its pace, quota, retries and token; a stop of the run is raised as its error."""

    async def get(url: str, params: Mapping[str, str]) -> ReadAnswer:
        reply = await client.call("GET", url, params=params, label="read")
        answer = reply.answer
        if answer is None:
            raise client.stopped or RunStopped("the run was stopped before the reads were done")
        if answer.verdict is Verdict.OK:
            return ReadAnswer(200, answer.body)
        if answer.verdict is Verdict.FAIL_GROUP:
            return ReadAnswer(404)
        return ReadAnswer(answer.http_status, error=answer.error or f"HTTP {answer.http_status}")

    return get


@dataclass
class _Cost:
    """What the reads of one track spent, and how many listed records they saw."""

    requests: int = 0
    records_seen: int = 0


def next_step(*, missing: int, records_left: int | None, page_size: int, has_next: bool) -> str:
    """After a list page: "done", "list" (another page) or "get" (one GET per missing id).

    A page whose size is unknown, or a total not given, makes listing look endless, so GETs win.
    """
    if missing == 0 or not has_next:
        return "done"  # the list is whole: an id it does not hold does not exist (the PUT has the last word)
    if records_left is None or page_size <= 0:
        return "get"
    pages_left = math.ceil(max(records_left, 1) / page_size)
    return "list" if pages_left <= missing else "get"


def read_bound(rows: int) -> int:
    """The most requests reading rows registrations of one track can take, before anything is known."""
    return 0 if rows == 0 else 1 if rows == 1 else 1 + rows


async def read_track(
    get: Getter,
    base_url: str,
    event_id: str,
    track_id: str,
    wanted: Collection[str],
    *,
    on_page: PageCallback | None = None,
) -> TrackRead:
    """The current records of the wanted registration ids of one track, at the least cost.

    Raises:
        RunStopped: from the client (401 that cannot be mended, 403, quota, a base URL that is not the API).
    """
    cost = _Cost()
    wanted_ids = set(wanted)
    found: dict[str, Record] = {}
    if len(wanted_ids) == 1:
        return await _get_each(get, base_url, event_id, track_id, wanted_ids, found, cost)
    cursor = ""
    guard = PageGuard()
    while True:
        answer = await _get(
            get, cost, records.list_url(base_url, event_id, track_id), records.list_params(NO_FILTERS, cursor)
        )
        if not answer.ok:
            return await _failed(get, base_url, event_id, track_id, answer, found, cost)
        page = _page(answer)
        if page is None:
            failure = _unreadable("a page of registrations")
            return TrackRead(event_id, track_id, found, cost.requests, failure=failure)
        for record in page.records:
            if record.registration_id in wanted_ids:
                found[record.registration_id] = record
        cost.records_seen += len(page.records)
        left = None if page.total_records is None else page.total_records - cost.records_seen
        if on_page is not None:
            on_page(len(page.records), page.total_records)
        broken = guard.take(page, cursor) or ("" if page.next_cursor else guard.incomplete)
        if broken:
            # the list cannot be trusted to hold every registration: what it did not show is read one by one
            missing = wanted_ids - found.keys()
            if not missing:
                return TrackRead(event_id, track_id, found, cost.requests)
            if cost.requests + len(missing) > read_bound(len(wanted_ids)):
                failure = f"{broken}; not read within this track's read bound; {not_read_hint()}"
                return TrackRead(event_id, track_id, found, cost.requests, failure=failure)
            return await _get_each(get, base_url, event_id, track_id, missing, found, cost)
        step = next_step(
            missing=len(wanted_ids) - len(found),
            records_left=left,
            page_size=len(page.records),
            has_next=bool(page.next_cursor),
        )
        if step == "done":
            return TrackRead(event_id, track_id, found, cost.requests)
        if step == "get":
            return await _get_each(get, base_url, event_id, track_id, wanted_ids - found.keys(), found, cost)
        cursor = page.next_cursor


async def list_track(
    get: Getter,
    base_url: str,
    event_id: str,
    track_id: str,
    filters: ListFilters = NO_FILTERS,
    *,
    on_page: PageCallback | None = None,
) -> TrackListing:
    """Every record of a track that matches filters, page by page.

    Raises:
        RunStopped: from the client.
    """
    cost = _Cost()
    listed: list[Record] = []
    total: int | None = None
    cursor = ""
    guard = PageGuard()
    while True:
        answer = await _get(
            get, cost, records.list_url(base_url, event_id, track_id), records.list_params(filters, cursor)
        )
        if not answer.ok:
            failed = await _failed(get, base_url, event_id, track_id, answer, {}, cost)
            return TrackListing(
                event_id, track_id, tuple(listed), total, failed.requests, failed.failure, failed.group_missing
            )
        page = _page(answer)
        if page is None:
            return TrackListing(event_id, track_id, tuple(listed), total, cost.requests, _unreadable("a page"))
        if total is None:
            total = page.total_records
        listed.extend(page.records)
        if on_page is not None:
            on_page(len(page.records), page.total_records)
        broken = guard.take(page, cursor) or ("" if page.next_cursor else guard.incomplete)
        if broken:  # a listing that cannot be trusted whole is no listing: the caller fails the track
            failure = f"{broken}; {not_read_hint()}"
            return TrackListing(event_id, track_id, tuple(listed), total, cost.requests, failure)
        if not page.next_cursor:
            return TrackListing(event_id, track_id, tuple(listed), total, cost.requests)
        cursor = page.next_cursor


@dataclass(frozen=True, slots=True)
class TrackListing:
    """A track's records as listed."""

    event_id: str
    track_id: str
    records: tuple[Record, ...]
    total_records: int | None
    requests: int
    failure: str = ""
    group_missing: bool = False


@dataclass(frozen=True, slots=True)
class DefaultTrack:
    """An event's default track, or why it is not known."""

    event_id: str
    track_id: str = ""
    failure: str = ""
    requests: int = 1


async def read_default_track(get: Getter, base_url: str, event_id: str) -> DefaultTrack:
    """The track key of the event's default track (one request).

    Raises:
        RunStopped: from the client.
    """
    answer = await get(records.event_url(base_url, event_id), {})
    if answer.not_found:
        return DefaultTrack(event_id, failure=EVENT_NOT_FOUND)
    if not answer.ok:
        return DefaultTrack(event_id, failure=f"could not read the event ({answer.error or answer.http_status})")
    try:
        return DefaultTrack(event_id, records.parse_default_track(answer.body))
    except UnexpectedAnswer as exc:
        return DefaultTrack(event_id, failure=_unreadable(str(exc).removeprefix("an ")))


async def _get_each(
    get: Getter,
    base_url: str,
    event_id: str,
    track_id: str,
    ids: Collection[str],
    found: dict[str, Record],
    cost: _Cost,
) -> TrackRead:
    """One GET per id, all at once (the client paces them); a 404 means that registration does not exist."""

    async def one(registration_id: str) -> ReadAnswer:
        return await _get(get, cost, records.registration_url(base_url, event_id, track_id, registration_id), {})

    ordered = sorted(ids)
    answers = await asyncio.gather(*(one(registration_id) for registration_id in ordered))
    failures = [answer for answer in answers if not answer.ok and not answer.not_found]
    for registration_id, answer in zip(ordered, answers, strict=True):
        if answer.ok:
            try:
                record = records.parse_registration(answer.body)
            except UnexpectedAnswer:
                failures.append(answer)
                continue
            found[registration_id] = replace(record, registration_id=registration_id)
    if failures:
        first = failures[0]
        return TrackRead(event_id, track_id, found, cost.requests, failure=_read_failed(first))
    if not found and answers:
        # every id answered 404: the registrations, or their track or event, do not exist; one list page tells
        probe = await _get(
            get, cost, records.list_url(base_url, event_id, track_id), records.list_params(NO_FILTERS, "")
        )
        if probe.not_found:
            return await _failed(get, base_url, event_id, track_id, probe, found, cost)
    return TrackRead(event_id, track_id, found, cost.requests)


async def _failed(
    get: Getter,
    base_url: str,
    event_id: str,
    track_id: str,
    answer: ReadAnswer,
    found: dict[str, Record],
    cost: _Cost,
) -> TrackRead:
    if not answer.not_found:
        return TrackRead(event_id, track_id, found, cost.requests, failure=_read_failed(answer))
    # the list's 404 does not say whether the event or the track is unknown: the event's GET does
    event = await _get(get, cost, records.event_url(base_url, event_id), {})
    failure = EVENT_NOT_FOUND if event.not_found else TRACK_NOT_FOUND
    return TrackRead(event_id, track_id, found, cost.requests, failure=failure, group_missing=True)


async def _get(get: Getter, cost: _Cost, url: str, params: Mapping[str, str]) -> ReadAnswer:
    cost.requests += 1
    return await get(url, params)


def _page(answer: ReadAnswer) -> Page | None:
    try:
        return records.parse_page(answer.body)
    except UnexpectedAnswer:
        return None


def _read_failed(answer: ReadAnswer) -> str:
    reason = answer.error or f"HTTP {answer.http_status}"
    return f"could not read the current status ({reason}); {not_read_hint()}"


def _unreadable(what: str) -> str:
    return f"the API answered {what} batcher cannot read; {not_read_hint()}"

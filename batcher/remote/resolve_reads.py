"""Reads for the resolve stage: the registrations of one track that hold some emails, at the least cost.

One email: one `search_text` list. More: the first page of the whole list says how many pages are left; then
either the rest of the list or one search per email, whichever costs fewer requests, so a track never costs more
than `1 + min(pages - 1, emails)` (resolution_bound). Every read goes through the run's Getter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace

from batcher.models import EVENT_NOT_FOUND, TRACK_NOT_FOUND, Record, TrackRead
from batcher.remote import records
from batcher.remote.reads import DefaultTrack, Getter, ReadAnswer
from batcher.remote.records import ListFilters, Page, PageGuard, UnexpectedAnswer

TrackKey = tuple[str, str]
NOT_READ = "could not read the registrations of track {track} ({reason}); re-run with --resume"


@dataclass(frozen=True, slots=True)
class TrackEmails:
    """What the reads of one track found for its emails."""

    event_id: str
    track_id: str
    by_email: Mapping[str, tuple[str, ...]]  # email (lower case, trimmed) -> registration ids holding it
    read: TrackRead  # every record seen (found), for the snapshot
    complete: bool  # the whole list was read: read.found holds every registration of the track


def resolution_bound(pages: int, rows: int) -> int:
    """The most requests the emails of one track may cost: 1 + min(pages - 1, rows)."""
    return 0 if rows == 0 else 1 + min(pages - 1, rows)


async def read_emails(
    get: Getter, base_url: str, key: TrackKey, emails: set[str], default_of: Mapping[str, DefaultTrack]
) -> TrackEmails:
    """The registrations of one track holding these emails, at the least cost (see resolution_bound).

    One email: one search. More: the first page of the whole list says how many pages are left; then either the
    rest of the list or one search per email, whichever costs fewer requests.
    """
    event_known = key[0] in default_of  # the event was read: a 404 of the list is its track's
    if len(emails) == 1:
        return await _searched(get, base_url, key, emails, event_known)
    listing = await _pages(get, base_url, key, ListFilters(), event_known, stop_after_first=True)
    if listing.failure or not listing.cursor:
        return _emails_of(key, listing, complete=not listing.failure)
    pages_left = math.ceil(max(listing.left or 0, 1) / max(listing.page_size, 1)) if listing.left is not None else 0
    if listing.left is not None and listing.page_size > 0 and pages_left <= len(emails):
        rest = await _pages(get, base_url, key, ListFilters(), event_known, cursor=listing.cursor)
        return _emails_of(key, listing.then(rest), complete=not rest.failure)
    searched = await _searched(get, base_url, key, emails, event_known)
    return replace(searched, read=replace(searched.read, requests=searched.read.requests + listing.requests))


async def _searched(get: Getter, base_url: str, key: TrackKey, emails: set[str], event_known: bool) -> TrackEmails:
    listings = await asyncio.gather(
        *(_pages(get, base_url, key, ListFilters(search_text=email), event_known) for email in sorted(emails))
    )
    merged = _Listing()
    for listing in listings:
        merged = merged.then(listing)
    return _emails_of(key, merged, complete=False)


@dataclass(frozen=True, slots=True)
class _Listing:
    """Pages read of one track: their records, what they cost, and where they stopped."""

    records: tuple[Record, ...] = ()
    requests: int = 0
    failure: str = ""
    group_missing: bool = False
    cursor: str = ""  # where to go on; "" when the list was read to its end
    left: int | None = None  # records not read yet, by total_records
    page_size: int = 0  # the size of the first page, as served

    def then(self, other: _Listing) -> _Listing:
        return dataclasses.replace(
            other,
            records=self.records + other.records,
            requests=self.requests + other.requests,
            failure=self.failure or other.failure,
            group_missing=self.group_missing or other.group_missing,
        )


async def _pages(
    get: Getter,
    base_url: str,
    key: TrackKey,
    filters: ListFilters,
    event_known: bool,
    *,
    cursor: str = "",
    stop_after_first: bool = False,
) -> _Listing:
    event_id, track_id = key
    seen: list[Record] = []
    requests = 0
    guard = PageGuard()
    while True:
        requests += 1
        answer = await get(records.list_url(base_url, event_id, track_id), records.list_params(filters, cursor))
        if not answer.ok:
            failure, missing, extra = await _list_failed(get, base_url, event_id, track_id, answer, event_known)
            return _Listing(tuple(seen), requests + extra, failure, missing)
        page = _page(answer)
        if page is None:
            return _Listing(tuple(seen), requests, NOT_READ.format(track=track_id, reason="an answer it cannot read"))
        broken = guard.take(page, cursor)
        if broken:
            return _Listing(tuple(seen), requests, NOT_READ.format(track=track_id, reason=broken))
        seen.extend(page.records)
        if not page.next_cursor or stop_after_first:
            left = None if page.total_records is None else page.total_records - len(seen)
            return _Listing(tuple(seen), requests, cursor=page.next_cursor, left=left, page_size=len(page.records))
        cursor = page.next_cursor


async def _list_failed(
    get: Getter, base_url: str, event_id: str, track_id: str, answer: ReadAnswer, event_known: bool
) -> tuple[str, bool, int]:
    """(failure, the event or track is missing, requests spent finding out which)."""
    if not answer.not_found:
        return NOT_READ.format(track=track_id, reason=answer.error or f"HTTP {answer.http_status}"), False, 0
    if event_known:
        return TRACK_NOT_FOUND, True, 0
    event = await get(records.event_url(base_url, event_id), {})
    return (EVENT_NOT_FOUND if event.not_found else TRACK_NOT_FOUND), True, 1


def _page(answer: ReadAnswer) -> Page | None:
    try:
        return records.parse_page(answer.body)
    except UnexpectedAnswer:
        return None


def _emails_of(key: TrackKey, listing: _Listing, *, complete: bool) -> TrackEmails:
    holders: dict[str, list[str]] = defaultdict(list)
    found: dict[str, Record] = {}
    for record in listing.records:
        if record.registration_id in found:
            continue  # two searches may both return one registration
        found[record.registration_id] = record
        holders[record.email_address.strip().lower()].append(record.registration_id)
    read = TrackRead(key[0], key[1], found, listing.requests, listing.failure, listing.group_missing)
    by_email = {email: tuple(ids) for email, ids in holders.items()}
    return TrackEmails(key[0], key[1], by_email, read, complete)

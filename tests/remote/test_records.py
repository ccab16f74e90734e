"""The read endpoints' pure parts: URLs, queries and the parsing of their answers."""

from __future__ import annotations

import json

import pytest

from batcher.remote.records import (
    ListFilters,
    UnexpectedAnswer,
    list_params,
    list_url,
    parse_default_track,
    parse_page,
    parse_registration,
    registration_url,
)

EVENT = "07216444-4e3b-41ea-a3b8-5a418fce41f4"


def test_urls_percent_encode_every_path_value() -> None:
    assert list_url("https://x/v3/", EVENT, "../a") == f"https://x/v3/events/{EVENT}/tracks/..%2Fa/registrations"
    assert registration_url("https://x/v3", EVENT, "t1", "a/b").endswith("/tracks/t1/registrations/a%2Fb")


@pytest.mark.parametrize(
    ("filters", "cursor", "expected"),
    [
        (ListFilters(), "", {"limit": "100"}),
        (
            ListFilters(registration_status="CANCELED"),
            "c1",
            {"limit": "100", "registration_status": "CANCELED", "next": "c1"},
        ),
        # the spec's enum cannot filter these: they are sifted from the records instead
        (ListFilters(registration_status="IN_PROGRESS"), "", {"limit": "100"}),
        (
            ListFilters(payment_status="PAID", search_text="a@b.c"),
            "",
            {"limit": "100", "payment_status": "PAID", "search_text": "a@b.c"},
        ),
    ],
)
def test_list_params(filters: ListFilters, cursor: str, expected: dict[str, str]) -> None:
    assert list_params(filters, cursor) == expected


def test_parse_page_reads_records_total_and_cursor() -> None:
    body = {
        "records": [
            {
                "registration_id": "ABC-1",
                "registration_status": "registered",
                "email_address": "a@b.c",
                "tickets": 2,
                "total": 10.5,
            },
            {"registration_id": "abc-2", "registration_status": "CANCELED"},
        ],
        "total_records": 563,
        "next_cursor": "cur",
    }
    page = parse_page(json.dumps(body).encode())
    assert [record.registration_id for record in page.records] == ["abc-1", "abc-2"]
    assert page.records[0].registration_status == "REGISTERED"
    assert (page.records[0].tickets, page.records[0].total) == ("2", "10.5")
    assert (page.total_records, page.next_cursor) == (563, "cur")


def test_last_page_has_no_cursor() -> None:
    page = parse_page(b'{"records": []}')
    assert (page.records, page.total_records, page.next_cursor) == ((), None, "")


@pytest.mark.parametrize("body", [b"<html>", b"[]", b'{"records": 3}', b'{"records": [{"first_name": "x"}]}'])
def test_unexpected_pages_are_refused(body: bytes) -> None:
    with pytest.raises(UnexpectedAnswer):
        parse_page(body)


def test_single_registration_and_default_track() -> None:
    record = parse_registration(b'{"registration_id": "r1", "registration_status": "PENDING", "tickets": [{"x": 1}]}')
    assert (record.registration_status, record.tickets) == ("PENDING", "")
    assert parse_default_track(b'{"event_id": "e", "default_track": {"track_id": "gqz1gb"}}') == "gqz1gb"
    with pytest.raises(UnexpectedAnswer):
        parse_default_track(b'{"event_id": "e"}')

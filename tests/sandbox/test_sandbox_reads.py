"""The sandbox's reads (event, track list, single registration) and its registrations file, checked against the
"Reading" section of ../shared/API.md: cursor pages over a cap, filters, total_records, short pages, 404s, and reads
sharing the token check, the limits and the faults with the PUTs.
"""

from __future__ import annotations

import csv
import json
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from batcher.remote import reads
from batcher.sandbox import app as sandbox
from tests.conftest import EVENT, SAMPLES, TRACK, RunCli, reg_id
from tests.sandbox.test_sandbox import AUTH, URL, body

OTHER_TRACK = "day2"


def people(count: int, *, track: str = TRACK) -> list[sandbox.Registration]:
    """count registrations; every 10th CANCELED, every 7th PAID, with names and e-mail addresses."""
    return [
        sandbox.Registration(
            EVENT,
            track,
            reg_id(n),
            "CANCELED" if n % 10 == 0 else "REGISTERED",
            first_name=f"Ada{n}",
            last_name="Lovelace" if n % 2 else "Hopper",
            email_address=f"guest{n}@Example.com",
            payment_status="PAID" if n % 7 == 0 else "PENDING",
            tickets=1 + n % 3,
            total=float(n % 5),
        )
        for n in range(count)
    ]


async def read_client(aiohttp_client: Any, scenario: sandbox.Scenario | None = None, count: int = 1234) -> Any:
    registrations = [*people(count), *people(3, track=OTHER_TRACK)]
    return await aiohttp_client(sandbox.make_app(scenario or sandbox.Scenario(rate_limit_per_s=None), registrations))


async def list_all(client: Any, query: str = "", url: str = URL) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(records, pages) of a whole list, following next_cursor until a page has none."""
    pages: list[dict[str, Any]] = []
    answer = await client.get(f"{url}?{query}", headers=AUTH)
    while True:
        assert answer.status == 200, await answer.text()
        page = await answer.json()
        pages.append(page)
        if "next_cursor" not in page:
            return [record for page in pages for record in page["records"]], pages
        assert page["_links"]["next"]["href"].endswith(f"?next={page['next_cursor']}")
        answer = await client.get(f"{URL}?next={page['next_cursor']}", headers=AUTH)


async def test_a_list_of_1234_is_served_50_at_a_time_whatever_limit_asks(aiohttp_client: Any) -> None:
    client = await read_client(aiohttp_client)
    records, pages = await list_all(client, "limit=200")
    assert [record["registration_id"] for record in records] == [reg_id(n) for n in range(1234)]
    assert [len(page["records"]) for page in pages] == [50] * 24 + [34]
    assert {page["total_records"] for page in pages} == {1234}
    assert "next" not in pages[-1]["_links"]
    assert records[3] == {
        "registration_id": reg_id(3),
        "registration_status": "REGISTERED",
        "first_name": "Ada3",
        "last_name": "Lovelace",
        "email_address": "guest3@Example.com",
        "payment_status": "PENDING",
        "registration_time": sandbox.Registration("", "", "").registration_time,
        "tickets": 1,
        "total": 3.0,
    }
    assert len(client.app[sandbox.STATE].reads) == 25


async def test_max_page_size_and_a_smaller_limit_or_page_size_set_the_page(aiohttp_client: Any) -> None:
    client = await read_client(aiohttp_client, sandbox.Scenario(rate_limit_per_s=None, max_page_size=500), count=1200)
    _, pages = await list_all(client, "limit=1000")
    assert [len(page["records"]) for page in pages] == [500, 500, 200]
    _, pages = await list_all(client, "page_size=400&limit=400")
    assert [len(page["records"]) for page in pages] == [400] * 3
    _, pages = await list_all(client)
    assert len(pages[0]["records"]) == 50  # the default limit


@pytest.mark.parametrize(
    "query",
    [
        "limit=10&page_size=20",
        "limit=0",
        "limit=x",
        "registration_status=Canceled",
        "registration_status=ATTENDED",
        "payment_status=CANCELED",
        "sort_by=email",
        "sort_order=UP",
        "next=garbage",
        "next=a&prev=b",
    ],
)
async def test_a_bad_list_query_is_400_with_the_error_array(aiohttp_client: Any, query: str) -> None:
    client = await read_client(aiohttp_client, count=3)
    answer = await client.get(f"{URL}?{query}", headers=AUTH)
    assert answer.status == 400
    (item,) = await answer.json()
    assert {"error_key", "error_message"} <= set(item)


async def test_filters_narrow_the_records_and_total_records_counts_the_matches(aiohttp_client: Any) -> None:
    client = await read_client(aiohttp_client)
    canceled, pages = await list_all(client, "registration_status=CANCELED&limit=50")
    assert [record["registration_id"] for record in canceled] == [reg_id(n) for n in range(0, 1234, 10)]
    assert pages[0]["total_records"] == 124
    paid, _ = await list_all(client, "payment_status=PAID")
    assert len(paid) == len(range(0, 1234, 7))
    both, pages = await list_all(client, "registration_status=CANCELED&payment_status=PAID")
    assert [record["registration_id"] for record in both] == [reg_id(n) for n in range(0, 1234, 70)]
    found, _ = await list_all(client, "search_text=GUEST12%40example.COM")
    assert [record["registration_id"] for record in found] == [reg_id(12)]
    found, pages = await list_all(client, "search_text=ada123")  # Ada123 and Ada1230..Ada1233
    assert [record["first_name"] for record in found] == ["Ada123", "Ada1230", "Ada1231", "Ada1232", "Ada1233"]
    found, _ = await list_all(client, "search_text=HOPPER&registration_status=REGISTERED")
    assert {record["last_name"] for record in found} == {"Hopper"}
    assert len(found) == 617 - 124


async def test_sort_by_a_field_keeps_the_insertion_order_among_equals(aiohttp_client: Any) -> None:
    client = await read_client(aiohttp_client, count=20)
    records, _ = await list_all(client, "sort_by=total&sort_order=DESC")
    assert [record["total"] for record in records] == sorted((float(n % 5) for n in range(20)), reverse=True)
    assert [record["registration_id"] for record in records[:4]] == [reg_id(n) for n in (4, 9, 14, 19)]


async def test_short_pages_and_scripted_page_sizes_still_reach_every_record(aiohttp_client: Any) -> None:
    client = await read_client(aiohttp_client, sandbox.Scenario(rate_limit_per_s=None, short_pages=True), count=120)
    records, pages = await list_all(client, "limit=50")
    assert len(records) == 120
    assert [len(page["records"]) for page in pages] == [25] * 4 + [20]
    scenario = sandbox.Scenario(rate_limit_per_s=None, page_sizes=[0, 3, 49])
    client = await read_client(aiohttp_client, scenario, count=120)
    records, pages = await list_all(client, "limit=50")
    assert [record["registration_id"] for record in records] == [reg_id(n) for n in range(120)]
    assert [len(page["records"]) for page in pages] == [0, 3, 49, 50, 18]


async def test_a_status_changed_between_two_pages_is_seen_and_no_record_is_skipped(aiohttp_client: Any) -> None:
    client = await read_client(aiohttp_client, count=100)
    first = await (await client.get(f"{URL}?registration_status=REGISTERED&limit=50", headers=AUTH)).json()
    state = client.app[sandbox.STATE]
    state.set_status(EVENT, TRACK, reg_id(1), "CANCELED")  # already listed
    state.set_status(EVENT, TRACK, reg_id(99), "PENDING")  # not listed yet: drops out of the filter
    second = await (await client.get(f"{URL}?next={first['next_cursor']}", headers=AUTH)).json()
    seen = [record["registration_id"] for record in first["records"] + second["records"]]
    expected = [reg_id(n) for n in range(100) if n % 10 and n != 99]
    assert seen == expected
    assert second["total_records"] == 88
    single = await (await client.get(f"{URL}/{reg_id(1)}", headers=AUTH)).json()
    assert single["registration_status"] == "CANCELED"
    with pytest.raises(KeyError):
        state.set_status(EVENT, TRACK, reg_id(5000), "CANCELED")


async def test_the_event_names_its_default_track(aiohttp_client: Any) -> None:
    client = await read_client(aiohttp_client, count=3)
    answer = await client.get(f"/v3/events/{EVENT}", headers=AUTH)
    assert answer.status == 200
    event = await answer.json()
    assert (event["event_id"], event["default_track"]["track_id"]) == (EVENT, TRACK)  # the first track seen
    client.app[sandbox.STATE].set_default_track(EVENT, OTHER_TRACK)
    event = await (await client.get(f"/v3/events/{EVENT}", headers=AUTH)).json()
    assert event["default_track"]["track_id"] == OTHER_TRACK


@pytest.mark.parametrize(
    ("url", "key"),
    [
        (f"/v3/events/{reg_id(5)}", "event.not_found"),
        (f"/v3/events/{reg_id(5)}/tracks/{TRACK}/registrations", "event.not_found"),
        (f"/v3/events/{EVENT}/tracks/nope/registrations", "track.not_found"),
        (f"/v3/events/{reg_id(5)}/tracks/{TRACK}/registrations/{reg_id(0)}", "event.not_found"),
        (f"/v3/events/{EVENT}/tracks/nope/registrations/{reg_id(0)}", "track.not_found"),
        (f"{URL}/{reg_id(77)}", "registration.not_found"),
        (f"/v3/events/{EVENT}/tracks/{OTHER_TRACK}/registrations/{reg_id(2000)}", "registration.not_found"),
    ],
)
async def test_unknown_events_tracks_and_registrations_are_404_with_distinct_keys(
    aiohttp_client: Any, url: str, key: str
) -> None:
    client = await read_client(aiohttp_client, count=3)
    answer = await client.get(url, headers=AUTH)
    assert answer.status == 404
    (item,) = await answer.json()
    assert item["error_key"] == key
    assert item["error_message"]


async def test_reads_share_the_rate_limit_the_quota_and_the_token_check_with_puts(aiohttp_client: Any) -> None:
    client = await read_client(aiohttp_client, sandbox.Scenario(rate_limit_per_s=2), count=3)
    statuses = [
        (await client.get(URL, headers=AUTH)).status,
        (await client.put(URL, json=body(reg_id(0)), headers=AUTH)).status,
        (await client.get(f"/v3/events/{EVENT}", headers=AUTH)).status,
    ]
    assert statuses == [200, 200, 429]
    client = await read_client(aiohttp_client, sandbox.Scenario(rate_limit_per_s=None, daily_quota=2), count=3)
    assert (await client.get(f"{URL}/{reg_id(1)}", headers=AUTH)).status == 200
    assert (await client.get(f"/v3/events/{EVENT}", headers=AUTH)).status == 200
    over = await client.put(URL, json=body(reg_id(0)), headers=AUTH)
    assert (over.status, (await over.json())[0]["error_key"]) == (429, "quota_exceeded")
    assert (await client.get(URL, headers=AUTH)).status == 429
    client = await read_client(aiohttp_client, sandbox.Scenario(rate_limit_per_s=None, token_expires_after=1), count=3)
    assert (await client.get(URL)).status == 401
    assert (await client.get(URL, headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.get(URL, headers=AUTH)).status == 200
    assert (await client.put(URL, json=body(reg_id(0)), headers=AUTH)).status == 401  # the read used the token up


async def test_faults_hit_reads_too_and_fault_methods_can_spare_them(aiohttp_client: Any) -> None:
    client = await read_client(aiohttp_client, sandbox.Scenario(rate_limit_per_s=None, error_rate=1.0), count=3)
    assert (await client.get(URL, headers=AUTH)).status in (500, 503)
    scenario = sandbox.Scenario(rate_limit_per_s=None, status=403, fault_methods=frozenset({"GET"}))
    client = await read_client(aiohttp_client, scenario, count=3)
    forbidden = await client.get(URL, headers=AUTH)
    assert (forbidden.status, (await forbidden.json())[0]["error_key"]) == (403, "forbidden")
    assert (await client.put(URL, json=body(reg_id(0)), headers=AUTH)).status == 200


async def test_every_read_is_recorded_beside_the_puts(aiohttp_client: Any) -> None:
    client = await read_client(aiohttp_client, count=3)
    await client.get(f"{URL}?limit=2&registration_status=REGISTERED", headers=AUTH)
    await client.put(URL, json=body(reg_id(0)), headers=AUTH)
    await client.get(f"{URL}/{reg_id(0)}", headers=AUTH)
    state = client.app[sandbox.STATE]
    assert [(r.method, r.path, r.query, r.status) for r in state.requests] == [
        ("GET", URL, {"limit": "2", "registration_status": "REGISTERED"}, 200),
        ("PUT", URL, {}, 200),
        ("GET", f"{URL}/{reg_id(0)}", {}, 200),
    ]
    assert (len(state.reads), len(state.puts)) == (2, 1)


async def test_silent_ids_are_answered_200_and_left_unchanged(aiohttp_client: Any) -> None:
    scenario = sandbox.Scenario(rate_limit_per_s=None, silent_ids=frozenset({reg_id(1)}))
    client = await read_client(aiohttp_client, scenario, count=3)
    assert (await client.put(URL, json=body(reg_id(1), reg_id(2)), headers=AUTH)).status == 200
    state = client.app[sandbox.STATE]
    assert [state.status_of(EVENT, TRACK, reg_id(n)) for n in (1, 2)] == ["REGISTERED", "CANCELED"]


# ---------------------------------------------------------------------------------------------------- files


def test_an_export_shaped_file_is_read_under_the_input_header_rules(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "Event ID;Track-ID;Registration_ID;First Name;Last Name;E-mail;Registration Status;Payment Status;Tickets\n"
        f"{EVENT.upper()};{TRACK};{reg_id(1).upper()};Ada;Lovelace;ada@example.com;Cancelled;paid;2\n"
        f"{EVENT};{TRACK};{reg_id(2)};Grace;Hopper;grace@example.com;;;\n"
        f";{TRACK};{reg_id(3)};no;event;x@example.com;;;\n",
        encoding="utf-8",
    )
    first, second = sandbox.read_registrations(path)
    assert first == sandbox.Registration(
        EVENT, TRACK, reg_id(1), "CANCELED", "Ada", "Lovelace", "ada@example.com", "PAID", tickets=2
    )
    assert (second.registration_status, second.email_address, second.tickets) == ("REGISTERED", "grace@example.com", 1)


def test_a_file_with_an_unknown_status_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(f"event_id,track_id,registration_id,registration_status\n{EVENT},{TRACK},{reg_id(1)},ATTENDED\n")
    with pytest.raises(sandbox.InputError, match=r"row 2: registration_status 'ATTENDED'"):
        sandbox.read_registrations(path)


async def test_an_export_file_round_trips_through_the_sandbox(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await read_client(aiohttp_client, count=60)
    records, _ = await list_all(client)
    path = tmp_path / "export.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=sandbox.REGISTRATION_FIELDS)
        writer.writeheader()
        writer.writerows({"event_id": EVENT, "track_id": TRACK, **record} for record in records)
    again = await aiohttp_client(
        sandbox.make_app(sandbox.Scenario(rate_limit_per_s=None), sandbox.read_registrations(path))
    )
    assert (await list_all(again))[0] == records


def test_the_sample_people_and_export_files_resolve_in_the_sample_registrations() -> None:
    known = sandbox.read_registrations(sandbox.DEFAULT_REGISTRATIONS)
    state = sandbox.SandboxState()
    state.add_all(known)
    by_email: dict[tuple[str, str], list[sandbox.Registration]] = {}
    for item in known:
        if state.events[item.event_id] == item.track_id:  # people files name no track: the default one
            by_email.setdefault((item.event_id, item.email_address.casefold()), []).append(item)
    with (SAMPLES / "people.csv").open(newline="", encoding="utf-8") as handle:
        people_rows = list(csv.DictReader(handle))
    assert people_rows
    for row in people_rows:
        assert len(by_email[(row["Event ID"].lower(), row["Email"].strip().casefold())]) == 1, row
    exported = sandbox.read_registrations(SAMPLES / "event_export.csv")
    assert len({item.event_id for item in exported}) >= 1
    for item in exported:
        known_item = state.registration(item.event_id, item.track_id, item.registration_id)
        assert known_item is not None
        assert known_item.details()[:4] == item.details()[:4]  # names, e-mail address, payment status
        assert (known_item.registration_status, known_item.tickets) == (item.registration_status, item.tickets)
    assert {item.registration_status for item in exported} >= {"REGISTERED", "CANCELED"}


def test_serve_in_thread_yields_a_url_and_the_live_state() -> None:
    registrations = [sandbox.Registration(EVENT, TRACK, reg_id(1), email_address="ada@example.com")]
    with sandbox.serve_in_thread(sandbox.Scenario(rate_limit_per_s=None), registrations) as (url, state):
        request = urllib.request.Request(f"{url}/events/{EVENT}/tracks/{TRACK}/registrations/{reg_id(1)}", headers=AUTH)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes through a proxy
        with opener.open(request, timeout=10) as answer:
            record = json.loads(answer.read())
        assert record["email_address"] == "ada@example.com"
        assert [read.path for read in state.reads] == [f"{URL}/{reg_id(1)}"]


def test_a_rehearsal_accepts_export_headers_in_sandbox_registrations(run_cli: RunCli, tmp_path: Path) -> None:
    """Issue 10.13: --sandbox-registrations takes display headers ("Event ID", "Email Address", ...)."""
    results = tmp_path / "export.results.csv"
    sample = SAMPLES / "event_export.csv"
    args = ["run", str(sample), "--status", "CANCELED", "--sandbox", "--sandbox-registrations", str(sample)]
    code = run_cli([*args, "--yes", "--no-progress", "--results", str(results)], {})
    assert code == 0
    with results.open(newline="", encoding="utf-8") as handle:
        outcomes = {row["outcome"] for row in csv.DictReader(handle)}
    assert outcomes <= {"succeeded", "unchanged"}


async def test_batchers_own_reads_page_through_the_sandbox(aiohttp_client: Any) -> None:
    """The two halves agree: batcher.remote.reads asks for 100 a page, the sandbox serves 50, every record arrives."""
    client = await read_client(aiohttp_client)
    base = str(client.make_url("/v3"))

    async def get(url: str, params: Mapping[str, str]) -> reads.ReadAnswer:
        answer = await client.session.get(url, params=dict(params), headers=AUTH)
        return reads.ReadAnswer(answer.status, await answer.read())

    listing = await reads.list_track(get, base, EVENT, TRACK)
    assert (len(listing.records), listing.total_records, listing.requests) == (1234, 1234, 25)
    default = await reads.read_default_track(get, base, EVENT)
    assert default.track_id == TRACK
    missing = await reads.list_track(get, base, EVENT, "nope")
    assert missing.group_missing


async def test_a_page_of_a_large_track_costs_a_page(aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19, case 12: a page of a 100,000-registration track looks at its 50 records, not the whole track (the
    count of registrations built, not a timing; before: every page built and filtered all 100,000)."""
    built = 0
    registration = sandbox.SandboxState.registration

    def counted(state: sandbox.SandboxState, event_id: str, track_id: str, registration_id: str) -> Any:
        nonlocal built
        built += 1
        return registration(state, event_id, track_id, registration_id)

    big = [(EVENT, TRACK, reg_id(n)) for n in range(100_000)]
    client = await aiohttp_client(sandbox.make_app(sandbox.Scenario(rate_limit_per_s=None), big))
    monkeypatch.setattr(sandbox.SandboxState, "registration", counted)
    first = await (await client.get(URL, headers=AUTH)).json()
    after = await (await client.get(f"{URL}?next={first['next_cursor']}", headers=AUTH)).json()
    assert built == 100
    assert [record["registration_id"] for record in after["records"]] == [reg_id(n) for n in range(50, 100)]
    assert after["total_records"] == 100_000

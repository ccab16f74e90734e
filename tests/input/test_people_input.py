"""People-shaped input: rows named by email, rows without a track, resolved over real HTTP against the sandbox."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from batcher.http.auth import Credentials
from batcher.http.client import ApiClient
from batcher.input.loader import InputOptions, LoadedInput, load_input
from batcher.input.rules import CONFLICT_REASON, NO_KEY_REASON
from batcher.models import RowGroup
from batcher.remote.reads import getter
from batcher.remote.resolve import Resolution, email_mismatches, merge, resolution_bound, resolve
from batcher.remote.snapshot import take_snapshot
from batcher.sandbox import app as sandbox
from batcher.settings import Settings
from tests.conftest import (
    EVENT,
    SAMPLES,
    TRACK,
    RunCli,
    RunningSandbox,
    StartSandbox,
    WriteCsv,
    read_results,
    reg_id,
)

SPRING = "5f0c8b2e-3d4a-4e7b-9c1d-2a6b8e4f7c90"  # "Spring Workshop 2026": default track spring1, 36 registrations
RUN = "3cbb7daa-64c1-44fa-88a7-c8252abc5619"  # default track run5k, 54 registrations (two pages of 50)
ALAN = "fcc1cf5c-3575-5f98-87fb-a806db588fbc"  # alan.ritchie2@example.org
KEN = "45fd42ea-1a27-58ba-b8d8-db67a4463ad8"  # ken.allen7@example.org
HEDY = "06228e24-31bb-5e4d-85f3-95998616597b"  # hedy.rossum12@example.org in spring1
UNKNOWN_EVENT = "99999999-9999-4999-8999-999999999999"


def _sandbox(start_sandbox: StartSandbox) -> RunningSandbox:
    """A sandbox that knows the sample registrations (sample_inputs/sandbox_registrations.csv)."""
    registrations = sandbox.read_registrations(sandbox.DEFAULT_REGISTRATIONS)
    return start_sandbox(sandbox.Scenario(rate_limit_per_s=None), registrations)


async def _resolve(settings: Settings, url: str, loaded: LoadedInput) -> Resolution:
    async with ApiClient(replace(settings, base_url=url), Credentials(sandbox.SANDBOX_TOKEN)) as client:
        return await resolve(getter(client), url, loaded)


# --- the loader


@pytest.mark.parametrize("header", ["Email", "E-mail", "Email Address", "email_address", " e_mail "])
def test_email_headers_match_and_such_rows_wait_for_resolving(write_csv: WriteCsv, header: str) -> None:
    path = write_csv([[EVENT, "  Ada@Example.ORG "]], header=["Event ID", header])
    loaded = load_input(path, default_status="CANCELED")
    assert loaded.invalid_reason.tolist() == [""]
    assert loaded.needs_resolution is not None and loaded.needs_resolution.tolist() == [True]
    assert loaded.email_address is not None and loaded.email_address.tolist() == ["ada@example.org"]
    assert loaded.groups == ()


def test_column_option_names_the_email_column(write_csv: WriteCsv) -> None:
    path = write_csv([[EVENT, TRACK, "ada@example.org"]], header=["event", "track", "Contact"])
    options = InputOptions(columns=(("event_id", "event"), ("track_id", "track"), ("email_address", "Contact")))
    loaded = load_input(path, default_status="CANCELED", options=options)
    assert loaded.email_address is not None and loaded.email_address.tolist() == ["ada@example.org"]


def test_bad_emails_are_invalid_before_any_read_and_quoted_safely(write_csv: WriteCsv) -> None:
    rows = [
        [EVENT, TRACK, "", "nobody"],
        [EVENT, TRACK, "", "a@b\x1b]c"],
        [EVENT, TRACK, "", ""],
        [EVENT, TRACK, "", "x" * 200],
    ]
    loaded = load_input(
        write_csv(rows, header=["event_id", "track_id", "registration_id", "Email"]), default_status="CANCELED"
    )
    assert loaded.invalid_reason[0] == 'email_address is not an email address (no @): "nobody"'
    assert loaded.invalid_reason[1] == 'email_address holds control characters: "a@b\ufffd]c"'
    assert loaded.invalid_reason[2] == NO_KEY_REASON
    assert loaded.invalid_reason[3].endswith('"' + "x" * 80 + '"')
    assert loaded.needs_resolution is None  # no row waits: every one is invalid already


def test_rows_with_an_id_and_without_a_track_keep_the_others_grouped(write_csv: WriteCsv) -> None:
    rows = [[EVENT, "", reg_id(1)], [EVENT, TRACK, reg_id(2)], [EVENT, " ", reg_id(3)]]
    loaded = load_input(write_csv(rows, header=["event_id", "track_id", "registration_id"]), default_status="CANCELED")
    assert loaded.invalid_reason.tolist() == ["", "", ""]
    assert loaded.needs_resolution is not None and loaded.needs_resolution.tolist() == [True, False, True]
    assert [group.rows for group in loaded.groups] == [(1,)]
    no_track = load_input(
        write_csv([[EVENT, reg_id(1)]], header=["Event ID", "Registration ID"]), default_status="CANCELED"
    )
    assert no_track.needs_resolution is not None and no_track.needs_resolution.tolist() == [True]


# --- the resolve stage over HTTP


async def test_the_people_sample_resolves_by_email_and_default_track(
    start_sandbox: StartSandbox, settings: Settings
) -> None:
    url = _sandbox(start_sandbox).url
    loaded = load_input(SAMPLES / "people.csv", default_status="CANCELED")
    n = loaded.row_count
    resolution = await _resolve(settings, url, loaded)
    assert {event: default.track_id for event, default in resolution.default_tracks.items()} == {
        SPRING: "spring1",
        RUN: "run5k",
    }
    assert resolution.track_id.tolist() == ["spring1"] * 6 + ["run5k"] * 4
    # ALAN.RITCHIE2@EXAMPLE.ORG: mixed case; "  Hedy.rossum12@example.org ": padded (another Hedy is in spring2)
    assert resolution.registration_id[1:4].tolist() == [ALAN, KEN, HEDY]
    assert resolution.outcome.tolist() == [""] * 10
    # two event reads; spring1 is one page; run5k's 54 records are two pages: its 4 emails cost 1 + min(1, 4)
    assert resolution.requests == 2 + 1 + resolution_bound(2, 4) == 5
    assert resolution.tracks[(RUN, "run5k")].complete
    merged = merge(loaded, resolution)
    assert [(group.track_id, len(group.rows)) for group in merged.groups] == [("spring1", 6), ("run5k", 4)]
    assert merged.registration_id[1] == ALAN and loaded.registration_id[1] == ""  # the loaded input is untouched
    assert set(resolution.known(merged.groups)) == {(SPRING, "spring1"), (RUN, "run5k")}
    async with ApiClient(replace(settings, base_url=url), Credentials(sandbox.SANDBOX_TOKEN)) as client:
        known = resolution.known(merged.groups)
        snapshot, made = await take_snapshot(getter(client), url, merged.groups, n, known=known)
    assert made == [] and snapshot.requests == 0  # the snapshot reuses the listings: no track is read twice
    assert snapshot.previous_status[1] == "REGISTERED" and snapshot.found.all()


async def test_a_missing_email_fails_and_a_disagreeing_id_is_invalid(
    start_sandbox: StartSandbox, settings: Settings, write_csv: WriteCsv
) -> None:
    url = _sandbox(start_sandbox).url
    rows = [
        [SPRING, "spring1", "", "nobody@example.org"],
        [SPRING, "", reg_id(5), "alan.ritchie2@example.org"],  # no track: resolved, and the ID checked then
        [SPRING, "", KEN, "KEN.ALLEN7@example.org"],
    ]
    loaded = load_input(
        write_csv(rows, header=["event_id", "track_id", "registration_id", "email"]), default_status="CANCELED"
    )
    resolution = await _resolve(settings, url, loaded)
    assert resolution.outcome.tolist() == ["failed", "invalid", ""]
    assert resolution.reason[0] == f"no registration with this email in track spring1 of event {SPRING}"
    assert resolution.reason[1] == f"the email belongs to registration {ALAN}, not to this registration_id"
    merged = merge(loaded, resolution)
    assert merged.invalid_reason[1] == resolution.reason[1]
    assert [group.registration_ids for group in merged.groups] == [(KEN,)]
    outcome, reason = resolution.decided
    assert outcome.tolist() == ["failed", "", ""] and reason[0] == resolution.reason[0]


async def test_an_id_with_a_track_is_grouped_and_its_email_checked_by_the_snapshot(
    start_sandbox: StartSandbox, settings: Settings, write_csv: WriteCsv
) -> None:
    url = _sandbox(start_sandbox).url
    rows = [[SPRING, "spring1", reg_id(5), "a@example.org"], [SPRING, "spring1", KEN, "alan.ritchie2@example.org"]]
    rows.append([SPRING, "spring1", ALAN, " Alan.Ritchie2@example.org"])
    header = ["event_id", "track_id", "registration_id", "email"]
    loaded = load_input(write_csv(rows, header=header), default_status="CANCELED")
    assert loaded.needs_resolution is None and [group.rows for group in loaded.groups] == [(0, 1, 2)]
    async with ApiClient(replace(settings, base_url=url), Credentials(sandbox.SANDBOX_TOKEN)) as client:
        _, made = await take_snapshot(getter(client), url, loaded.groups, loaded.row_count)
    groups, reason = email_mismatches(loaded, loaded.groups, {(read.event_id, read.track_id): read for read in made})
    assert reason.tolist() == [
        "",  # not found by the read: the PUT decides
        'registration_id and email_address disagree: the registration\'s email is "ken.allen7@example.org"',
        "",
    ]
    assert [group.rows for group in groups] == [(0, 2)]


async def test_an_email_two_registrations_share_fails_unless_the_id_picks_one(
    start_sandbox: StartSandbox, settings: Settings, write_csv: WriteCsv
) -> None:
    twins = [sandbox.Registration(EVENT, TRACK, reg_id(n), email_address="Twin@Example.org") for n in (1, 2)]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), twins)
    rows = [[EVENT, TRACK, "", "twin@example.org"], [EVENT, "", reg_id(2), "twin@example.org"]]
    rows.append([EVENT, "", reg_id(3), "twin@example.org"])  # no track: the default one (gqz1gb), then the ID checked
    header = ["event_id", "track_id", "registration_id", "email"]
    loaded = load_input(write_csv(rows, header=header), default_status="CANCELED")
    resolution = await _resolve(settings, box.url, loaded)
    assert resolution.outcome.tolist() == ["failed", "", "invalid"]
    assert resolution.reason[0] == "2 registrations in track gqz1gb share this email; give registration_id"
    assert resolution.registration_id[1] == reg_id(2)
    assert resolution.reason[2] == "registration_id is not one of the 2 registrations with this email"


async def test_an_unknown_event_fails_its_rows_after_one_read(
    start_sandbox: StartSandbox, settings: Settings, write_csv: WriteCsv
) -> None:
    url = _sandbox(start_sandbox).url
    rows = [[UNKNOWN_EVENT, "a@example.org"], [UNKNOWN_EVENT, "b@example.org"], [UNKNOWN_EVENT, "c@example.org"]]
    loaded = load_input(write_csv(rows, header=["event_id", "email"]), default_status="CANCELED")
    resolution = await _resolve(settings, url, loaded)
    assert resolution.outcome.tolist() == ["failed"] * 3
    assert set(resolution.reason.tolist()) == {"event not found"}
    assert resolution.requests == 1
    assert merge(loaded, resolution).groups == ()


async def test_an_unknown_track_of_a_known_event_fails_its_rows(
    start_sandbox: StartSandbox, settings: Settings, write_csv: WriteCsv
) -> None:
    url = _sandbox(start_sandbox).url
    loaded = load_input(
        write_csv([[SPRING, "nope", "a@example.org"]], header=["event_id", "track_id", "email"]),
        default_status="CANCELED",
    )
    resolution = await _resolve(settings, url, loaded)
    assert resolution.outcome.tolist() == ["failed"]
    assert resolution.reason[0] == "track not found in this event"


async def test_few_emails_in_a_long_track_are_searched_within_the_bound(
    start_sandbox: StartSandbox, settings: Settings, write_csv: WriteCsv
) -> None:
    people = [
        sandbox.Registration(EVENT, TRACK, reg_id(n), email_address=f"person{n}@example.org") for n in range(1234)
    ]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), people)
    rows = [[EVENT, TRACK, f"Person{n}@example.org"] for n in (3, 700, 1200)]
    rows.append([EVENT, TRACK, "person1@example.org"])  # "person1" is in "person1@...", not in "person10@..."
    loaded = load_input(write_csv(rows, header=["event_id", "track_id", "email"]), default_status="CANCELED")
    resolution = await _resolve(settings, box.url, loaded)
    assert resolution.registration_id.tolist() == [reg_id(3), reg_id(700), reg_id(1200), reg_id(1)]
    pages = 25  # 1234 records, 50 a page
    assert resolution.requests == len(box.state.reads) == resolution_bound(pages, 4) == 5  # one page, four searches
    searched = sorted(read.query.get("search_text", "") for read in box.state.reads)
    assert searched == [
        "",
        "person1200@example.org",
        "person1@example.org",
        "person3@example.org",
        "person700@example.org",
    ]
    one = load_input(
        write_csv([[EVENT, TRACK, "person9@example.org"]], header=["event_id", "track_id", "email"]),
        default_status="CANCELED",
    )
    assert (await _resolve(settings, box.url, one)).requests == 1  # one email: one search


def test_two_rows_resolving_to_one_registration_are_a_duplicate_or_a_conflict(write_csv: WriteCsv) -> None:
    rows = [[EVENT, TRACK, reg_id(1), "", "CANCELED"], [EVENT, TRACK, "", "a@example.org", "CANCELED"]]
    rows.append([EVENT, TRACK, "", "b@example.org", "REGISTERED"])
    rows.append([EVENT, TRACK, reg_id(2), "", "CANCELED"])
    header = ["event_id", "track_id", "registration_id", "email", "registration_status"]
    loaded = load_input(write_csv(rows, header=header), default_status=None)
    assert loaded.needs_resolution is not None and loaded.needs_resolution.tolist() == [False, True, True, False]
    n = loaded.row_count
    empty = np.full(n, "", dtype=object)
    resolved = np.array([reg_id(1), reg_id(1), reg_id(2), reg_id(2)], dtype=object)
    tracks = np.full(n, TRACK, dtype=object)
    resolution = Resolution(tracks, resolved, empty.copy(), empty.copy(), {}, {}, 0)
    merged = merge(loaded, resolution)
    assert merged.duplicate_of.tolist() == [-1, 0, -1, -1]  # row 1 repeats row 0
    assert merged.invalid_reason[2] == merged.invalid_reason[3] == CONFLICT_REASON  # two statuses for reg 2
    assert merged.groups == (RowGroup(EVENT, TRACK, "CANCELED", (reg_id(1),), (0,)),)


def test_a_plain_file_is_not_touched_by_merge(write_csv: WriteCsv, tmp_path: Path) -> None:
    loaded = load_input(
        write_csv([[EVENT, TRACK, reg_id(1)]], header=["event_id", "track_id", "registration_id"]),
        default_status="CANCELED",
    )
    assert loaded.needs_resolution is None
    n = loaded.row_count
    empty = np.full(n, "", dtype=object)
    assert merge(loaded, Resolution(empty, empty, empty, empty, {}, {}, 0)) is loaded


# --- a run end to end


def test_a_run_from_emails_cancels_the_right_registrations_with_one_line_per_row(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = _sandbox(start_sandbox)
    people = tmp_path / "people.csv"
    lines = (SAMPLES / "people.csv").read_text(encoding="utf-8").splitlines()
    people.write_text("\n".join([*lines, f"{SPRING},nobody@example.org", f"{UNKNOWN_EVENT},x@example.org"]) + "\n")
    results = tmp_path / "people.results.csv"
    args = ["run", str(people), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
    code = run_cli([*args, "--results", str(results)])
    assert code == 1  # two rows failed
    lines_out = read_results(results)
    assert len(lines_out) == 12
    assert [line["outcome"] for line in lines_out] == ["succeeded"] * 10 + ["failed"] * 2
    assert lines_out[10]["error"] == f"no registration with this email in track spring1 of event {SPRING}"
    assert lines_out[11]["error"] == "event not found"
    assert lines_out[1]["error"] == f"by email: registration {ALAN} in track spring1, the event's default"
    assert lines_out[1]["Email"] == "ALAN.RITCHIE2@EXAMPLE.ORG"  # the cells as written
    assert box.state.status_of(SPRING, "spring1", ALAN) == "CANCELED"
    assert box.state.status_of(SPRING, "spring1", HEDY) == "CANCELED"
    assert box.state.status_of(SPRING, "spring2", "5738b399-829e-5e7e-abd4-ed1ebcc19123") == "CANCELED"  # was
    assert box.state.status_of(SPRING, "spring2", "f14b1489-9d53-56a8-8336-64d6ae5a2e9a") == "REGISTERED"  # other Ada
    cancelled = [put.json for put in box.state.puts]
    assert sum(len(body["registration_ids"]) for body in cancelled) == 10  # type: ignore[index, arg-type]
    assert len(box.state.reads) == 2 + 1 + 2 + 1  # two events, spring1, run5k's two pages, the unknown event
    # its results as the next input: the rows that succeeded are carried over, not resolved or read again
    again = tmp_path / "again.results.csv"
    reads_before = len(box.state.reads)
    assert run_cli(["run", str(results), *args[2:], "--results", str(again)]) == 1
    assert [line["outcome"] for line in read_results(again)] == ["succeeded"] * 10 + ["failed"] * 2
    assert len(box.state.reads) - reads_before == 3  # for the two failed rows: two events, one search


def test_limit_counts_resolved_rows_and_max_changes_counts_the_rows_that_wait(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = _sandbox(start_sandbox)
    results = tmp_path / "people.results.csv"
    args = ["run", str(SAMPLES / "people.csv"), "--status", "CANCELED", "--base-url", box.url, "--yes"]
    args += ["--no-progress", "--results", str(results)]
    assert run_cli([*args, "--max-changes", "9"]) == 2
    assert box.state.puts == []  # the reads counted the real changes first (issue 11)
    # a canary run: the rest is left for --resume (the flow's exit code still sees the plan before resolving)
    assert run_cli([*args, "--limit", "3"]) != 0
    assert [line["outcome"] for line in read_results(results)] == ["succeeded"] * 3 + ["pending"] * 7
    assert sum(len(put.json["registration_ids"]) for put in box.state.puts) == 3  # type: ignore[index, arg-type]


def test_a_canary_of_mixed_rows_sends_the_first_limit_rows_resolved_ones_included(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    box = _sandbox(start_sandbox)
    rows = [
        [SPRING, "spring1", KEN, ""],
        [SPRING, "", "", "alan.ritchie2@example.org"],  # resolved when run: still one of the first two rows
        [SPRING, "spring1", HEDY, ""],
    ]
    path = write_csv(rows, header=["Event ID", "Track ID", "Registration ID", "Email"])
    results = tmp_path / "r.csv"
    args = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
    args += ["--batch-size", "1", "--no-snapshot", "--limit", "2", "--results", str(results)]
    assert run_cli(args) == 3  # rows are left for --resume
    assert [line["outcome"] for line in read_results(results)] == ["succeeded", "succeeded", "pending"]
    assert [put.json["registration_ids"] for put in box.state.puts] == [[KEN], [ALAN]]  # type: ignore[index]


def test_a_row_whose_registration_id_and_email_disagree_is_invalid_and_not_sent(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    box = _sandbox(start_sandbox)
    rows = [
        [SPRING, "spring1", ALAN, "alan.ritchie2@example.org"],  # agrees (case aside)
        [SPRING, "spring1", KEN, "hedy.rossum12@example.org"],  # Ken's registration, Hedy's email
    ]
    path = write_csv(rows, header=["Event ID", "Track ID", "Registration ID", "Email"])
    results = tmp_path / "r.csv"
    args = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
    assert run_cli([*args, "--results", str(results)]) == 1
    lines = read_results(results)
    assert [line["outcome"] for line in lines] == ["succeeded", "invalid"]
    assert (
        lines[1]["error"]
        == 'registration_id and email_address disagree: the registration\'s email is "ken.allen7@example.org"'
    )
    assert box.state.status_of(SPRING, "spring1", KEN) != "CANCELED"
    assert [put.json["registration_ids"] for put in box.state.puts] == [[ALAN]]  # type: ignore[index]


def test_the_summary_names_the_default_track_chosen_for_each_event(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = _sandbox(start_sandbox)
    args = ["run", str(SAMPLES / "people.csv"), "--status", "CANCELED", "--base-url", box.url, "--yes"]
    assert run_cli([*args, "--no-progress", "--results", str(tmp_path / "r.csv")]) == 0
    err = capsys.readouterr().err
    assert f"batcher: event {SPRING}: its default track spring1 was used" in err
    assert f"batcher: event {RUN}: its default track run5k was used" in err


def test_a_resumed_export_with_emails_is_not_held_against_the_journal_before_image(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    """The second night resumes from the journal, whose before-image keeps statuses, not emails."""
    box = _sandbox(start_sandbox)
    results = tmp_path / "r.csv"
    args = ["run", str(SAMPLES / "event_export.csv"), "--status", "CANCELED", "--base-url", box.url, "--yes"]
    args += ["--no-progress", "--resume", "--results", str(results)]
    assert run_cli(args) == 0
    first = [line["outcome"] for line in read_results(results)]
    assert set(first) == {"succeeded", "unchanged"}
    assert run_cli(args) == 0
    assert {line["outcome"] for line in read_results(results)} <= {"succeeded", "unchanged"}

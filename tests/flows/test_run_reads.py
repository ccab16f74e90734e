"""A run reads before it writes (issue 11.2), over real HTTP against the sandbox: paging, the cost bound, 404 and
403 on a read, unchanged and skipped rows, the before-image in the journal and --resume after a kill in the reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batcher.sandbox import app as sandbox
from tests.conftest import EVENT, TRACK, RunCli, StartSandbox, WriteCsv, cancel_argv, outcomes, read_results, reg_id

OTHER_EVENT = "9d2f0f55-8a4b-4d4e-9a43-7b2ad2a1c0de"


def _reads_of(box_state: sandbox.SandboxState, track: str) -> int:
    return sum(1 for request in box_state.reads if f"/tracks/{track}/" in f"{request.path}/")


def test_short_pages_are_followed_to_the_end_and_every_previous_status_is_right(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv
) -> None:
    statuses = ["REGISTERED", "PENDING", "CANCELED"]
    registrations = [(EVENT, TRACK, reg_id(n), statuses[n % 3]) for n in range(120)]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, max_page_size=20, short_pages=True), registrations)
    path = write_csv(
        [[EVENT, TRACK, reg_id(n)] for n in range(0, 120, 2)],
        header=["event_id", "track_id", "registration_id"],
    )
    assert run_cli(cancel_argv(path, box.url)) == 0
    rows = read_results(path.with_name("input.results.csv"))
    assert [row["previous_status"] for row in rows] == [statuses[n % 3] for n in range(0, 120, 2)]
    assert [row["outcome"] for row in rows] == [
        "unchanged" if statuses[n % 3] == "CANCELED" else "succeeded" for n in range(0, 120, 2)
    ]
    pages = _reads_of(box.state, TRACK)
    assert pages > 120 // 20  # the short pages were followed, not taken for the end
    assert pages <= 1 + 60  # and the bound holds
    assert all(box.state.status_of(EVENT, TRACK, reg_id(n)) == "CANCELED" for n in range(0, 120, 2))


def test_the_read_cost_stays_within_the_bound_listing_one_track_and_getting_the_other(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv
) -> None:
    size, page = 300, 50
    registrations = [(EVENT, track, reg_id(n), "REGISTERED") for track in ("list1", "gets2") for n in range(size)]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, max_page_size=page), registrations)
    wanted = {"list1": 250, "gets2": 3}
    path = write_csv(
        [[EVENT, track, reg_id(n)] for track, rows in wanted.items() for n in range(rows)],
        header=["event_id", "track_id", "registration_id"],
    )
    assert run_cli(cancel_argv(path, box.url)) == 0
    pages = -(-size // page)
    for track, rows in wanted.items():
        assert _reads_of(box.state, track) <= 1 + min(pages - 1, rows), track
    assert _reads_of(box.state, "list1") == 250 // page  # listed until every id was found
    assert _reads_of(box.state, "gets2") <= 1 + 3  # one page, then a GET for each id still unknown
    assert {row["previous_status"] for row in read_results(path.with_name("input.results.csv"))} == {"REGISTERED"}


def test_a_missing_event_or_track_fails_its_rows_without_a_put(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv
) -> None:
    box = start_sandbox(registrations=[(EVENT, TRACK, reg_id(n), "REGISTERED") for n in range(2)])
    rows = [[EVENT, TRACK, reg_id(0)], [EVENT, "gone7", reg_id(1)], [OTHER_EVENT, TRACK, reg_id(2)]]
    path = write_csv(rows, header=["event_id", "track_id", "registration_id"])
    assert run_cli(cancel_argv(path, box.url)) == 1
    results = read_results(path.with_name("input.results.csv"))
    assert [row["outcome"] for row in results] == ["succeeded", "failed", "failed"]
    assert [row["error"] for row in results[1:]] == ["track not found in this event", "event not found"]
    assert [put.path.split("/tracks/")[1] for put in box.state.puts] == [f"{TRACK}/registrations"]


def test_a_403_on_a_read_stops_before_any_put_and_says_what_reads_need(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None, statuses=[403]),
        [(EVENT, TRACK, reg_id(n), "REGISTERED") for n in range(3)],
    )
    path = write_csv([[EVENT, TRACK, reg_id(n)] for n in range(3)], header=["event_id", "track_id", "registration_id"])
    assert run_cli(cancel_argv(path, box.url)) == 3
    assert box.state.puts == []
    err = capsys.readouterr().err
    assert "campaign:read" in err
    assert "--no-snapshot" in err
    assert [row["outcome"] for row in read_results(path.with_name("input.results.csv"))] == ["pending"] * 3


def test_rows_at_their_target_are_unchanged_and_if_status_skips_the_others(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = ["REGISTERED", "CANCELED", "PENDING", "REGISTERED"]
    box = start_sandbox(registrations=[(EVENT, TRACK, reg_id(n), status) for n, status in enumerate(now)])
    path = write_csv([[EVENT, TRACK, reg_id(n)] for n in range(4)], header=["event_id", "track_id", "registration_id"])
    summary = tmp_path / "summary.json"
    assert run_cli(cancel_argv(path, box.url, "--if-status", "registered", "--summary-json", str(summary))) == 0
    rows = read_results(path.with_name("input.results.csv"))
    assert [row["outcome"] for row in rows] == ["succeeded", "unchanged", "skipped", "succeeded"]
    assert rows[1]["error"] == "already CANCELED; not sent"
    assert rows[2]["error"] == "now PENDING; --if-status REGISTERED"
    assert [row["previous_status"] for row in rows] == now
    assert [row["target_status"] for row in rows] == ["CANCELED"] * 4
    assert [box.state.status_of(EVENT, TRACK, reg_id(n)) for n in range(4)] == [
        "CANCELED",
        "CANCELED",
        "PENDING",
        "CANCELED",
    ]
    assert [put.json["registration_ids"] for put in box.state.puts] == [[reg_id(0), reg_id(3)]]
    err = capsys.readouterr().err
    table = "REGISTERED → CANCELED 2 · already CANCELED 1 (not sent) · skipped 1 (--if-status; not sent)"
    assert f"before sending: {table}" in err
    assert f"from → to: {table}" in err
    document = json.loads(summary.read_text(encoding="utf-8"))
    assert document["transitions"] == [
        {"from": "REGISTERED", "to": "CANCELED", "rows": 2, "sent": True},
        {"from": "CANCELED", "to": "CANCELED", "rows": 1, "sent": False},
    ]
    assert document["reads"] == 1


def test_max_changes_counts_only_the_real_changes(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv
) -> None:
    box = start_sandbox(
        registrations=[(EVENT, TRACK, reg_id(n), "CANCELED" if n < 8 else "REGISTERED") for n in range(10)]
    )
    path = write_csv([[EVENT, TRACK, reg_id(n)] for n in range(10)], header=["event_id", "track_id", "registration_id"])
    assert run_cli(cancel_argv(path, box.url, "--max-changes", "2")) == 0
    assert sorted(rid for put in box.state.puts for rid in put.json["registration_ids"]) == [reg_id(8), reg_id(9)]


def test_resume_after_a_stop_in_the_reads_reads_every_track_again(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv
) -> None:
    registrations = [(EVENT, track, reg_id(n), "REGISTERED") for track in ("first1", "second2") for n in range(4)]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, daily_quota=1), registrations)
    rows = [[EVENT, track, reg_id(n)] for track in ("first1", "second2") for n in range(4)]
    path = write_csv(rows, header=["event_id", "track_id", "registration_id"])
    results = path.with_name("input.results.csv")
    assert run_cli(cancel_argv(path, box.url, "--concurrency", "1")) == 3  # the day's quota ends it in the reads
    assert not box.state.puts
    reads = len(box.state.reads)
    box.state.set_status(EVENT, "first1", reg_id(1), "CANCELED")  # someone else, before the resume
    box.state.set_status(EVENT, "first1", reg_id(0), "PENDING")
    box.scenario.daily_quota = None
    assert run_cli(cancel_argv(path, box.url, "--resume")) == 0
    assert _reads_of(box.state, "first1") >= 1 and _reads_of(box.state, "second2") >= 1
    assert len(box.state.reads) - reads >= 2  # the journal's reads are not trusted: the API's state now is
    written = read_results(results)
    assert [row["previous_status"] for row in written] == ["PENDING", "CANCELED"] + ["REGISTERED"] * 6
    assert [row["outcome"] for row in written] == ["succeeded", "unchanged"] + ["succeeded"] * 6
    assert all(box.state.status_of(EVENT, track, reg_id(n)) == "CANCELED" for track, _, n in _keys())
    # a second resume: the run finished, so it is a new run; it reads, and sends nothing
    puts = len(box.state.puts)
    assert run_cli(cancel_argv(path, box.url, "--resume")) == 0
    assert len(box.state.puts) == puts
    assert set(outcomes(results)) == {"unchanged"}


def _keys() -> list[tuple[str, str, int]]:
    return [(track, EVENT, n) for track in ("first1", "second2") for n in range(4)]


def test_the_plan_reads_nothing_and_bounds_the_reads(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv([[EVENT, TRACK, reg_id(n)] for n in range(3)], header=["event_id", "track_id", "registration_id"])
    assert run_cli(["plan", str(path), "--status", "CANCELED"], {}) == 0
    out = capsys.readouterr().out
    assert "reads first: about 1 read request (list pages of 50 records); at most 4 if the tracks" in out
    assert "daily quota: about 2 requests needed (at most 5)" in out


def test_the_sandbox_rehearsal_starts_from_the_status_the_input_states(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    header = ["Event ID", "Track ID", "Registration ID", "Registration Status"]
    rows = [[EVENT, TRACK, reg_id(n), "Canceled" if n == 0 else "REGISTERED"] for n in range(3)]
    path = write_csv(rows, header=header)
    assert run_cli(["run", str(path), "--status", "CANCELED", "--sandbox", "--no-progress"], {}) == 0
    results = read_results(path.with_name("input.results.csv"))
    assert [row["outcome"] for row in results] == ["unchanged", "succeeded", "succeeded"]
    assert "REGISTERED → CANCELED 2 · already CANCELED 1 (not sent)" in capsys.readouterr().err


def test_reads_are_retried_like_puts(run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv) -> None:
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None, statuses=[503, 500], fault_methods=frozenset({"GET"})),
        [(EVENT, TRACK, reg_id(n), "REGISTERED") for n in range(3)],
    )
    path = write_csv([[EVENT, TRACK, reg_id(n)] for n in range(3)], header=["event_id", "track_id", "registration_id"])
    assert run_cli(cancel_argv(path, box.url)) == 0
    assert [read.status for read in box.state.reads][:3] == [503, 500, 200]
    assert {row["previous_status"] for row in read_results(path.with_name("input.results.csv"))} == {"REGISTERED"}


def test_where_the_input_states_another_status_than_the_api_it_is_said(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(registrations=[(EVENT, TRACK, reg_id(n), "REGISTERED") for n in range(3)])
    header = ["Event ID", "Track ID", "Registration ID", "Registration Status"]
    path = write_csv(
        [[EVENT, TRACK, reg_id(n), "PENDING" if n == 1 else "REGISTERED"] for n in range(3)], header=header
    )
    assert run_cli(cancel_argv(path, box.url)) == 0
    err = capsys.readouterr().err
    assert "disagrees with the API for 1 row (row 3: the file says PENDING, the API says REGISTERED)" in err

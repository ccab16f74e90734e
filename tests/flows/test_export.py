"""`batcher export` end to end, in-process, against the sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

from batcher.input.loader import load_input
from batcher.results.export_file import EXPORT_COLUMNS
from batcher.sandbox import app as sandbox
from tests.conftest import EVENT, TOKEN_ENV, TRACK, RunCli, StartSandbox, reg_id

OTHER_EVENT = "5f0c8b2e-3d4a-4e7b-9c1d-2a6b8e4f7c90"
STATUSES = ("REGISTERED", "CANCELED", "PENDING", "IN_PROGRESS")
PAYMENTS = ("PAID", "PENDING", "REFUNDED")


def export(args: list[str]) -> list[str]:
    return ["export", *args, "--no-progress"]


def people(count: int, *, event: str = EVENT, track: str = TRACK, start: int = 0) -> list[sandbox.Registration]:
    return [
        sandbox.Registration(
            event,
            track,
            reg_id(start + n),
            STATUSES[n % len(STATUSES)],
            first_name=f"First{n}",
            last_name=f"Last{n}",
            email_address=f"person{n}@example.org",
            payment_status=PAYMENTS[n % len(PAYMENTS)],
            tickets=1 + n % 3,
            total=10.5 * (n % 3),
        )
        for n in range(count)
    ]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def expected(registrations: list[sandbox.Registration]) -> list[dict[str, str]]:
    return [
        {
            "event_id": item.event_id,
            "track_id": item.track_id,
            "registration_id": item.registration_id,
            "registration_status": item.registration_status,
            "first_name": item.first_name,
            "last_name": item.last_name,
            "email_address": item.email_address,
            "payment_status": item.payment_status,
            "registration_time": item.registration_time,
            "tickets": str(item.tickets),
            "total": str(item.total),
        }
        for item in registrations
    ]


def test_1234_registrations_are_paged_50_at_a_time_within_the_bound(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registrations = people(1234)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, max_page_size=50), registrations)
    out = tmp_path / "all.csv"
    assert run_cli(export([EVENT, "--base-url", box.url, "--out", str(out)])) == 0
    with out.open(newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == list(EXPORT_COLUMNS)
    assert read_rows(out) == expected(registrations)
    pages = math.ceil(1234 / 50)
    reads = box.state.reads
    assert len(reads) == 1 + pages  # the event (its default track), then every page once
    assert reads[0].path == f"/v3/events/{EVENT}"
    assert all("registration_status" not in read.query for read in reads[1:])
    err = capsys.readouterr().err
    assert f"exported 1,234 registrations to {out}" in err
    assert f"{1 + pages} requests; daily quota: {10_000 - 1 - pages:,} requests left today" in err
    assert "(default track)" in err and "309 REGISTERED" in err


def test_filters_go_to_the_api_and_the_rest_is_sifted(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    registrations = people(1234)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), registrations)
    out = tmp_path / "some.csv"
    args = [EVENT, "--track", TRACK, "--status", "canceled,Pending", "--payment-status", "paid", "--out", str(out)]
    assert run_cli(export([*args, "--base-url", box.url])) == 0
    chosen = {
        status: [item for item in registrations if item.registration_status == status and item.payment_status == "PAID"]
        for status in ("CANCELED", "PENDING")
    }
    assert read_rows(out) == expected(chosen["CANCELED"] + chosen["PENDING"])  # one listing per status, in order
    reads = box.state.reads
    assert len(reads) == sum(math.ceil(len(rows) / 50) for rows in chosen.values())  # --track: no event read
    first = [read.query for read in reads if "next" not in read.query]
    assert first == [
        {"limit": "100", "registration_status": status, "payment_status": "PAID"} for status in ("CANCELED", "PENDING")
    ]
    # IN_PROGRESS cannot be a filter (the published enum's typo): the whole list is read and sifted
    box.state.requests.clear()
    assert (
        run_cli(
            export([EVENT, "--status", "IN_PROGRESS", "--search", "person1", "--base-url", box.url, "--out", str(out)])
        )
        == 0
    )
    matching = [item for item in registrations if "person1" in item.email_address]
    assert read_rows(out) == expected([item for item in matching if item.registration_status == "IN_PROGRESS"])
    assert len(box.state.reads) == 1 + math.ceil(len(matching) / 50)
    assert all(read.query.get("registration_status") is None for read in box.state.reads)


def test_out_dash_writes_the_csv_to_stdout_with_formula_cells_escaped(
    run_cli: RunCli, start_sandbox: StartSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = sandbox.Registration(EVENT, TRACK, reg_id(1), first_name="=HYPERLINK(1)", last_name="@SUM(A1)")
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), [hostile])
    assert run_cli(export([EVENT, "--out", "-", "--base-url", box.url])) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert [(row["first_name"], row["last_name"]) for row in rows] == [("'=HYPERLINK(1)", "'@SUM(A1)")]
    assert "exported 1 registration to standard output" in captured.err


def test_the_default_file_is_named_after_the_first_event_and_each_event_reads_its_default_track(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = people(3) + people(2, track="second", start=100)
    other = people(2, event=OTHER_EVENT, track="main", start=200) + people(4, event=OTHER_EVENT, track="vip", start=300)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), first + other)
    box.state.set_default_track(OTHER_EVENT, "vip")
    monkeypatch.chdir(tmp_path)
    assert run_cli(export([EVENT, OTHER_EVENT, "--base-url", box.url])) == 0
    out = tmp_path / f"{EVENT}.export.csv"
    assert read_rows(out) == expected(first[:3] + other[2:])
    assert {read.path for read in box.state.reads[:2]} == {f"/v3/events/{EVENT}", f"/v3/events/{OTHER_EVENT}"}
    err = capsys.readouterr().err
    assert "named after the first of the 2 events" in err
    assert f"{OTHER_EVENT}  vip" in err


def test_an_unknown_event_or_track_is_exit_2_in_one_line_and_writes_nothing(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), people(3))
    out = tmp_path / "x.csv"
    assert run_cli(export([OTHER_EVENT, "--base-url", box.url, "--out", str(out)])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"batcher: error: event {OTHER_EVENT} was not found; check the event ID"]
    assert run_cli(export([EVENT, "--track", "nope", "--base-url", box.url, "--out", str(out)])) == 2
    assert f"track nope was not found in event {EVENT}" in capsys.readouterr().err
    assert not out.exists()
    before = len(box.state.requests)
    assert run_cli(export(["not-a-uuid", "--base-url", box.url])) == 2
    assert run_cli(export([EVENT, "--track", "../x", "--base-url", box.url])) == 2
    assert run_cli(export([EVENT, "--status", "ATTENDED", "--base-url", box.url])) == 2
    assert len(box.state.requests) == before  # refused before any read


@pytest.mark.parametrize(
    ("scenario", "env", "words"),
    [
        (sandbox.Scenario(rate_limit_per_s=None, status=403), TOKEN_ENV, "refused to read"),
        (sandbox.Scenario(rate_limit_per_s=None), {"CTCT_ACCESS_TOKEN": "wrong-token-value"}, "rejected the access"),
        (sandbox.Scenario(rate_limit_per_s=None, daily_quota=5), TOKEN_ENV, "quota"),
    ],
)
def test_401_403_and_the_quota_stop_the_export_with_exit_3(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scenario: sandbox.Scenario,
    env: dict[str, str],
    words: str,
) -> None:
    box = start_sandbox(scenario, people(400))
    out = tmp_path / "x.csv"
    assert run_cli(export([EVENT, "--base-url", box.url, "--out", str(out)]), env) == 3
    assert words in capsys.readouterr().err
    assert not out.exists()


def test_export_then_sandbox_then_export_gives_the_same_rows(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    odd = [
        item._replace(first_name="=cmd|' /C calc'!A0", last_name="+1", email_address="-x@example.org")
        for item in people(2, start=500)
    ]
    first = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), people(130) + odd + people(20, event=OTHER_EVENT))
    once, twice = tmp_path / "once.csv", tmp_path / "twice.csv"
    assert run_cli(export([EVENT, OTHER_EVENT, "--base-url", first.url, "--out", str(once)])) == 0
    again = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), sandbox.read_registrations(once))
    assert run_cli(export([EVENT, OTHER_EVENT, "--base-url", again.url, "--out", str(twice)])) == 0
    assert twice.read_bytes() == once.read_bytes()
    assert len(read_rows(once)) == 152
    assert read_rows(once)[130]["first_name"] == "'=cmd|' /C calc'!A0"  # escaped, and read back unescaped


def test_the_export_is_a_valid_input_that_runs_and_verifies(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), people(120))
    out = tmp_path / "event.csv"
    assert run_cli(export([EVENT, "--status", "REGISTERED,PENDING", "--base-url", box.url, "--out", str(out)])) == 0
    loaded = load_input(out, default_status="CANCELED")
    assert (loaded.row_count, int((loaded.invalid_reason != "").sum())) == (60, 0)
    results = tmp_path / "event.results.csv"
    run = ["run", str(out), "--status", "CANCELED", "--base-url", box.url, "--yes", "--results", str(results)]
    assert run_cli(run) == 0
    verify = ["verify", str(results), "--base-url", box.url]
    assert run_cli(verify) == 0
    assert {row["verified"] for row in read_rows(tmp_path / "event.results.verify.csv")} == {"yes"}


def test_the_api_options_come_from_the_environment_and_a_run_config_file(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), people(3))
    config = tmp_path / "batcher.toml"
    config.write_text("batch_size = 200\nrate = 500\nmax_changes = 10\n", encoding="utf-8")  # run's options too
    out = tmp_path / "x.csv"
    env = {**TOKEN_ENV, "CTCT_BASE_URL": box.url}
    words = ["export", EVENT, "--config", str(config), "--out", str(out), "--no-progress"]
    assert run_cli(words, env) == 0
    assert len(read_rows(out)) == 3


def test_a_page_answered_503_is_retried_as_a_run_retries(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, statuses=[503, 502]), people(120))
    out = tmp_path / "x.csv"
    assert run_cli(export([EVENT, "--base-url", box.url, "--out", str(out)])) == 0
    assert len(read_rows(out)) == 120
    assert [read.status for read in box.state.reads] == [503, 502, 200, 200, 200, 200]  # the event, then 3 pages


def test_an_event_answer_batcher_cannot_read_stops_with_exit_3(
    run_cli: RunCli, start_sandbox: StartSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, statuses=[200]), people(3))  # 200, empty body
    assert run_cli(export([EVENT, "--base-url", box.url, "--out", "-"])) == 3
    assert f"event {EVENT}: the API answered" in capsys.readouterr().err


@pytest.mark.parametrize("where", [".", "missing/x.csv"])
def test_an_out_that_names_no_writable_file_is_refused_before_any_read(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), people(3))
    monkeypatch.chdir(tmp_path)
    assert run_cli(export([EVENT, "--base-url", box.url, "--out", where])) == 2
    assert box.state.requests == []

"""An honest record of every run (issue 17), end to end over real HTTP against the sandbox on 127.0.0.1.

Each test is one of the eight breaks the issue reproduced, or the three nights of the documented cron job: the
API's state wins over the journal, every change keeps its before-image, and no run's record is lost.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.flows.options import run_options
from batcher.flows.run import RunHooks, run_flow
from batcher.results import history
from batcher.sandbox import app as sandbox
from tests.conftest import (
    EVENT,
    HEADER,
    SAMPLES,
    TOKEN_ENV,
    TRACK,
    RunningSandbox,
    StartSandbox,
    WriteCsv,
    outcomes,
    read_results,
    reg_id,
)

FAST = ["--rate", "500", "--no-progress", "--yes"]
ID_HEADER = HEADER[:3]


def state_of(tmp_path: Path) -> Path:
    return tmp_path / "state"


def cmd(tmp_path: Path, *words: str) -> int:
    return cli.main([*words, "--state-dir", str(state_of(tmp_path))], environ=TOKEN_ENV)


def ids_rows(numbers: range | list[int]) -> list[list[str]]:
    return [[EVENT, TRACK, reg_id(n)] for n in numbers]


def statuses(box: RunningSandbox, numbers: range | list[int]) -> list[str | None]:
    return [box.state.status_of(EVENT, TRACK, reg_id(n)) for n in numbers]


def put_ids(box: RunningSandbox, *, since: int = 0) -> list[str]:
    return [rid for put in box.state.puts[since:] if isinstance(put.json, dict) for rid in put.json["registration_ids"]]


def put_statuses(box: RunningSandbox) -> list[object]:
    return [put.json.get("registration_status") for put in box.state.puts if isinstance(put.json, dict)]


def everyone(box: RunningSandbox) -> list[sandbox.Registration]:
    found: list[sandbox.Registration] = []
    for event_id, track_id in list(box.state.registrations):
        found += box.state.track(event_id, track_id)
    return found


def registered(numbers: range) -> list[tuple[str, str, str, str]]:
    return [(EVENT, TRACK, reg_id(n), "REGISTERED") for n in numbers]


# 1. a rehearsal (--sandbox) does not poison the real run
def test_a_sandbox_rehearsal_is_not_resumed_against_the_real_api(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(registrations=registered(range(6)))
    path = write_csv(ids_rows(range(6)), header=ID_HEADER)
    assert cmd(tmp_path, "run", str(path), "--status", "CANCELED", "--sandbox", *FAST) == 0
    capsys.readouterr()
    assert cmd(tmp_path, "run", str(path), "--status", "CANCELED", "--base-url", box.url, "--resume", *FAST) == 0
    assert statuses(box, range(6)) == ["CANCELED"] * 6
    assert outcomes(path.with_name("input.results.csv")) == ["succeeded"] * 6
    assert "another API" in capsys.readouterr().err  # it says why it starts a new run


# 2. the documented cron job (resume = true), three nights, with re-registrations between them
def test_three_nights_of_the_cron_job_cancel_every_re_registered_guest(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    box = start_sandbox(registrations=registered(range(500)))
    night = ["--status", "CANCELED", "--base-url", box.url, "--resume", *FAST]
    first = write_csv(ids_rows(range(300)), header=ID_HEADER, name="tonight.csv")
    results = first.with_name("tonight.results.csv")
    assert cmd(tmp_path, "run", str(first), *night) == 0
    assert statuses(box, range(300)) == ["CANCELED"] * 300
    for n in range(20):  # re-registered during the day
        box.state.set_status(EVENT, TRACK, reg_id(n), "REGISTERED")
    second = [*range(20), *range(100, 200), *range(300, 500)]
    write_csv(ids_rows(second), header=ID_HEADER, name="tonight.csv")
    before = len(box.state.puts)
    assert cmd(tmp_path, "run", str(first), *night) == 0
    assert statuses(box, second) == ["CANCELED"] * 320
    assert sorted(put_ids(box, since=before)) == sorted(reg_id(n) for n in [*range(20), *range(300, 500)])
    assert outcomes(results) == ["succeeded"] * 20 + ["unchanged"] * 100 + ["succeeded"] * 200
    for n in (5, 400):  # and again
        box.state.set_status(EVENT, TRACK, reg_id(n), "REGISTERED")
    before = len(box.state.puts)
    assert cmd(tmp_path, "run", str(first), *night) == 0  # the same file a third night
    assert sorted(put_ids(box, since=before)) == [reg_id(5), reg_id(400)]
    assert statuses(box, second) == ["CANCELED"] * 320
    assert len(history.list_runs(state_of(tmp_path))) == 3


# 3. a run by email keeps its before-image, and undo puts it back (dry run and undo agree)
def test_a_run_by_email_can_be_undone(
    start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(registrations=sandbox.read_registrations(sandbox.DEFAULT_REGISTRATIONS))
    people = tmp_path / "people.csv"
    people.write_bytes((SAMPLES / "people.csv").read_bytes())
    initial = {(r.event_id, r.track_id, r.registration_id): r.registration_status for r in everyone(box)}
    assert cmd(tmp_path, "run", str(people), "--status", "CANCELED", "--base-url", box.url, *FAST) == 0
    results = people.with_name("people.results.csv")
    rows = read_results(results)
    assert [row["previous_status"] for row in rows] == ["REGISTERED"] * 10
    capsys.readouterr()
    assert cmd(tmp_path, "undo", str(results), "--base-url", box.url, "--dry-run", *FAST) == 0
    planned = capsys.readouterr()
    assert "registrations: 10 to REGISTERED" in planned.out
    assert cmd(tmp_path, "undo", str(results), "--base-url", box.url, *FAST) == 0
    assert "" not in put_statuses(box)
    assert outcomes(results.with_name("people.results.undo.csv")) == ["succeeded"] * 10
    assert {(r.event_id, r.track_id, r.registration_id): r.registration_status for r in everyone(box)} == initial


# 4. verify checks the rows found by email, and fails when one is not at its target
def test_verify_checks_rows_named_by_email(start_sandbox: StartSandbox, tmp_path: Path) -> None:
    box = start_sandbox(registrations=sandbox.read_registrations(sandbox.DEFAULT_REGISTRATIONS))
    people = tmp_path / "people.csv"
    people.write_bytes((SAMPLES / "people.csv").read_bytes())
    assert cmd(tmp_path, "run", str(people), "--status", "CANCELED", "--base-url", box.url, *FAST) == 0
    results = people.with_name("people.results.csv")
    assert cmd(tmp_path, "verify", str(results), "--base-url", box.url, "--no-progress") == 0
    first = next(r for r in everyone(box) if r.email_address == "ada.dijkstra0@example.org")
    box.state.set_status(first.event_id, first.track_id, first.registration_id, "REGISTERED")
    assert cmd(tmp_path, "verify", str(results), "--base-url", box.url, "--no-progress") == 1
    verified = read_results(results.with_name("people.results.verify.csv"))
    assert [row["verified"] for row in verified].count("yes") == 9


# 5. a canary, an interrupted resume, then a resume: every change has its before-image, undo puts all back
def test_canary_then_a_stopped_resume_then_a_resume_keeps_every_before_image(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    known = [(EVENT, TRACK, reg_id(n), "CANCELED" if n % 5 == 0 else "PENDING") for n in range(30)]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, daily_quota=7), known)
    path = write_csv(ids_rows(range(30)), header=ID_HEADER)
    base = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--batch-size", "3", *FAST]
    assert cmd(tmp_path, *base, "--limit", "10") == 3  # canary: the rest held back
    results = path.with_name("input.results.csv")
    canary = read_results(results)[:10]
    assert [row["outcome"] for row in canary] == ["unchanged", *["succeeded"] * 4] * 2
    assert cmd(tmp_path, *base, "--resume") == 3  # the day's quota ends it
    box.scenario.daily_quota = None
    assert cmd(tmp_path, *base, "--resume") == 0
    rows = read_results(results)
    assert [row["outcome"] for row in rows] == ["unchanged", *["succeeded"] * 4] * 6
    assert {row["previous_status"] for row in rows if row["outcome"] == "succeeded"} == {"PENDING"}
    assert cmd(tmp_path, "undo", str(results), "--base-url", box.url, *FAST) == 0
    assert statuses(box, range(30)) == [status for *_, status in known]


# 6. the same command twice does not lose the first run's record
def test_the_same_command_twice_keeps_the_first_run_undoable(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(registrations=registered(range(5)))
    path = write_csv(ids_rows(range(5)), header=ID_HEADER)
    command = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, *FAST]
    assert cmd(tmp_path, *command) == 0
    assert cmd(tmp_path, *command) == 0
    assert outcomes(path.with_name("input.results.csv")) == ["unchanged"] * 5
    runs = history.list_runs(state_of(tmp_path))
    assert [run.counts.get("succeeded", 0) for run in runs] == [5, 0]
    assert "kept" in capsys.readouterr().err  # the replaced results are said to be kept, not silently lost
    assert cmd(tmp_path, "undo", runs[0].run_id, "--base-url", box.url, *FAST) == 0
    assert statuses(box, range(5)) == ["REGISTERED"] * 5
    capsys.readouterr()
    assert cmd(tmp_path, "runs") == 0
    listed = capsys.readouterr().out
    assert runs[0].run_id in listed and runs[1].run_id in listed


# 7. undo follows the journal, not a hand-edited results file
def test_undo_refuses_rows_the_journal_does_not_know_and_conflicting_rows(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    box = start_sandbox(registrations=registered(range(6)))
    path = write_csv(ids_rows(range(3)), header=ID_HEADER)
    assert cmd(tmp_path, "run", str(path), "--status", "CANCELED", "--base-url", box.url, *FAST) == 0
    other = write_csv(ids_rows(range(4, 6)), header=ID_HEADER, name="other.csv")
    assert cmd(tmp_path, "run", str(other), "--status", "CANCELED", "--base-url", box.url, *FAST) == 0
    results = path.with_name("input.results.csv")
    text = results.read_text(encoding="utf-8")
    appended = [  # another run's registration, and a second row for reg 0 with another previous status
        f"{EVENT},{TRACK},{reg_id(4)},succeeded,REGISTERED,CANCELED,200,,1,1",
        f"{EVENT},{TRACK},{reg_id(0)},succeeded,PENDING,CANCELED,200,,1,1",
    ]
    results.write_text(text + "\r\n".join(appended) + "\r\n", encoding="utf-8")
    before = len(box.state.puts)
    assert cmd(tmp_path, "undo", str(results), "--base-url", box.url, *FAST) == 1
    assert sorted(put_ids(box, since=before)) == [reg_id(1), reg_id(2)]
    assert statuses(box, range(6)) == ["CANCELED", "REGISTERED", "REGISTERED", "REGISTERED", "CANCELED", "CANCELED"]


# 8. the lock comes first: a second run on the same results path cannot act on the same earlier state
def test_a_second_run_on_the_same_results_path_is_refused_while_the_first_waits_at_its_prompt(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    box = start_sandbox(registrations=registered(range(4)))
    path = write_csv(ids_rows(range(4)), header=ID_HEADER)
    words = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--no-snapshot", "--resume", *FAST]
    second: list[int] = []

    def confirm(*_: object) -> bool:  # run B while run A waits at its prompt
        thread = threading.Thread(target=lambda: second.append(cmd(tmp_path, *words)))
        thread.start()
        thread.join()
        return True

    from batcher.cli import config  # noqa: PLC0415
    from batcher.cli.parser import build_parser, option_table  # noqa: PLC0415

    args = build_parser().parse_args([*words, "--state-dir", str(state_of(tmp_path))])
    specs, defaults = option_table()
    given = {name: value for name, value in vars(args).items() if name in specs}
    values = {**config.resolve(given, specs, defaults, TOKEN_ENV, None).values, "force": False}
    options = run_options(values, command="run", input_path=args.input)
    result = run_flow(options, TOKEN_ENV, RunHooks(confirm=confirm))
    assert second == [2] and result.exit_code == 0
    assert sorted(put_ids(box)) == sorted(reg_id(n) for n in range(4))  # each sent once, by A


# --resume: what it continues, and what it keeps
def test_resume_without_reads_skips_only_what_the_unfinished_runs_journal_applied(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(registrations=registered(range(3)))  # reg 3 unknown: a 207 fails it, the run is unfinished
    path = write_csv(ids_rows(range(4)), header=ID_HEADER)
    blind = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--no-snapshot", *FAST]
    assert cmd(tmp_path, *blind) == 1
    assert "--no-snapshot: nothing is checked against the API" in capsys.readouterr().err
    box.state.add(EVENT, TRACK, reg_id(3))
    before = len(box.state.puts)
    assert cmd(tmp_path, *blind, "--resume") == 0
    err = capsys.readouterr().err
    assert "--resume: continues run " in err and "journal says it applied are not sent again" in err
    assert put_ids(box, since=before) == [reg_id(3)]
    runs = history.list_runs(state_of(tmp_path))
    assert len(runs) == 1 and runs[0].attempts == 2 and runs[0].finished


def test_resume_says_why_it_starts_a_new_run_when_the_input_changed(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, daily_quota=2), registered(range(4)))
    path = write_csv(ids_rows(range(4)), header=ID_HEADER)
    words = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--batch-size", "2", *FAST]
    assert cmd(tmp_path, *words) == 3  # a read and one PUT, then the day's quota: unfinished
    box.scenario.daily_quota = None
    write_csv(ids_rows(range(2, 4)), header=ID_HEADER)  # tomorrow's file, under the same name
    capsys.readouterr()
    assert cmd(tmp_path, *words, "--resume") == 0
    assert "had another input (or the file changed since); this is a new run" in capsys.readouterr().err
    runs = history.list_runs(state_of(tmp_path))
    assert [run.finished for run in runs] == [False, True]
    assert runs[0].exit_code == 3 and runs[1].counts["succeeded"] == 2


def test_verify_and_undo_take_a_run_id_and_runs_lists_the_history(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(registrations=[(EVENT, TRACK, reg_id(n), "PENDING") for n in range(3)])
    path = write_csv(ids_rows(range(3)), header=ID_HEADER)
    assert cmd(tmp_path, "run", str(path), "--status", "CANCELED", "--base-url", box.url, *FAST) == 0
    (run,) = history.list_runs(state_of(tmp_path))
    assert (run.api, run.target, run.input_sha256) == (box.url, "CANCELED", history.fingerprint(path))
    assert run.results_copy.read_bytes() == path.with_name("input.results.csv").read_bytes()
    assert cmd(tmp_path, "verify", run.run_id, "--base-url", box.url, "--no-progress") == 0
    assert path.with_name("input.results.verify.csv").exists() and run.verify_copy.exists()
    assert cmd(tmp_path, "undo", run.run_id, "--base-url", box.url, "--dry-run", *FAST) == 0
    assert statuses(box, range(3)) == ["CANCELED"] * 3  # a dry run sends nothing
    assert cmd(tmp_path, "undo", run.run_id, "--base-url", box.url, *FAST) == 0
    assert statuses(box, range(3)) == ["PENDING"] * 3
    assert outcomes(path.with_name("input.results.undo.csv")) == ["succeeded"] * 3
    capsys.readouterr()
    assert cmd(tmp_path, "runs") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and f"undo of {run.run_id}" in lines[2] and "3 succeeded" in lines[1]
    assert cmd(tmp_path, "runs", run.run_id) == 0
    shown = capsys.readouterr().out
    assert f"api       {box.url}" in shown and f"kept      {run.journal}" in shown and "exit code 0" in shown
    assert cmd(tmp_path, "undo", "20991231T000000Z-0000", "--base-url", box.url, *FAST) == 2
    assert "no such run" in capsys.readouterr().err


# 6b. the .xlsx after the .csv of the same export: both write export.results.csv; the first run stays undoable
def test_the_xlsx_after_the_csv_of_one_export_keeps_the_csv_runs_record(
    start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import openpyxl  # noqa: PLC0415 - only this test writes a workbook

    box = start_sandbox(registrations=registered(range(4)))
    csv_path = tmp_path / "export.csv"
    csv_path.write_text(",".join(ID_HEADER) + "\n" + "".join(f"{EVENT},{TRACK},{reg_id(n)}\n" for n in range(2)))
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(ID_HEADER))
    for n in range(2, 4):
        sheet.append([EVENT, TRACK, reg_id(n)])
    book.save(tmp_path / "export.xlsx")
    for path in (csv_path, tmp_path / "export.xlsx"):
        assert cmd(tmp_path, "run", str(path), "--status", "CANCELED", "--base-url", box.url, *FAST) == 0
    first, second = history.list_runs(state_of(tmp_path))
    assert first.results == second.results == str(tmp_path / "export.results.csv")
    assert f"held the results of run {first.run_id}" in capsys.readouterr().err
    assert cmd(tmp_path, "undo", first.run_id, "--base-url", box.url, *FAST) == 0
    assert statuses(box, range(4)) == ["REGISTERED", "REGISTERED", "CANCELED", "CANCELED"]

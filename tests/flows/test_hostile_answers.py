"""Issue 18: answers from a server that is not quite the API, over real HTTP against the sandbox's hostile scenarios.

Endless and repeating lists, a 2xx that is not the API's, JSON nested past any sane depth, statuses outside the
enum, control characters, a token with a line break and a TLS certificate that fails verification.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.errors import EXIT_INTERNAL
from batcher.http import pacing as client
from batcher.models import KNOWN_STATUSES
from batcher.remote import records
from batcher.sandbox import app as sandbox
from tests.conftest import EVENT, TOKEN_ENV, TRACK, StartSandbox, WriteCsv, known, outcomes, read_results, reg_id
from tests.conftest import rows_for as rows_of

FAST = "--rate 1000 --no-progress"
DEEP = "[" * 200_000 + "]" * 200_000


@pytest.fixture
def no_waits() -> Iterator[None]:
    client.set_testing(True)
    yield
    client.set_testing(False)


def run(input_path: Path, url: str, results: Path, *options: str, environ: dict[str, str] | None = None) -> int:
    argv = ["run", str(input_path), "--status-column", "registration_status", "--base-url", url, "--yes"]
    argv += ["--results", str(results), *FAST.split(), *options]
    return cli.main(argv, environ=TOKEN_ENV if environ is None else environ)


def export(url: str, out: Path, *options: str) -> int:
    argv = ["export", EVENT, "--track", TRACK, "--base-url", url, "--out", str(out), *FAST.split(), *options]
    return cli.main(argv, environ=TOKEN_ENV)


def track_of(count: int, status: str = "REGISTERED") -> list[tuple[str, str, str, str]]:
    return [(EVENT, TRACK, reg_id(n), status) for n in range(count)]


def list_reads(box: sandbox.SandboxState) -> int:
    return sum(1 for request in box.reads if request.path.endswith("/registrations"))


# --- 1. a list whose cursor never ends ----------------------------------------------------------------------


@pytest.mark.parametrize("loop", ["same", "new"])
def test_an_endless_list_stops_a_run_within_its_read_bound(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, loop: str
) -> None:
    # the rows' registrations are beyond the first page, which the server serves again and again
    rows = [[EVENT, TRACK, reg_id(n), "CANCELED"] for n in range(200, 204)]
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None, list_loop=loop, max_page_size=100, daily_quota=60), track_of(300)
    )
    results = tmp_path / "r.csv"
    code = run(write_csv(rows), box.url, results)
    assert len(box.state.reads) <= 5  # the read bound of 4 rows: 1 + 4
    assert code == 1
    lines = read_results(results)
    assert [row["outcome"] for row in lines] == ["failed"] * 4
    assert all("did not end" in row["error"] for row in lines), lines[0]["error"]
    assert box.state.puts == []


@pytest.mark.parametrize("loop", ["same", "new"])
def test_an_endless_list_fails_an_export_with_exit_3_and_no_file(
    start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], loop: str
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, list_loop=loop, daily_quota=60), track_of(120))
    out = tmp_path / "export.csv"
    code = export(box.url, out)
    assert code == 3
    assert list_reads(box.state) <= 3
    assert not out.exists()
    assert "did not end" in capsys.readouterr().err


def test_a_list_with_more_records_than_its_total_stops(start_sandbox: StartSandbox, tmp_path: Path) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, list_loop="new", daily_quota=60), track_of(30))
    # the list_loop answers 30 records a page with total_records 30: the second page is already more than the total
    out = tmp_path / "export.csv"
    assert export(box.url, out) == 3
    assert list_reads(box.state) == 2
    assert not out.exists()


# --- 2. pages that repeat records ----------------------------------------------------------------------------


def test_repeating_pages_fail_an_export_instead_of_counting_duplicates(
    start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, repeat_first_page=True), track_of(200))
    out = tmp_path / "export.csv"
    code = export(box.url, out)
    err = capsys.readouterr().err
    assert code == 3, err
    assert not out.exists()
    assert "exported 200" not in err and "repeated" in err


def test_repeating_pages_make_a_run_get_what_it_did_not_find(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = [[EVENT, TRACK, reg_id(n), "CANCELED"] for n in range(200)]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, repeat_first_page=True), track_of(200))
    results = tmp_path / "r.csv"
    assert run(write_csv(rows), box.url, results) == 0
    lines = read_results(results)
    assert {row["previous_status"] for row in lines} == {"REGISTERED"}  # a before-image of every row
    single = [request for request in box.state.reads if not request.path.endswith("/registrations")]
    assert len(single) == 150  # the 150 the repeated pages never showed, one GET each
    assert list_reads(box.state) == 2


# --- 3. a 2xx that is not the API's ---------------------------------------------------------------------------


def test_an_html_200_to_a_put_stops_the_run_and_claims_nothing(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = "<!DOCTYPE html><html><body><h1>Please sign in to the guest network</h1></body></html>"
    rows = rows_of(10)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, put_answer=(200, "text/html", page)), known(rows))
    results = tmp_path / "r.csv"
    code = run(write_csv(rows), box.url, results, "--no-snapshot", "--batch-size", "5")
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Succeeded" not in outcomes(results) and "succeeded" not in outcomes(results)
    assert set(outcomes(results)) == {"pending"}
    assert "HTML page" in err and "not the API" in err
    assert len(box.state.puts) == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (207, "{}"),
        (207, json.dumps({"failed_registration_ids": ["ffffffff-0000-4000-8000-000000000001"]})),
        (202, ""),
    ],
    ids=["207-empty-object", "207-foreign-ids", "202"],
)
def test_a_2xx_that_does_not_say_what_was_applied_makes_no_row_succeeded(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, status: int, body: str
) -> None:
    rows = rows_of(10)
    scenario = sandbox.Scenario(rate_limit_per_s=None, put_answer=(status, "application/json", body))
    box = start_sandbox(scenario, known(rows))
    results = tmp_path / "r.csv"
    code = run(write_csv(rows), box.url, results, "--no-snapshot")
    assert code == 1
    lines = read_results(results)
    assert {row["outcome"] for row in lines} == {"failed"}
    assert all(f"HTTP {status}" in row["error"] for row in lines), lines[0]["error"]


# --- 4. JSON nested 200,000 deep; the last line of defence ---------------------------------------------------


@pytest.mark.parametrize("status", [500, 207])
def test_deep_json_to_a_put_is_an_unreadable_body(
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_waits: None,
    status: int,
) -> None:
    rows = rows_of(3)
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None, put_answer=(status, "application/json", DEEP)), known(rows)
    )
    results, summary = tmp_path / "r.csv", tmp_path / "summary.json"
    code = run(write_csv(rows), box.url, results, "--no-snapshot", "--summary-json", str(summary))
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    assert set(outcomes(results)) == {"failed"}
    assert json.loads(summary.read_text())["exit_code"] == 1


def test_a_deep_json_list_page_is_unreadable(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_of(3)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, list_body=DEEP), known(rows))
    results, summary = tmp_path / "r.csv", tmp_path / "summary.json"
    code = run(write_csv(rows), box.url, results, "--summary-json", str(summary))
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    lines = read_results(results)
    assert {row["outcome"] for row in lines} == {"failed"}
    assert all("cannot read" in row["error"] for row in lines)
    assert json.loads(summary.read_text())["exit_code"] == 1
    assert box.state.puts == []


def test_an_unexpected_error_still_writes_the_results_and_the_summary(
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(body: bytes) -> records.Page:
        raise RuntimeError("a bug nobody foresaw")

    monkeypatch.setattr(records, "parse_page", broken)  # a bug in batcher, not an answer of the server
    rows = rows_of(3)
    box = start_sandbox(registrations=known(rows))
    results, summary = tmp_path / "r.csv", tmp_path / "summary.json"
    code = run(write_csv(rows), box.url, results, "--summary-json", str(summary))
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL
    assert EXIT_INTERNAL not in (0, 1, 2, 3, 130)
    assert "Traceback" not in err and "a bug nobody foresaw" in err
    assert set(outcomes(results)) == {"pending"}
    assert json.loads(summary.read_text())["exit_code"] == EXIT_INTERNAL


# --- 5. statuses outside the API's enum ------------------------------------------------------------------------

FORMULA = "=1+2;CMD|' /C CALC'!A0"


def test_statuses_outside_the_enum_are_escaped_and_never_sent_back(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = rows_of(3)
    registered = [(EVENT, TRACK, reg_id(0), "WAITLISTED"), (EVENT, TRACK, reg_id(1), FORMULA)]
    box = start_sandbox(registrations=[*registered, (EVENT, TRACK, reg_id(2), "REGISTERED")])
    results = tmp_path / "r.csv"
    assert run(write_csv(rows), box.url, results) == 0
    raw = results.read_text(encoding="utf-8")
    assert ",=1+2" not in raw and ",'=1+2" in raw
    undo = cli.main(["undo", str(results), "--base-url", box.url, "--yes", "--no-progress"], environ=TOKEN_ENV)
    assert undo == 1
    sent = [request.json for request in box.state.puts[1:]]
    assert all(isinstance(body, dict) and body["registration_status"] in KNOWN_STATUSES for body in sent), sent
    undone = read_results(results.with_name("r.undo.csv"))
    assert [row["outcome"] for row in undone] == ["invalid", "invalid", "succeeded"]
    assert "not one of the API's statuses" in undone[0]["error"]
    assert box.state.status_of(EVENT, TRACK, reg_id(0)) == "CANCELED"


# --- 6. control characters from the server ----------------------------------------------------------------------

HOSTILE_TEXT = "\x1b[2J\x1b[1A\rbatcher: done, 0 failed\x07 \u202eevil"


def test_control_characters_from_the_server_never_reach_terminal_results_or_log(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_of(2)
    body = json.dumps([{"error_key": "x", "error_message": HOSTILE_TEXT}])
    scenario = sandbox.Scenario(rate_limit_per_s=None, put_answer=(400, "application/json", body))
    registered = [(EVENT, TRACK, reg_id(0), "REGISTERED\x1b[31m"), (EVENT, TRACK, reg_id(1), "REGISTERED")]
    box = start_sandbox(scenario, registered)
    results, log = tmp_path / "r.csv", tmp_path / "run.log"
    code = run(write_csv(rows), box.url, results, "-vv", "--log-file", str(log))
    out, err = capsys.readouterr()
    assert code == 1
    for name, text in {"stdout": out, "stderr": err, "results": results.read_text(), "log": log.read_text()}.items():
        assert not any(c in text for c in ("\x1b", "\x07", "\u202e")), name
    assert "\\x1b[2J" in read_results(results)[1]["error"]


# --- 7. an access token with CR/LF from the token endpoint ----------------------------------------------------


def test_a_token_with_a_line_break_is_refused_and_never_saved(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_of(2)
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None, issued_access_token="tok\r\nX-Injected: yes"), known(rows)
    )
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"refresh_token": sandbox.SANDBOX_REFRESH_TOKEN}), encoding="utf-8")
    environ = {"CTCT_CLIENT_ID": sandbox.SANDBOX_CLIENT_ID}
    token_url = box.url.removesuffix("/v3") + sandbox.TOKEN_PATH
    results = tmp_path / "r.csv"
    options = ("--token-file", str(tokens), "--token-url", token_url)
    code = run(write_csv(rows), box.url, results, *options, environ=environ)
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Traceback" not in err
    assert err.count("characters a token cannot have") == 1
    assert "\r" not in tokens.read_text(encoding="utf-8") and "\\r" not in tokens.read_text(encoding="utf-8")
    # a token file someone already spoilt is refused in one line too, before any request
    tokens.write_text(json.dumps({"access_token": "tok\r\nX: y"}), encoding="utf-8")
    before = len(box.state.requests)
    assert run(write_csv(rows), box.url, results, *options, environ=environ) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "characters" in err
    assert len(box.state.requests) == before


# --- 9. a TLS certificate that fails verification -------------------------------------------------------------


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    try:
        subprocess.run([*command, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make a self-signed certificate with openssl: {exc}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def test_a_certificate_that_fails_verification_stops_at_once(
    write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str], self_signed: ssl.SSLContext
) -> None:
    rows = rows_of(3)
    scenario = sandbox.Scenario(rate_limit_per_s=None)
    with sandbox.serve_in_thread(scenario, known(rows), ssl_context=self_signed) as (url, _state):
        assert url.startswith("https://")
        results, summary = tmp_path / "r.csv", tmp_path / "summary.json"
        code = run(write_csv(rows), url, results, "--summary-json", str(summary))
        err = capsys.readouterr().err
        assert code == 3, err
        assert "certificate" in err and "--no-snapshot" not in err
        assert json.loads(summary.read_text())["requests_sent"] == 1  # not retried
        assert set(outcomes(results)) == {"pending"}
        assert export(url, tmp_path / "e.csv") == 3
        assert "certificate" in capsys.readouterr().err


def test_a_token_endpoint_whose_certificate_fails_stops_the_run(
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    self_signed: ssl.SSLContext,
) -> None:
    rows = rows_of(2)
    box = start_sandbox(registrations=known(rows))
    environ = {"CTCT_REFRESH_TOKEN": sandbox.SANDBOX_REFRESH_TOKEN, "CTCT_CLIENT_ID": sandbox.SANDBOX_CLIENT_ID}
    with sandbox.serve_in_thread(sandbox.Scenario(rate_limit_per_s=None), ssl_context=self_signed) as (tls, _state):
        token_url = tls.removesuffix("/v3") + sandbox.TOKEN_PATH
        code = run(write_csv(rows), box.url, tmp_path / "r.csv", "--token-url", token_url, environ=environ)
    err = capsys.readouterr().err
    assert code == 3, err
    assert "TLS certificate" in err and "failed verification" in err and "Traceback" not in err
    assert box.state.requests == []

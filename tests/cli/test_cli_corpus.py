"""Malformed input files through the whole CLI: exit 2, one clear line on stderr, and not one request sent.

The small files live in tests/corpus/; the ones too big to commit (a field over 1 MiB) are made here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.input.loader import MAX_FIELD_CHARS
from tests.conftest import EVENT, TARGET_COLUMN, TRACK, RunningSandbox, StartSandbox, known, reg_id

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
TOKEN = "corpus-token-5e2f"

# file in tests/corpus -> the words its message must hold
EXPECTED = {
    "all_invalid.csv": "no row can be sent; every row is invalid",
    "blank_lines_only.csv": "the file is empty",
    "conflicting_only.csv": "no row can be sent; every row is invalid",
    "empty.csv": "the file is empty",
    "garbage.bin.csv": "does not look like a CSV/text file",
    "high_bytes.csv": "line 1 is not valid UTF-8 (byte 0x80)",
    "latin1.csv": "line 3 is not valid UTF-8 (byte 0xe9). If it comes from Excel on Windows, run again with "
    "--encoding cp1252",
    "missing_column.csv": 'no "registration_id" column (found: Event ID, Track ID, Status)',
    "not_a_workbook.xlsx": "not a readable .xlsx workbook",
    "nul_bytes.csv": "does not look like a CSV/text file: it holds NUL bytes (first on line 3)",
    "ragged.csv": "line 3 has 5 fields but the header has 4",
    "unclosed_quote.csv": "never closes",
    "utf16.csv": "run again with --encoding utf-16",
    "zip_renamed.csv": "It is a zip archive",
}


QUIET = "header_only.csv"  # a day with no cancellations: nothing to do, exit 0


def test_every_corpus_file_has_an_expected_message() -> None:
    assert sorted(path.name for path in CORPUS.iterdir()) == sorted([*EXPECTED, QUIET])


def test_a_header_only_file_is_nothing_to_do_and_exits_0(
    start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox()
    summary = tmp_path / "summary.json"
    code = run_refused(box, CORPUS / QUIET, tmp_path / "results.csv", "--summary-json", str(summary))
    err = capsys.readouterr().err
    assert (code, err) == (0, f"batcher: {CORPUS / QUIET}: has a header row but no data rows: nothing to do\n")
    assert box.state.requests == []
    document = json.loads(summary.read_text())
    assert (document["exit_code"], document["error"]) == (0, None)
    assert "nothing to do" in document["note"]


def assert_refused(
    code: int, capsys: pytest.CaptureFixture[str], box: RunningSandbox, path: Path, message: str, results: Path
) -> None:
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("batcher: error: ")
    assert err.count("\n") == 1 and err.endswith("\n")
    assert str(path) in err
    assert message in err
    assert "Traceback" not in err
    assert TOKEN not in err + out
    assert box.state.requests == []
    assert not results.exists()


def run_refused(box: RunningSandbox, path: Path, results: Path, *extra: str) -> int:
    args = [
        "run",
        *TARGET_COLUMN,
        str(path),
        "--base-url",
        box.url,
        "--yes",
        "--no-progress",
        "--results",
        str(results),
        *extra,
    ]
    return cli.main(args, environ={"CTCT_ACCESS_TOKEN": TOKEN})


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_file_exits_2_and_sends_nothing(
    start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    box = start_sandbox()
    path = CORPUS / name
    results = tmp_path / "results.csv"
    assert_refused(run_refused(box, path, results), capsys, box, path, EXPECTED[name], results)


def huge_field(tmp_path: Path) -> Path:
    path = tmp_path / "huge_field.csv"
    head = f"event_id,track_id,registration_id,note\n{EVENT},{TRACK},{reg_id(1)},".encode()
    path.write_bytes(head + b"x" * (MAX_FIELD_CHARS + 1) + b"\n")
    return path


def folder(tmp_path: Path) -> Path:
    path = tmp_path / "folder.csv"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (huge_field, "row 2, column 4 holds 1,048,577 characters, over the limit of 1 MiB"),
        (lambda tmp_path: tmp_path / "missing.csv", "no such file"),
        (folder, "is a folder, not a CSV file"),
    ],
)
def test_made_up_files_exit_2_and_send_nothing(
    start_sandbox: StartSandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Path],
    message: str,
) -> None:
    box = start_sandbox()
    path = make(tmp_path)
    results = tmp_path / "results.csv"
    assert_refused(run_refused(box, path, results), capsys, box, path, message, results)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--encoding", "klingon"], "--encoding 'klingon' is not a text encoding"),
        (["--delimiter", "|"], "--delimiter takes"),
        (["--column", "event=Event"], "--column takes FIELD=HEADER"),
        (["--column", "event_id=Event"], '--column event_id=Event: no column "Event"'),
        (["--only", "failed"], "--only needs the results file of an earlier run"),
        (["--sheet", "One"], "--sheet applies to .xlsx workbooks"),
    ],
)
def test_options_that_do_not_fit_exit_2_and_send_nothing(
    start_sandbox: StartSandbox,
    write_csv: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    rows = [[EVENT, TRACK, reg_id(1), "CANCELED"]]
    box = start_sandbox(registrations=known(rows))
    results = tmp_path / "results.csv"
    code = run_refused(box, write_csv(rows), results, *extra)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("batcher: error: ") and err.count("\n") == 1
    assert message in err
    assert box.state.requests == []
    assert not results.exists()

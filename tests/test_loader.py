"""Reading, header matching, row validation, duplicates and grouping of the input CSV."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batcher.errors import InputError, UsageError
from batcher.loader import _read_careful, _read_fast, load_input, normalize_header
from tests.conftest import EVENT, HEADER, TRACK, reg_id, rows_for

WriteCsv = Callable[..., Path]


@pytest.mark.parametrize("name", ["event_id", "Event ID", "event-id", "EventId", "  EVENT_ID  ", "Event  Id"])
def test_header_variants_match(name: str) -> None:
    assert normalize_header(name) == normalize_header("event_id")


def test_spreadsheet_headers_and_extra_columns_are_kept(write_csv: WriteCsv) -> None:
    path = write_csv(
        [[EVENT, "Ada", TRACK, reg_id(1), "canceled"]],
        header=["Event ID", "Name", "Track-ID", "RegistrationId", "Registration Status"],
    )
    loaded = load_input(path, default_status=None)
    assert loaded.header == ("Event ID", "Name", "Track-ID", "RegistrationId", "Registration Status")
    assert [column[0] for column in loaded.values] == [EVENT, "Ada", TRACK, reg_id(1), "canceled"]
    assert loaded.registration_status[0] == "CANCELED"
    assert loaded.invalid_reason[0] == ""


def test_missing_column_names_the_file_the_column_and_what_was_found(write_csv: WriteCsv) -> None:
    path = write_csv([[EVENT, reg_id(1)]], header=["Event ID", "Registration ID"])
    with pytest.raises(InputError) as caught:
        load_input(path, default_status="CANCELED")
    assert str(caught.value) == (
        f'{path}: no "track_id" column (found: Event ID, Registration ID). '
        "Headers match ignoring case, spaces, dashes and underscores."
    )


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfevent_id,track_id,registration_id\n" + f"{EVENT},{TRACK},{reg_id(1)}\n".encode())
    loaded = load_input(path, default_status="CANCELED")
    assert loaded.header[0] == "event_id"
    assert loaded.invalid_reason.tolist() == [""]


def test_blank_lines_are_not_rows(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text(
        f"event_id,track_id,registration_id\n\n{EVENT},{TRACK},{reg_id(1)}\n\n\n{EVENT},{TRACK},{reg_id(2)}\n"
    )
    assert load_input(path, default_status="CANCELED").row_count == 2


def test_values_are_kept_exactly_as_written(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    path.write_text(f"event_id,track_id,registration_id,note\n {EVENT.upper()} ,{TRACK},{reg_id(1)},007\n")
    loaded = load_input(path, default_status="CANCELED")
    assert loaded.values[0][0] == f" {EVENT.upper()} "
    assert loaded.values[3][0] == "007"
    assert loaded.event_id[0] == EVENT
    assert loaded.invalid_reason[0] == ""


def test_row_status_wins_over_default_and_default_fills_blanks(write_csv: WriteCsv) -> None:
    path = write_csv([[EVENT, TRACK, reg_id(1), "registered"], [EVENT, TRACK, reg_id(2), ""]])
    loaded = load_input(path, default_status="canceled")
    assert loaded.registration_status.tolist() == ["REGISTERED", "CANCELED"]


def test_cancelled_spelling_is_accepted_with_a_note(write_csv: WriteCsv) -> None:
    loaded = load_input(write_csv([[EVENT, TRACK, reg_id(1), "Cancelled"]]), default_status=None)
    assert loaded.registration_status[0] == "CANCELED"
    assert loaded.notes and "Cancelled" in loaded.notes[0]


def test_unknown_default_status_is_a_usage_error(write_csv: WriteCsv) -> None:
    with pytest.raises(UsageError, match="--status 'REFUNDED' is not a known status"):
        load_input(write_csv(rows_for(1)), default_status="REFUNDED")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["", TRACK, reg_id(1), "CANCELED"], "event_id is empty"),
        (["nope", TRACK, reg_id(1), "CANCELED"], 'event_id is not a UUID: "nope"'),
        ([EVENT, "", reg_id(1), "CANCELED"], "track_id is empty"),
        ([EVENT, "../contacts", reg_id(1), "CANCELED"], 'track_id may hold only letters and digits: "../contacts"'),
        ([EVENT, "a?b", reg_id(1), "CANCELED"], 'track_id may hold only letters and digits: "a?b"'),
        ([EVENT, TRACK, "", "CANCELED"], "registration_id is empty"),
        ([EVENT, TRACK, "r-7", "CANCELED"], 'registration_id is not a UUID: "r-7"'),
        ([EVENT, TRACK, reg_id(1), ""], "no registration_status in this row and no --status given"),
        ([EVENT, TRACK, reg_id(1), "Refunded"], 'unknown registration_status "Refunded"'),
    ],
)
def test_invalid_rows_get_a_reason(write_csv: WriteCsv, row: list[str], reason: str) -> None:
    loaded = load_input(write_csv([row, [EVENT, TRACK, reg_id(9), "CANCELED"]]), default_status=None)
    assert loaded.invalid_reason[0].startswith(reason)
    assert loaded.invalid_reason[1] == ""
    assert [group.registration_ids for group in loaded.groups] == [(reg_id(9),)]


def test_exact_repeats_are_duplicates_of_the_first_copy(write_csv: WriteCsv) -> None:
    rows = [
        [EVENT, TRACK, reg_id(1), "CANCELED"],
        [EVENT, TRACK, reg_id(2), "CANCELED"],
        [EVENT, TRACK, reg_id(1).upper(), "canceled"],
    ]
    loaded = load_input(write_csv(rows), default_status=None)
    assert loaded.duplicate_of.tolist() == [-1, -1, 0]
    assert loaded.groups[0].registration_ids == (reg_id(1), reg_id(2))


def test_two_statuses_for_one_registration_make_every_such_row_invalid(write_csv: WriteCsv) -> None:
    rows = [
        [EVENT, TRACK, reg_id(1), "CANCELED"],
        [EVENT, TRACK, reg_id(1), "REGISTERED"],
        [EVENT, TRACK, reg_id(2), "CANCELED"],
    ]
    loaded = load_input(write_csv(rows), default_status=None)
    assert "more than one status" in loaded.invalid_reason[0]
    assert "more than one status" in loaded.invalid_reason[1]
    assert loaded.invalid_reason[2] == ""


def test_rows_are_grouped_by_event_track_and_status_in_first_appearance_order(write_csv: WriteCsv) -> None:
    rows = [
        [EVENT, "b", reg_id(1), "CANCELED"],
        [EVENT, "a", reg_id(2), "CANCELED"],
        [EVENT, "b", reg_id(3), "REGISTERED"],
        [EVENT, "b", reg_id(4), "CANCELED"],
    ]
    loaded = load_input(write_csv(rows), default_status=None)
    assert [(g.track_id, g.registration_status, g.rows) for g in loaded.groups] == [
        ("b", "CANCELED", (0, 3)),
        ("a", "CANCELED", (1,)),
        ("b", "REGISTERED", (2,)),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"event_id,track_id,registration_id\n", "has a header row but no data rows"),
        (b"event_id,track_id,registration_id\n\xff\xfe,x,y\n", "is not valid UTF-8"),
    ],
)
def test_unreadable_files_are_input_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_input(path, default_status="CANCELED")


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_input(tmp_path / "nope.csv", default_status="CANCELED")


def test_a_large_file_finds_repeats_and_conflicts_like_a_small_one(write_csv: WriteCsv) -> None:
    # enough rows that registration IDs are checked value by value and proven distinct by hashing
    rows = rows_for(6000)
    rows += [rows[10], [EVENT, TRACK, reg_id(20).upper(), "canceled"], [EVENT, TRACK, reg_id(30), "REGISTERED"]]
    rows += [[EVENT, TRACK, "not-a-uuid", "CANCELED"], [EVENT, TRACK, f" {reg_id(40)} ", "CANCELED"]]
    loaded = load_input(write_csv(rows), default_status=None)
    duplicates = {row: first for row, first in enumerate(loaded.duplicate_of.tolist()) if first >= 0}
    assert duplicates == {6000: 10, 6001: 20, 6004: 40}
    conflicted = [row for row, reason in enumerate(loaded.invalid_reason.tolist()) if "more than one status" in reason]
    assert conflicted == [30, 6002]
    assert loaded.invalid_reason[6003] == 'registration_id is not a UUID: "not-a-uuid"'
    assert loaded.registration_id[6004] == reg_id(40)
    assert loaded.values[2][6004] == f" {reg_id(40)} "
    (group,) = loaded.groups
    assert len(group.registration_ids) == 5999
    assert 30 not in group.rows


def test_values_are_a_sequence_of_columns(write_csv: WriteCsv) -> None:
    loaded = load_input(
        write_csv([[EVENT, TRACK, reg_id(1), "x", "Ann"]], header=[*HEADER, "name"]), default_status=None
    )
    assert len(loaded.values) == 5
    assert [column.tolist() for column in loaded.values] == [[EVENT], [TRACK], [reg_id(1)], ["x"], ["Ann"]]
    assert loaded.values[-1] is loaded.values[4]
    assert [column.tolist() for column in loaded.values[1:3]] == [[TRACK], [reg_id(1)]]
    with pytest.raises(IndexError):
        loaded.values[5]


# Lone "\r" line ends are left out: after a blank line ending in one, pandas' parser drops the first (empty) field
# of the next row, which pyarrow keeps.
CSV_PIECES = st.sampled_from(["a", "b", "", ",", '"', '""', " ", "\n", "\r\n", "\n\n", "é", "x,y", '"q"', ',"', "\t"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(CSV_PIECES, min_size=1, max_size=40).map("".join))
def test_the_fast_reader_reads_every_file_as_the_careful_reader_does(tmp_path: Path, text: str) -> None:
    """pyarrow reads regular files; whatever it reads, it reads as pandas' C parser (the careful reader) does."""
    path = tmp_path / "fuzz.csv"
    path.write_text("event_id,track_id,registration_id\n" + text, encoding="utf-8", newline="")
    try:
        fast = _read_fast(path)
    except pa.ArrowException:
        return  # load_input reads such a file the careful way
    careful = _read_careful(path)
    assert fast.to_pydict() == careful.to_pydict()

"""Reading, header matching, row validation, duplicates and grouping of the input CSV."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

from batcher.errors import InputError, NothingToDo, UsageError
from batcher.input.earlier import RESULT_COLUMNS
from batcher.input.loader import MAX_FIELD_CHARS, InputOptions, load_input, normalize_header
from tests.conftest import EVENT, HEADER, TRACK, WriteCsv, reg_id, rows_for


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
    path = write_csv([[EVENT, TRACK]], header=["Event ID", "Track ID"])
    with pytest.raises(InputError) as caught:
        load_input(path, default_status="CANCELED")
    assert str(caught.value) == (
        f'{path}: no "registration_id" column (found: Event ID, Track ID). '
        "Headers match ignoring case, spaces, dashes and underscores; "
        "or name the column with --column registration_id=HEADER. "
        "Or name people by email: an Email column, or --column email_address=HEADER."
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
        ([EVENT, "../contacts", reg_id(1), "CANCELED"], 'track_id may hold only letters and digits: "../contacts"'),
        ([EVENT, "a?b", reg_id(1), "CANCELED"], 'track_id may hold only letters and digits: "a?b"'),
        ([EVENT, TRACK, "", "CANCELED"], "registration_id is empty"),
        ([EVENT, TRACK, "r-7", "CANCELED"], 'registration_id is not a UUID: "r-7"'),
        ([EVENT, TRACK, reg_id(1), ""], "no target status in this row's status column, and no --status given"),
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
        (b"event_id,track_id,registration_id\n\xff\xfe,x,y\n", "is not valid UTF-8"),
    ],
)
def test_unreadable_files_are_input_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_input(path, default_status="CANCELED")


def test_a_header_only_file_is_nothing_to_do(tmp_path: Path) -> None:
    path = tmp_path / "quiet.csv"
    path.write_bytes(b"event_id,track_id,registration_id\n")
    with pytest.raises(NothingToDo, match="has a header row but no data rows: nothing to do") as caught:
        load_input(path, default_status="CANCELED")
    assert caught.value.exit_code == 0


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_input(tmp_path / "nope.csv", default_status="CANCELED")


# --- reading: separators, encodings, line endings, hostile bytes

GOOD_ROW = [EVENT, TRACK, reg_id(1), "CANCELED"]


def write_bytes(tmp_path: Path, content: bytes, name: str = "input.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_separator_is_detected_from_the_header(tmp_path: Path, delimiter: str) -> None:
    lines = [
        delimiter.join(["event_id", "track_id", "registration_id", "Name, first"]),
        delimiter.join([*GOOD_ROW[:3], "Ann"]),
    ]
    if delimiter == ",":
        lines = ['event_id,track_id,registration_id,"Name; first"', ",".join([*GOOD_ROW[:3], "Ann"])]
    loaded = load_input(write_bytes(tmp_path, "\n".join(lines).encode()), default_status="CANCELED")
    assert len(loaded.header) == 4
    assert loaded.values[3].tolist() == ["Ann"]
    assert loaded.invalid_reason.tolist() == [""]


def test_quoted_separators_in_the_header_do_not_fool_the_detection(tmp_path: Path) -> None:
    content = f'"a;b;c;d;e",event_id,track_id,registration_id\nx,{EVENT},{TRACK},{reg_id(1)}\n'
    loaded = load_input(write_bytes(tmp_path, content.encode()), default_status="CANCELED")
    assert loaded.header == ("a;b;c;d;e", "event_id", "track_id", "registration_id")


def test_an_explicit_delimiter_wins_over_detection(tmp_path: Path) -> None:
    # comma and semicolon both split this header in four; detection prefers the comma, which is wrong here
    path = write_bytes(tmp_path, f"event_id;track_id;registration_id;a,b,c,d\n{EVENT};{TRACK};{reg_id(1)};x\n".encode())
    with pytest.raises(InputError, match="found: event_id;track_id;registration_id;a, b, c, d"):
        load_input(path, default_status="CANCELED")
    loaded = load_input(path, default_status="CANCELED", options=InputOptions(delimiter=";"))
    assert loaded.header == ("event_id", "track_id", "registration_id", "a,b,c,d")


def test_crlf_embedded_newlines_trailing_spaces_and_empty_rows(tmp_path: Path) -> None:
    content = (
        "\ufeffEvent ID ,Track ID,Registration ID,Note\r\n"
        f'{EVENT} ,{TRACK}  ,  {reg_id(1).upper()},"two\r\nlines"\r\n'
        ",,,\r\n"
        "\r\n"
        f'{EVENT},{TRACK},{reg_id(2)},"say ""hi"""\r\n'
    )
    loaded = load_input(write_bytes(tmp_path, content.encode()), default_status="CANCELED")
    assert loaded.row_count == 2
    assert loaded.header == ("Event ID ", "Track ID", "Registration ID", "Note")
    assert loaded.values[2].tolist() == [f"  {reg_id(1).upper()}", reg_id(2)]
    assert loaded.values[3].tolist() == ["two\r\nlines", 'say "hi"']
    assert loaded.registration_id.tolist() == [reg_id(1), reg_id(2)]
    assert loaded.invalid_reason.tolist() == ["", ""]


def test_cp1252_file_is_refused_naming_the_line_and_read_with_encoding_cp1252(tmp_path: Path) -> None:
    content = (
        f"event_id,track_id,registration_id,name\n{EVENT},{TRACK},{reg_id(1)},Ann\n{EVENT},{TRACK},{reg_id(2)},Renée\n"
    )
    path = write_bytes(tmp_path, content.encode("cp1252"))
    with pytest.raises(InputError) as caught:
        load_input(path, default_status="CANCELED")
    assert str(caught.value) == (
        f"{path}: line 3 is not valid UTF-8 (byte 0xe9). If it comes from Excel on Windows, run again with "
        "--encoding cp1252; or save it from your spreadsheet as 'CSV UTF-8'."
    )
    loaded = load_input(path, default_status="CANCELED", options=InputOptions(encoding="cp1252"))
    assert loaded.values[3].tolist() == ["Ann", "Renée"]


def test_bytes_undefined_in_cp1252_are_refused_too(tmp_path: Path) -> None:
    path = write_bytes(
        tmp_path, f"event_id,track_id,registration_id\n{EVENT},{TRACK},{reg_id(1)}\x81\n".encode("latin-1")
    )
    with pytest.raises(InputError, match=r"line 2 is not valid cp1252 \(byte 0x81\)\. Find the file's encoding"):
        load_input(path, default_status="CANCELED", options=InputOptions(encoding="cp1252"))


def test_a_utf8_bom_with_another_encoding_is_refused(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, b"\xef\xbb\xbfevent_id,track_id,registration_id\n")
    with pytest.raises(InputError, match="so it is UTF-8, not cp1252; run again without --encoding"):
        load_input(path, default_status="CANCELED", options=InputOptions(encoding="cp1252"))


def test_utf16_text_is_recognised_and_read_with_encoding_utf16(tmp_path: Path) -> None:
    content = f"event_id\ttrack_id\tregistration_id\r\n{EVENT}\t{TRACK}\t{reg_id(1)}\r\n"
    path = write_bytes(tmp_path, content.encode("utf-16"))
    with pytest.raises(InputError, match=r"looks like UTF-16 text .*--encoding utf-16"):
        load_input(path, default_status="CANCELED")
    loaded = load_input(path, default_status="CANCELED", options=InputOptions(encoding="UTF-16"))
    assert loaded.header == ("event_id", "track_id", "registration_id")
    assert loaded.invalid_reason.tolist() == [""]


@pytest.mark.parametrize("name", ["nope", "hex", "rot13"])
def test_an_unknown_encoding_is_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError, match=f"--encoding '{name}' is not a text encoding"):
        InputOptions(encoding=name)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "holds NUL bytes (first on line 3). batcher reads CSV text"),
        (b"PK\x03\x04\x14\x00\x00\x00", "It is a zip archive; an Excel workbook must keep its .xlsx suffix"),
        (f"event_id,track_id,registration_id\n{EVENT},{TRACK},{reg_id(1)}\x00\n".encode(), "first on line 2"),
    ],
)
def test_binary_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = write_bytes(tmp_path, content)
    with pytest.raises(InputError, match="does not look like a CSV/text file") as caught:
        load_input(path, default_status="CANCELED")
    assert message in str(caught.value)


def test_a_field_over_1_mib_is_refused_naming_the_row(tmp_path: Path) -> None:
    content = f"event_id,track_id,registration_id,note\n{EVENT},{TRACK},{reg_id(1)},x\n{EVENT},{TRACK},{reg_id(2)},"
    path = write_bytes(tmp_path, content.encode() + b"y" * (MAX_FIELD_CHARS + 1) + b"\n")
    with pytest.raises(InputError, match=r"row 3, column 4 holds 1,048,577 characters, over the limit of 1 MiB"):
        load_input(path, default_status="CANCELED")
    path.write_bytes(content.encode() + b"y" * MAX_FIELD_CHARS + b"\n")
    assert load_input(path, default_status="CANCELED").row_count == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            f"event_id,track_id,registration_id\n\n{EVENT},{TRACK},{reg_id(1)},extra,more\n",
            "line 3 has 5 fields but the header has 3 (comma-separated)",
        ),
        (
            f'event_id,track_id,registration_id\n{EVENT},{TRACK},"{reg_id(1)}\n{EVENT},{TRACK}\n',
            "the quoted field that opens near line 2 never closes",
        ),
        (",,,\n\n,,,\n,,", "the file is empty"),
        ("\ufeff", "the file is empty"),
    ],
)
def test_malformed_text_is_refused_with_the_place(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        load_input(write_bytes(tmp_path, content.encode()), default_status="CANCELED")


def test_a_folder_and_an_unreadable_file_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder, not a CSV file"):
        load_input(tmp_path, default_status="CANCELED")
    path = write_bytes(tmp_path, b"event_id,track_id,registration_id\n")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads any file: use one whose reading fails for everyone
        path = Path("/proc/self/mem")
        if not path.exists():
            pytest.skip("no file here that root cannot read")
    with pytest.raises(InputError, match=r"cannot be read \("):
        load_input(path, default_status="CANCELED")


# --- messages stay on one line whatever the file holds


def test_control_characters_in_headers_and_cells_do_not_reach_messages_raw(tmp_path: Path) -> None:
    content = f'"Event\nID\x1b[2J",track_id,registration_id\n{EVENT},"a\x1b]b\nc",{reg_id(1)}\n'
    with pytest.raises(InputError) as caught:
        load_input(write_bytes(tmp_path, content.encode()), default_status="CANCELED")
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)
    content = f'event_id,track_id,registration_id\n{EVENT},"a\x1b]b\nc",{reg_id(1)}\n'
    loaded = load_input(write_bytes(tmp_path, content.encode()), default_status="CANCELED")
    assert loaded.invalid_reason[0] == 'track_id may hold only letters and digits: "a\ufffd]b\ufffdc"'


@pytest.mark.parametrize("track", ["a/b", "..", "a#b", "a%2Fb", "a b", " ", "a\tb", "ab\u00e9", "x" * 65])
def test_track_ids_that_could_alter_the_url_are_invalid(write_csv: WriteCsv, track: str) -> None:
    loaded = load_input(write_csv([[EVENT, track, reg_id(1), "CANCELED"]]), default_status=None)
    if track.strip():
        assert loaded.invalid_reason[0].startswith("track_id may hold only letters and digits")
    else:  # an empty track: the event's default track, read before sending
        assert loaded.needs_resolution is not None and loaded.needs_resolution[0]
    assert loaded.groups == ()


# --- --column


def test_column_mapping_names_headers_that_do_not_match(write_csv: WriteCsv) -> None:
    path = write_csv(
        [["ignored", EVENT, TRACK, reg_id(1), "Cancelled"]], header=["event_id", "Evt", "Trk", "Reg", "What"]
    )
    options = InputOptions(
        columns=(
            ("event_id", "Evt"),
            ("track_id", "trk"),
            ("registration_id", " Reg "),
            ("registration_status", "What"),
        )
    )
    loaded = load_input(path, default_status=None, options=options)
    assert loaded.event_id.tolist() == [EVENT]
    assert loaded.registration_status.tolist() == ["CANCELED"]
    assert loaded.header[0] == "event_id"  # now just another column, kept in the results


def test_column_mapping_to_a_missing_header_lists_the_columns_found(write_csv: WriteCsv) -> None:
    path = write_csv([GOOD_ROW], header=["Evt", "Trk", "Reg", "Status"])
    with pytest.raises(InputError) as caught:
        load_input(path, default_status=None, options=InputOptions(columns=(("event_id", "Event"),)))
    assert str(caught.value) == f'{path}: --column event_id=Event: no column "Event" (found: Evt, Trk, Reg, Status).'


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"columns": (("event", "E"),)}, "--column event=...: 'event' is not one of event_id"),
        ({"columns": (("event_id", "E"), ("event_id", "F"))}, "--column event_id=... is given more than once"),
        ({"columns": (("event_id", "E"), ("track_id", "e"))}, "--column maps one header to two fields"),
        ({"columns": (("event_id", " "),)}, "--column event_id= needs the header"),
        ({"delimiter": "|"}, "--delimiter takes a comma, a semicolon or tab"),
    ],
)
def test_bad_input_options_are_usage_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        InputOptions(**options)  # type: ignore[arg-type]


# --- a results file as input


def results_file(tmp_path: Path) -> Path:
    header = ["Event ID", "Track ID", "Registration ID", "Name", *RESULT_COLUMNS]
    rows = [
        [EVENT, TRACK, reg_id(1), "Ann", "succeeded", "200", "", "1", "1"],
        [EVENT, TRACK, reg_id(2), "Bo", "failed", "207", "rejected by the API in a 207 response", "1", "1"],
        [EVENT, TRACK, "bad", "Cy", "invalid", "", 'registration_id is not a UUID: "bad"', "", ""],
        [EVENT, TRACK, reg_id(4), "Di", "pending", "", "not sent", "", "2"],
    ]
    path = tmp_path / "input.results.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def test_a_results_file_loads_as_its_user_columns(tmp_path: Path) -> None:
    loaded = load_input(results_file(tmp_path), default_status="CANCELED")
    assert loaded.header == ("Event ID", "Track ID", "Registration ID", "Name")
    assert len(loaded.values) == 4
    assert loaded.row_count == 4
    assert loaded.skipped_rows == 0


def test_only_keeps_the_rows_of_the_named_outcomes(tmp_path: Path) -> None:
    options = InputOptions(only=frozenset({"failed", "pending"}))
    loaded = load_input(results_file(tmp_path), default_status="CANCELED", options=options)
    assert loaded.values[3].tolist() == ["Bo", "Di"]
    assert loaded.registration_id.tolist() == [reg_id(2), reg_id(4)]
    assert loaded.skipped_rows == 2


def test_only_with_no_matching_row_or_on_a_plain_file_is_a_usage_error(tmp_path: Path, write_csv: WriteCsv) -> None:
    with pytest.raises(UsageError, match=r"no row has an outcome in --only duplicate.*\(1 succeeded, 1 failed"):
        load_input(results_file(tmp_path), default_status=None, options=InputOptions(only=frozenset({"duplicate"})))
    with pytest.raises(UsageError, match="--only needs the results file of an earlier run"):
        load_input(write_csv([GOOD_ROW]), default_status=None, options=InputOptions(only=frozenset({"failed"})))


# --- large files: registration IDs checked value by value, proven distinct by hashing, coded only on a repeat


def test_a_large_file_finds_repeats_and_conflicts_like_a_small_one(write_csv: WriteCsv) -> None:
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


def test_a_large_file_of_few_registrations_repeated_is_coded_by_value(write_csv: WriteCsv) -> None:
    # the first rows repeat, so the registration column is dictionary-encoded like the event column
    rows = [[EVENT, TRACK, reg_id(row % 100), "CANCELED"] for row in range(5000)]
    rows[4999] = [EVENT, TRACK, reg_id(99), "REGISTERED"]
    loaded = load_input(write_csv(rows), default_status=None)
    assert loaded.duplicate_of[:100].tolist() == [-1] * 100
    assert loaded.duplicate_of[100:4999:100].tolist() == [0] * 49
    assert all("more than one status" in loaded.invalid_reason[row] for row in range(99, 5000, 100))
    (group,) = loaded.groups
    assert group.registration_ids == tuple(reg_id(n) for n in range(99))


def test_values_are_a_sequence_of_columns_made_when_first_used(write_csv: WriteCsv) -> None:
    loaded = load_input(
        write_csv([[EVENT, TRACK, reg_id(1), "x", "Ann"]], header=[*HEADER, "name"]), default_status=None
    )
    assert len(loaded.values) == 5
    assert [column.tolist() for column in loaded.values] == [[EVENT], [TRACK], [reg_id(1)], ["x"], ["Ann"]]
    assert loaded.values[-1] is loaded.values[4]
    assert [column.tolist() for column in loaded.values[1:3]] == [[TRACK], [reg_id(1)]]
    with pytest.raises(IndexError):
        loaded.values[5]


def test_the_1_mib_limit_counts_characters_not_bytes(tmp_path: Path) -> None:
    content = f"event_id,track_id,registration_id,note\n{EVENT},{TRACK},{reg_id(1)},".encode()
    path = write_bytes(tmp_path, content + "é".encode() * MAX_FIELD_CHARS + b"\n")
    assert load_input(path, default_status="CANCELED").values[3][0] == "é" * MAX_FIELD_CHARS
    path.write_bytes(content + "é".encode() * (MAX_FIELD_CHARS + 1) + b"\n")
    with pytest.raises(InputError, match=r"row 2, column 4 holds 1,048,577 characters"):
        load_input(path, default_status="CANCELED")


@pytest.mark.parametrize(
    "content",
    [
        # read by pyarrow: regular rows, quoted or not
        f'event_id,track_id,registration_id\n{EVENT},{TRACK},"{reg_id(1)}"\n{EVENT},{TRACK},{reg_id(2)}\n',
        # read by pandas' parser: a short row is padded, a blank line ends in a lone CR, a one-column file
        f"event_id,track_id,registration_id\n{EVENT},{TRACK},{reg_id(1)}\n{EVENT},{TRACK}\n",
        f"event_id,track_id,registration_id\r\n\r{EVENT},{TRACK},{reg_id(1)}\r\n{EVENT},{TRACK},{reg_id(2)}\r\n",
    ],
)
def test_both_readers_give_the_same_rows(tmp_path: Path, content: str) -> None:
    loaded = load_input(write_bytes(tmp_path, content.encode()), default_status="CANCELED")
    assert loaded.values[0].tolist() == [EVENT, EVENT]
    assert loaded.registration_id[0] == reg_id(1)

"""Property tests: whatever bytes or text the loader is given, it returns a clean result or a clean InputError.

A clean result has one results line per row; a clean error is one line that names the file. Nothing else
may escape: no pandas, Unicode or csv exception, no crash.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from batcher.errors import InputError, NothingToDo
from batcher.input.earlier import RESULT_COLUMNS
from batcher.input.loader import InputOptions, LoadedInput, load_input
from batcher.input.table import read_careful, read_fast
from batcher.plan.chunker import plan_batches
from batcher.plan.reconciler import reconcile
from batcher.results.writer import write_results
from tests.conftest import EVENT, TRACK, reg_id

QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER_LINE = "event_id,track_id,registration_id,registration_status\n"
# characters that matter to a CSV reader, mixed into random text so it meets them often
TRICKY = st.sampled_from(
    [
        ",",
        ";",
        "\t",
        '"',
        "\n",
        "\r",
        "\r\n",
        " ",
        "\ufeff",
        "\x00",
        "=",
        "'",
        "\\",
        EVENT,
        TRACK,
        reg_id(1),
        "CANCELED",
    ]
)
CSVISH = st.lists(st.one_of(TRICKY, st.text(max_size=8)), max_size=60).map("".join)
# raw lines of plausible cells joined without quoting: often valid rows, sometimes hostile ones
ROWISH = st.lists(
    st.tuples(
        st.one_of(st.sampled_from([EVENT, EVENT.upper(), f" {EVENT} "]), st.text(max_size=4)),
        st.one_of(st.sampled_from([TRACK, "Track2", "../x"]), st.text(max_size=4)),
        st.one_of(st.sampled_from([reg_id(1), reg_id(2), reg_id(1).upper()]), st.text(max_size=4)),
        st.one_of(st.sampled_from(["CANCELED", "Cancelled", "registered", ""]), st.text(max_size=4)),
    ).map(",".join),
    max_size=8,
).map("\n".join)
OPTIONS = st.builds(
    InputOptions,
    delimiter=st.sampled_from([None, ",", ";", "\t"]),
    encoding=st.sampled_from([None, "utf-8", "cp1252", "latin-1", "utf-16"]),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


def check_loads_cleanly(path: Path, options: InputOptions | None = None) -> LoadedInput | None:
    """Load the file; a result must give one results line per row, an error one line naming the file."""
    try:
        loaded = load_input(path, default_status="CANCELED", options=options or InputOptions())
    except (InputError, NothingToDo) as exc:  # NothingToDo: a header and no row
        event("refused")  # --hypothesis-show-statistics shows how often each branch ran
        message = str(exc)
        assert message.startswith(f"{path}: ")
        assert "\n" not in message and "\r" not in message
        return None
    event("loaded, some row valid" if loaded.groups else "loaded, no row valid")
    results = path.with_name("out.results.csv")
    write_results(results, loaded, reconcile(loaded, plan_batches(loaded.groups, batch_size=100), []))
    # the results follow the input's separator (and byte-order mark)
    with results.open(newline="", encoding="utf-8-sig") as handle:
        records = list(csv.reader(handle, delimiter=loaded.source.separator))
    assert len(records) == loaded.row_count + 1
    assert all(len(record) == len(loaded.header) + len(RESULT_COLUMNS) for record in records)
    return loaded


@QUICK
@given(content=st.binary(max_size=2048))
def test_arbitrary_bytes_load_cleanly_or_fail_cleanly(folder: Path, content: bytes) -> None:
    path = folder / "input.csv"
    path.write_bytes(content)
    check_loads_cleanly(path)


@QUICK
@given(content=st.binary(max_size=1024), options=OPTIONS)
def test_arbitrary_bytes_with_any_reading_options(folder: Path, content: bytes, options: InputOptions) -> None:
    path = folder / "input.csv"
    path.write_bytes(content)
    check_loads_cleanly(path, options)


@QUICK
@given(text=st.one_of(st.text(max_size=400), CSVISH))
def test_arbitrary_text_loads_cleanly_or_fails_cleanly(folder: Path, text: str) -> None:
    path = folder / "input.csv"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    check_loads_cleanly(path)


@QUICK
@given(content=st.binary(max_size=1024), options=OPTIONS)
def test_arbitrary_bytes_under_a_valid_header(folder: Path, content: bytes, options: InputOptions) -> None:
    path = folder / "input.csv"
    path.write_bytes(HEADER_LINE.encode() + content)
    check_loads_cleanly(path, options)


@QUICK
@given(text=st.one_of(st.text(max_size=400), CSVISH, ROWISH))
def test_arbitrary_text_under_a_valid_header_loads_cleanly_or_fails_cleanly(folder: Path, text: str) -> None:
    path = folder / "input.csv"
    path.write_bytes((HEADER_LINE + text).encode("utf-8", errors="surrogatepass"))
    check_loads_cleanly(path)


CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@QUICK
@given(
    rows=st.lists(st.lists(CELL, min_size=5, max_size=5), min_size=1, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_any_cells_written_by_a_csv_writer_come_back_exactly(
    folder: Path, rows: list[list[str]], delimiter: str
) -> None:
    path = folder / "input.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["event_id", "track_id", "registration_id", "registration_status", "note"])
        writer.writerows(rows)
    loaded = check_loads_cleanly(path)
    kept = [row for row in rows if any(row)]  # a row of empty cells is a blank line
    if not kept:
        assert loaded is None
        return
    assert loaded is not None
    assert [list(cells) for cells in zip(*(column.tolist() for column in loaded.values), strict=True)] == kept


# pieces that matter to both readers; lone carriage returns included, as the fast reader must refuse what it
# would read differently
PIECES = ["a", "b", "", ",", ";", "\t", '"', '""', " ", "\n", "\r\n", "\r", "\n\n", "é", "x,y", '"q"', ',"', "=1"]
FREE_TEXT = st.lists(st.sampled_from(PIECES), min_size=1, max_size=40).map("".join)
# cells are mostly plain words, so that most files are regular enough for the fast reader
CELL_TEXT = st.lists(st.sampled_from([*PIECES, *["word"] * 20]), max_size=3).map("".join)
QUOTED_CELL = CELL_TEXT.map(lambda text: '"' + text.replace('"', '""') + '"')
LINE_END = st.sampled_from(["\n"] * 6 + ["\r\n"] * 4 + ["\r", "\n\n", "\r\n\r\n", "\r\r", "\n\r"])


@st.composite
def csv_text(draw: st.DrawFn, delimiter: str) -> str:
    """Rows of three cells, most of them regular, joined by assorted line ends."""
    rows = draw(st.lists(st.lists(st.one_of(CELL_TEXT, QUOTED_CELL), min_size=3, max_size=3), max_size=6))
    lines = [delimiter.join(row) + draw(LINE_END) for row in rows]
    return "".join(lines) + draw(st.sampled_from(["", "", "", "a"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), delimiter=st.sampled_from([",", ";", "\t"]))
def test_the_fast_reader_reads_every_file_as_the_careful_reader_does(
    folder: Path, data: st.DataObject, delimiter: str
) -> None:
    """pyarrow reads regular files; whatever it reads, it reads as pandas' C parser (the careful reader) does."""
    text = data.draw(st.one_of(FREE_TEXT, csv_text(delimiter)))
    header = delimiter.join(["event_id", "track_id", "registration_id"])
    content = f"{header}\n{text}".encode()
    try:
        fast = read_fast(content, delimiter)
    except pa.ArrowException:
        event("read the careful way")
        return
    event("read the fast way")
    try:
        careful = read_careful(folder / "input.csv", content, delimiter)
    except NothingToDo:
        event("a header and no row")
        return
    except InputError as exc:
        raise AssertionError(f"the fast reader read what the careful one refuses: {exc}") from exc
    # the fast reader keeps blank lines as empty rows, so that rows keep their numbers; the careful one skips
    # them and numbers its rows: both give the same rows with values, under the same row numbers
    fast_rows = [list(row) for row in zip(*fast.to_pydict().values(), strict=True)]
    careful_rows = [list(row) for row in zip(*careful.drop_columns(["row_number"]).to_pydict().values(), strict=True)]
    numbers = careful.column("row_number").to_pylist()
    assert [(n, row) for n, row in enumerate(fast_rows, start=1) if any(row)] == [
        (n, row) for n, row in zip(numbers, careful_rows, strict=True) if any(row)
    ]


@pytest.mark.parametrize("content", [b",,\r\r\n,,a\n", b",,\r\n\r\n,,a\r\n", b",,\r\r,,a\r", b",,\n \t\n,,a\n"])
def test_a_blank_line_counts_in_the_row_numbers_whatever_ends_the_lines(tmp_path: Path, content: bytes) -> None:
    """Found by the property above: a line ended by a lone \\r, then a blank one; ,,a is row 4 for both readers."""
    data = b"event_id,track_id,registration_id\n" + content
    careful = read_careful(tmp_path / "input.csv", data, ",")
    assert careful.column("row_number").to_pylist() == [1, 2, 4]
    try:
        fast = read_fast(data, ",")
    except pa.ArrowException:
        return  # the fast reader leaves this file to the careful one
    fast_rows = list(zip(*fast.to_pydict().values(), strict=True))
    assert fast_rows.index(("", "", "a")) + 1 == 4

"""Reads one sheet of an Excel .xlsx workbook as rows of text, each cell as a spreadsheet shows it.

Only table.py calls it; openpyxl's errors on a damaged workbook become an InputError here. A workbook is
a zip of XML: what it may inflate to (in all, per member's ratio) is checked from the zip's directory before
openpyxl opens it (zipfile never inflates a member past its declared size), and the rows, columns and cell sizes
while the sheet streams in.
"""

from __future__ import annotations

import warnings
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from xml.etree.ElementTree import ParseError

from batcher.errors import InputError

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
MAX_CELL_CHARS = 1 << 20  # 1 MiB: no registrations export holds a cell anywhere near this
MAX_COLUMNS = 10_000
MAX_ROWS = 1_048_576  # Excel's own limit
MAX_INFLATED_BYTES = 1 << 30  # what all the members of a workbook may inflate to
MAX_RATIO = 200  # a member over RATIO_FROM_BYTES may inflate to at most this many times its packed size
RATIO_FROM_BYTES = 1 << 20
# Excel shows 15 significant digits; whole numbers below this show without a decimal point.
MAX_EXACT_WHOLE_NUMBER = 10**15
# with openpyxl's InvalidFileException, added when openpyxl is imported
_DAMAGED = (zipfile.BadZipFile, zlib.error, KeyError, ValueError, TypeError, ParseError, EOFError)


def is_workbook(path: Path) -> bool:
    """True when the file is to be read as an Excel workbook (by its suffix)."""
    return path.suffix.lower() in WORKBOOK_SUFFIXES


def read_sheet(path: Path, *, sheet: str | None) -> list[list[str]]:
    """The rows of the named sheet (the first one when None), header first, all the same width.

    Raises:
        InputError: the workbook cannot be read, or has no such sheet.
    """
    # imported here: a CSV run does not pay the tenth of a second openpyxl takes to import
    import openpyxl  # noqa: PLC0415
    from openpyxl.utils.exceptions import InvalidFileException  # noqa: PLC0415

    try:
        _check_inflation(path)
        with warnings.catch_warnings():
            # openpyxl warns about workbook features it drops (data validation, styles); none matter here
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                names = [worksheet.title for worksheet in book.worksheets]
                if not names:
                    raise InputError(f"{path}: the workbook holds no worksheet.")
                if sheet is not None and sheet not in names:
                    listed = ", ".join(f'"{name}"' for name in names)
                    raise InputError(f'{path}: no sheet named "{sheet}" (sheets: {listed}). Pick one with --sheet.')
                worksheet = book[sheet] if sheet is not None else book.worksheets[0]
                # the stored dimensions are often wrong (a formatted column counts): read the cells that exist
                worksheet.reset_dimensions()
                rows = _bounded_rows(path, worksheet.iter_rows(values_only=True))
            finally:
                book.close()
    except (*_DAMAGED, InvalidFileException) as exc:
        raise InputError(
            f"{path}: not a readable .xlsx workbook ({type(exc).__name__}: {_first_line(str(exc))}). "
            "Open it in Excel and save it again, or export the sheet as CSV UTF-8."
        ) from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    return _trimmed(rows, path, sheet or names[0])


def _check_inflation(path: Path) -> None:
    """Refuse a workbook whose members would inflate past the bounds (a zip bomb), before any is inflated."""
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
    total = sum(member.file_size for member in members)
    if total > MAX_INFLATED_BYTES:
        raise InputError(
            f"{path}: the workbook would inflate to {total:,} bytes, over the limit of {MAX_INFLATED_BYTES:,}; "
            "export the sheet as CSV UTF-8 instead."
        )
    for member in members:
        if member.file_size > RATIO_FROM_BYTES and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise InputError(
                f"{path}: the workbook's part {member.filename[:80]} inflates {member.file_size:,} bytes from "
                f"{member.compress_size:,} (over {MAX_RATIO} times); this is not a registrations list."
            )


def _bounded_rows(path: Path, rows: Iterable[Iterable[object]]) -> list[list[str]]:
    """The rows as text, refused as soon as they pass the bounds on rows, columns or cell size."""
    read: list[list[str]] = []
    for number, row in enumerate(rows, start=1):
        if number > MAX_ROWS:
            raise InputError(f"{path}: the sheet has more than {MAX_ROWS:,} rows; this is not a registrations list.")
        cells = _row_text(row)
        if len(cells) > MAX_COLUMNS and any(cells[MAX_COLUMNS:]):
            raise InputError(
                f"{path}: row {number} has cells past column {MAX_COLUMNS:,}; this is not a registrations list."
            )
        del cells[MAX_COLUMNS:]
        for position, cell in enumerate(cells):
            if len(cell) > MAX_CELL_CHARS:
                raise InputError(
                    f"{path}: row {number}, column {position + 1} holds {len(cell):,} characters, over the limit "
                    f"of 1 MiB ({MAX_CELL_CHARS:,}); this is not a registrations list."
                )
        read.append(cells)
    return read


def _row_text(row: Iterable[object]) -> list[str]:
    return [value if type(value) is str else cell_text(value) for value in row]


def cell_text(value: object) -> str:
    """A cell's value as text, as a spreadsheet with the General format shows it; dates in ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < MAX_EXACT_WHOLE_NUMBER:
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, datetime):
        if value.time() == time() and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def _trimmed(rows: Sequence[list[str]], path: Path, sheet: str) -> list[list[str]]:
    """Rows padded to one width, without the trailing columns that hold nothing at all."""
    width = 0
    for row in rows:
        for position in range(len(row) - 1, width - 1, -1):
            if row[position] != "":
                width = position + 1
                break
    if width == 0:
        raise InputError(f'{path}: sheet "{sheet}" is empty; it needs a header row and at least one data row.')
    return [row[:width] if len(row) >= width else row + [""] * (width - len(row)) for row in rows]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "no detail"

"""Reads one sheet of an Excel .xlsx workbook as rows of text, each cell as a spreadsheet shows it.

Only loader.py calls it; openpyxl's errors on a damaged workbook become an InputError here.
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
                rows = [_row_text(row) for row in worksheet.iter_rows(values_only=True)]
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

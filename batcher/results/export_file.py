"""The CSV files that `export` and `verify` write: cells formula-escaped as the results', one atomic write.

Small files (a list of registrations, a results file plus two columns): made in memory by the results file's
writer (results/writer.py), the one CSV writer of batcher.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

from batcher.errors import OutputError, UsageError
from batcher.models import RECORD_FIELDS, Record
from batcher.results.format import UTF8_BOM, escape_column, escape_formulas
from batcher.results.writer import redacted, write_csv_lines
from batcher.support.files import why_unwritable, write_text_atomically
from batcher.support.redaction import redact

EXPORT_COLUMNS = ("event_id", "track_id", *RECORD_FIELDS)


def export_row(event_id: str, track_id: str, record: Record) -> tuple[str, ...]:
    """One export line's cells, in EXPORT_COLUMNS order."""
    return (event_id, track_id, *(getattr(record, name) for name in RECORD_FIELDS))


def csv_text(header: Sequence[str], columns: Sequence[Sequence[str]], *, separator: str = ",") -> str:
    """The CSV of header and columns (one sequence of cells per column): every cell formula-escaped, secrets masked.

    The results file's writer (minimal quoting and CRLF line ends), into memory: these files are small.
    """
    cells = [redacted(escape_column(pa.array(list(column), pa.string()))) for column in columns]
    names = [redact(name) for name in escape_formulas(np.array(header, dtype=object)).tolist()]
    out = io.BytesIO()
    write_csv_lines(out, names, [cells] if cells and len(cells[0]) else [], separator=separator)
    return out.getvalue().decode("utf-8")


def write_csv_text(path: Path, text: str, *, bom: bool = False, what: str) -> None:
    """Write text to path atomically (mode 0600: the rows hold people's names and emails).

    Raises:
        OutputError: path cannot be written.
    """
    try:
        write_text_atomically(path, (UTF8_BOM.decode("utf-8") if bom else "") + text, what=what)
    except OutputError as exc:
        raise OutputError(f"{exc}; free space or fix permissions, or choose another --out") from exc


def rows_as_columns(rows: Sequence[Sequence[str]], width: int) -> list[list[str]]:
    """Rows of cells as columns of cells (width columns when there are no rows)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


def check_out_path(path: Path) -> None:
    """Refuse, before any read, an --out that names no writable file.

    Raises:
        UsageError: a folder, a missing folder, or a file this user cannot replace.
    """
    if problem := why_unwritable(path, example="guests.csv"):
        raise UsageError(f"--out {str(path)!r} {problem}")

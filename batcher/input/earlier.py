"""An earlier run's results file as the input reads it: the result columns, the one "is this a results file" test,
and the split of a table into the user's columns and the earlier results, formula escapes undone.

The results package writes these files (results/writer.py escapes what this module unescapes); reading one back is
the input's job, so `--resume`, `--only`, `undo` and `verify` load it with the input's loader.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from batcher.input.columnar import Strings, written
from batcher.support.csvtext import FORMULA_PREFIXES

# The columns a results file adds after the input's own; a file whose header ends with them is a results file.
RESULT_COLUMNS = ("outcome", "previous_status", "target_status", "http_status", "error", "attempts", "batch")
# The columns `batcher verify` adds after those: its file is the run's results file once they are set aside.
VERIFY_COLUMNS = ("current_status", "verified")

_UNESCAPE = "^'('*[" + re.escape("".join(FORMULA_PREFIXES)) + "])"


@dataclass(frozen=True, slots=True)
class EarlierResults:
    """An earlier results file's own columns, per row kept, as written (formula escapes undone)."""

    outcome: Strings
    previous_status: Strings  # what the API said before the change; "" when nothing was read
    target_status: Strings  # the status the row was to be set to
    http_status: Strings
    error: Strings
    attempts: Strings
    batch: Strings


def is_results_header(header: Sequence[str]) -> bool:
    """The one test: a results file's header ends with RESULT_COLUMNS, after at least one column of the input's."""
    width = len(RESULT_COLUMNS)
    return len(header) > width and tuple(name.strip() for name in header[-width:]) == RESULT_COLUMNS


def not_a_results_file(path: Path) -> str:
    """The one wording of "this is not a results file"."""
    return f"{path}: is not a batcher results file (its last columns are not {', '.join(RESULT_COLUMNS)})"


def split_columns(
    header: list[str], table: list[pa.ChunkedArray]
) -> tuple[list[str], list[pa.ChunkedArray], list[pa.ChunkedArray] | None]:
    """The user's header and columns, and the result columns (None when not a results file), escapes undone.

    A verify file reads as the results file it checked: its own last columns are set aside.
    """
    width = len(VERIFY_COLUMNS)
    if tuple(name.strip() for name in header[-width:]) == VERIFY_COLUMNS and is_results_header(header[:-width]):
        header, table = header[:-width], table[:-width]
    if not is_results_header(header):
        return header, table, None
    user = len(header) - len(RESULT_COLUMNS)
    names = [str(name) for name in unescape(pa.chunked_array([pa.array(header[:user], pa.string())])).to_pylist()]
    return names, [unescape(column) for column in table[:user]], [unescape(column) for column in table[user:]]


def earlier_results(columns: Sequence[pa.ChunkedArray]) -> EarlierResults:
    """The result columns of the rows kept, as Python strings."""
    return EarlierResults(*(written(column) for column in columns))


def unescape(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The cells as they were before escape_formulas: one leading quote less before a formula prefix."""
    if not len(column) or not pc.any(pc.starts_with(column, "'")).as_py():
        return column
    return pc.replace_substring_regex(column, _UNESCAPE, r"\1")

"""What a results file holds and how it is spelled: one outcome per row (RowResults), the formats of
--results-format, the line end and byte-order mark, and the escape of formula cells.

The result columns and the reading side of the format are input/earlier.py's (an earlier results file is an input).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from batcher.defaults import RESULTS_FORMATS
from batcher.input.columnar import Strings
from batcher.input.table import InputFormat
from batcher.models import Outcome
from batcher.support.csvtext import FORMULA_PREFIXES


@dataclass(frozen=True, slots=True)
class RowResults:
    """One outcome per input row, as columns."""

    outcome: Strings
    http_status: npt.NDArray[np.int64]  # 0: no answer
    error: Strings
    attempts: npt.NDArray[np.int64]
    batch: npt.NDArray[np.int64]  # 0: in no batch
    previous_status: Strings  # what the API said before the change; "" when nothing was read
    target_status: Strings  # the status the row was to be set to ("" for an invalid row)

    def counts(self) -> dict[Outcome, int]:
        """Rows per outcome, every outcome listed."""
        words, numbers = np.unique(self.outcome.astype(str), return_counts=True)
        found = dict(zip(words.tolist(), numbers.tolist(), strict=True))
        return {outcome: int(found.get(outcome.value, 0)) for outcome in Outcome}


UTF8_BOM = b"\xef\xbb\xbf"

# Escaped: a formula prefix, after any number of single quotes (so that reading can undo exactly one quote)
_ESCAPED_START = "^'*[" + re.escape("".join(FORMULA_PREFIXES)) + "]"

# CRLF, as RFC 4180 says: Python's csv writer then also quotes cells holding a lone "\r"
LINE_END = "\r\n"

WRITE_FAILED_HINT = (
    "Free space or fix permissions; a run's journal keeps every applied batch, so re-running with --resume "
    "loses nothing."
)


def output_format(source: InputFormat, results_format: str = "auto") -> tuple[str, bool]:
    """(separator, byte-order mark) of the results for an input read as source."""
    if results_format not in RESULTS_FORMATS:
        raise ValueError(f"results_format must be one of {', '.join(RESULTS_FORMATS)}, got {results_format!r}")
    if results_format == "csv":
        return ",", False
    if results_format == "excel":
        return source.separator, True
    return source.separator, source.bom or source.workbook or source.encoding != "utf-8"


def escape_formulas(values: Strings) -> Strings:
    """The cells, each one that starts with =, +, -, @, tab or carriage return (after any single quotes)
    prefixed with a single quote."""
    starts = _formula_starts(as_text(values))
    if not starts.any():
        return values
    escaped = values.copy()
    escaped[starts] = "'" + escaped[starts]
    return escaped


def as_text(values: Strings) -> pa.Array:
    return pa.array(values, type=pa.string())


def _formula_starts(cells: pa.Array) -> npt.NDArray[np.bool_]:
    """Which cells start with a formula prefix, after any single quotes."""
    if not len(cells):
        return np.zeros(0, dtype=np.bool_)
    return np.asarray(pc.match_substring_regex(cells, _ESCAPED_START).fill_null(False), dtype=np.bool_)


def escape_column(cells: pa.Array) -> pa.Array:
    """escape_formulas on a pyarrow column."""
    if not len(cells) or not pc.any(pc.match_substring_regex(cells, _ESCAPED_START)).as_py():
        return cells
    starts = pc.match_substring_regex(cells, _ESCAPED_START)
    return pc.if_else(starts, pc.binary_join_element_wise("'", cells, ""), cells)

"""What a file means, checked before it is trusted: a header one letter from a field, which would silently change
how every row is read, and cells where the file's encoding lost a character (Excel writes '?' for each letter its
code page cannot hold); and printable, the text of a cell made safe for a one-line message."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from batcher.defaults import EMAIL_COLUMN
from batcher.errors import UnclearColumns
from batcher.input.rules import CONTROL_CHARS
from batcher.support.csvtext import normalize_header

_CONTROL_RE = re.compile(CONTROL_CHARS)


def printable(text: str, limit: int = 80) -> str:
    """Text safe for a one-line message: control and bidi characters shown as U+FFFD, long text cut."""
    text = _CONTROL_RE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


LOOK_ALIKE_CONSEQUENCE = {
    "registration_id": "without it every row would be a person found by email",
    "track_id": "without it every row would go to its event's default track",
}
LOOK_ALIKE_DISTANCE = 2  # letters left out, added or changed


def refuse_look_alikes(path: Path, header: Sequence[str], found: Mapping[str, int]) -> None:
    """Refuse a header one or two letters from a field that no column matched, where the file would otherwise mean
    something else (a misspelled "Registraton ID" beside an Email column: every row resolved by email)."""
    for field, consequence in LOOK_ALIKE_CONSEQUENCE.items():
        if field in found or (field == "registration_id" and EMAIL_COLUMN not in found):
            continue  # found; or no email to fall back on, so the missing column is refused as such
        wanted = normalize_header(field)
        claimed = set(found.values())
        for position, name in enumerate(header):
            key = normalize_header(name)
            if position in claimed or abs(len(key) - len(wanted)) > 1:  # "Track" is not a misspelled track_id
                continue
            if edit_distance(key, wanted) <= LOOK_ALIKE_DISTANCE:
                raise UnclearColumns(
                    f'{path}: the column "{printable(name)}" looks like a misspelled "{field}", and {consequence}. '
                    f'Rename the column, or read it as {field} with --column {field}="{printable(name)}".',
                    fields=(field,),
                    header=tuple(header),
                )


def edit_distance(left: str, right: str) -> int:
    """Letters to leave out, add or change to make left into right (Levenshtein)."""
    previous = list(range(len(right) + 1))
    for row, letter in enumerate(left, start=1):
        current = [row]
        for column, other in enumerate(right, start=1):
            current.append(min(previous[column] + 1, current[column - 1] + 1, previous[column - 1] + (letter != other)))
        previous = current
    return previous[-1]


def lost_characters(name: str, column: pa.ChunkedArray, row_number: npt.NDArray[np.int64]) -> list[str]:
    """A note when email cells hold '?', which a file saved in a code page (Excel's "CSV") writes for every
    character it cannot hold: such an email would only disagree with the API after the reads."""
    marked = pc.fill_null(pc.match_substring(column, "?"), False)
    count = int(pc.sum(marked).as_py() or 0)
    if not count:
        return []
    first = int(row_number[int(pc.index(marked, True).as_py())])
    return [
        f"{count:,} cell(s) of the column \"{printable(name)}\" hold '?' (first: row {first}), where the file's "
        'encoding lost a character: save it as "CSV UTF-8" and run again'
    ]

"""The CSV facts the input, the results and the sandbox share: the separators, the header key, formula prefixes.

Plain Python (no pyarrow): the sandbox reads its registrations file with them and imports no stage.
"""

from __future__ import annotations

import csv
import io
import re

DELIMITERS = (",", ";", "\t")  # in order of preference when the header splits equally
# A cell starting with one of these is run as a formula by a spreadsheet ("CSV injection");
# a leading single quote makes it plain text. "-5" is escaped too: the rule cannot tell numbers apart.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def sniff_delimiter(head: str) -> str:
    """The separator (comma, semicolon or tab) that splits the first record into most fields, quotes respected."""
    best, most = DELIMITERS[0], 0
    for delimiter in DELIMITERS:
        fields = _first_record_width(head, delimiter)
        if fields > most:
            best, most = delimiter, fields
    return best


def _first_record_width(head: str, delimiter: str) -> int:
    try:
        for record in csv.reader(io.StringIO(head, newline=""), delimiter=delimiter):
            # a line of separators alone (",,,", as spreadsheets export an empty row) is blank whatever the separator
            if any(cell.strip(" ,;\t") for cell in record):
                return len(record)
    except csv.Error:
        return 0
    return 0


def normalize_header(name: str) -> str:
    """Header key: case, surrounding spaces and inner spaces, dashes and underscores ignored."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())

"""The input's public entry: load_input and the names other modules import, from the reading and row modules.

Reading (bytes to a table) lives in input_table.py, row-making (table to rows) in input_rows.py.
"""

from __future__ import annotations

from batcher.defaults import DELIMITER_NAMES, FIELDS, REQUIRED_COLUMNS, STATUS_COLUMN
from batcher.input.columnar import Strings
from batcher.input.rows import (
    DEFAULT_OPTIONS,
    FIRST_DATA_ROW,
    InputOptions,
    LoadedInput,
    load_input,
    normalize_header,
    printable,
)
from batcher.input.table import DELIMITERS, MAX_COLUMNS, MAX_FIELD_CHARS, InputFormat, sniff_delimiter

__all__ = [
    "DEFAULT_OPTIONS",
    "DELIMITERS",
    "DELIMITER_NAMES",
    "FIELDS",
    "FIRST_DATA_ROW",
    "MAX_COLUMNS",
    "MAX_FIELD_CHARS",
    "REQUIRED_COLUMNS",
    "STATUS_COLUMN",
    "InputFormat",
    "InputOptions",
    "LoadedInput",
    "Strings",
    "load_input",
    "normalize_header",
    "printable",
    "sniff_delimiter",
]

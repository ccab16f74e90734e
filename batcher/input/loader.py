"""The input's public entry: load_input and the names other modules import, from the reading and row modules.

Reading (bytes to a table) lives in table.py, row-making (table to rows) in rows.py.
"""

from __future__ import annotations

from batcher.defaults import DELIMITER_NAMES, FIELDS, REQUIRED_COLUMNS, STATUS_COLUMN
from batcher.input.columnar import Strings
from batcher.input.meaning import printable
from batcher.input.rows import DEFAULT_OPTIONS, FIRST_DATA_ROW, InputOptions, LoadedInput, load_input
from batcher.input.table import MAX_COLUMNS, MAX_FIELD_CHARS, InputFormat
from batcher.support.csvtext import DELIMITERS, normalize_header, sniff_delimiter

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

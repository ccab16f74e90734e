"""Light constants the command line's help and the stages share (no pandas, pyarrow or aiohttp here)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PROG = "batcher"  # the command's name: its usage line, and the first word of every line it says

# the input's fields, in the order a results file lists them
REQUIRED_COLUMNS = ("event_id", "track_id", "registration_id")  # the key of a row; track_id may be left out
STATUS_COLUMN = "registration_status"
EMAIL_COLUMN = "email_address"  # people-shaped input: identifies a registration instead of registration_id
FIELDS = (*REQUIRED_COLUMNS, STATUS_COLUMN, EMAIL_COLUMN)
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
# --max-input-mb: an input or results file larger than this is refused before it is read (docs/limits.md)
DEFAULT_MAX_INPUT_MB = 256
# --results-format: auto follows the input; csv is comma-separated UTF-8 without a byte-order mark; excel is
# the input's separator as UTF-8 with a byte-order mark (Excel's own "CSV UTF-8")
RESULTS_FORMATS = ("auto", "csv", "excel")

# the local emulator of the endpoint
SANDBOX_TOKEN = "sandbox-token"
SANDBOX_REFRESH_TOKEN = "sandbox-refresh-token"
SANDBOX_CLIENT_ID = "sandbox-client"
TOKEN_PATH = "/oauth2/default/v1/token"
DEVICE_PATH = "/oauth2/default/v1/device/authorize"  # the device flow's sibling of the token endpoint
REVOKE_PATH = "/oauth2/default/v1/revoke"
ACTIVATE_PATH = "/activate"  # the sandbox's verification page
DEFAULT_RATE_LIMIT_PER_S = 4
DEFAULT_MAX_PAGE_SIZE = 50  # records per page of a registrations list, whatever limit asks
# shipped inside the package (batcher/sandbox/data), so an installed wheel has it too
DEFAULT_REGISTRATIONS = Path(str(files("batcher.sandbox") / "data" / "registrations.csv"))

# the largest input file: the most a workbook may inflate to (input/workbook.py); the page's uploads are bound by it
MAX_INPUT_BYTES = 1 << 30

"""The words of `run` and `plan` (and the ones `undo`, `verify` and `export` share with them): each option, its
default in the help and its help text."""

from __future__ import annotations

import argparse
from pathlib import Path

from batcher.cli.config import finite_number
from batcher.cli.parser_login import add_profile_option
from batcher.defaults import DEFAULT_MAX_INPUT_MB, FIELDS, RESULTS_FORMATS
from batcher.flows.options import RUN_DEFAULTS
from batcher.models import KNOWN_STATUSES
from batcher.settings import MAX_BATCH_SIZE
from batcher.support.logs import LOG_FORMATS

SWITCH = argparse.BooleanOptionalAction  # every switch has its --no- form, so a config's true can be undone

RUN_RESULTS = "the input path with .results.csv in place of its suffix"
UNDO_RESULTS = "the undone run's results path with .undo.csv in place of .csv"


def _default(dest: str) -> str:
    value = RUN_DEFAULTS[dest]
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input", type=Path, metavar="INPUT", help="the CSV (or .xlsx workbook) of registrations to change"
    )
    parser.add_argument(
        "--delimiter",
        metavar="SEP",
        help="the CSV's separator: ',' ';' or tab (default: the one that splits the header line into most fields)",
    )
    parser.add_argument(
        "--encoding",
        metavar="NAME",
        help="the CSV's text encoding, e.g. cp1252 (default: UTF-8, with or without a byte-order mark)",
    )
    parser.add_argument("--sheet", metavar="NAME", help="the sheet of an .xlsx input (default: the first)")
    parser.add_argument(
        "--max-input-mb",
        type=finite_number,
        metavar="MB",
        help=f"refuse, unread, an input file larger than this many MiB (default {DEFAULT_MAX_INPUT_MB}; see "
        "docs/limits.md)",
    )
    parser.add_argument(
        "--column",
        action="append",
        metavar="FIELD=HEADER",
        help=f"read FIELD ({', '.join(FIELDS)}) from the column headed HEADER; repeatable",
    )
    parser.add_argument(
        "--only",
        metavar="OUTCOMES",
        help="input is an earlier results file: keep only rows whose outcome is in this comma list, "
        "e.g. failed,pending",
    )
    parser.add_argument(
        "--status",
        metavar="S",
        help=f"the target status of every row ({', '.join(KNOWN_STATUSES)}); with --status-column, of the rows "
        "whose cell there is empty. A registration_status column is read as the current status, never as the target",
    )
    parser.add_argument(
        "--status-column",
        metavar="HEADER",
        help="the column holding each row's target status (headers match ignoring case, spaces, dashes and "
        "underscores); an empty cell there takes --status, or is invalid without it",
    )
    add_pace_options(parser)


def add_pace_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help=f"registration IDs per request, 1..{MAX_BATCH_SIZE} (default {_default('batch_size')})",
    )
    parser.add_argument(
        "--rate",
        type=finite_number,
        metavar="R",
        help=f"requests per second (default {_default('rate')}, the API's limit per key)",
    )


def add_send_options(parser: argparse.ArgumentParser, *, results_default: str = RUN_RESULTS) -> None:
    """The options of a command that sends; results_default: where its results go without --results."""
    parser.add_argument(
        "--results",
        type=Path,
        metavar="PATH",
        help=f"results CSV (default: {results_default})",
    )
    parser.add_argument(
        "--results-format",
        choices=RESULTS_FORMATS,
        help="csv, excel (the input's separator, UTF-8 with a BOM) or auto: follow the input (default auto)",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="API base URL (default: env CTCT_BASE_URL, else https://api.cc.email/v3)",
    )
    parser.add_argument(
        "--allow-insecure",
        action=SWITCH,
        help="allow a plain http:// base URL that is not a loopback address",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help=f"requests in flight at once (default {_default('concurrency')})",
    )
    parser.add_argument(
        "--timeout",
        type=finite_number,
        metavar="SEC",
        help=f"seconds to wait for each answer (default {_default('timeout')})",
    )
    for flag in ("increase-count", "increase-item-count", "return-items-to-inventory"):
        parser.add_argument(
            f"--{flag}",
            action=SWITCH,
            default=None,
            help=f"send the query flag {flag.replace('-', '_')}=true/false (not sent unless given)",
        )
    parser.add_argument(
        "--snapshot",
        action=SWITCH,
        help="read the current status of every registration before any PUT: rows already at the target are "
        "'unchanged' and not sent, and the results say what each row was before (default; --no-snapshot sends "
        "without reading)",
    )
    parser.add_argument(
        "--if-status",
        metavar="S[,S...]",
        help="change only rows whose current status is one of these; every other row is 'skipped', not sent",
    )
    parser.add_argument("--dry-run", action=SWITCH, help="validate and print the plan; send nothing")
    parser.add_argument("--yes", "-y", action=SWITCH, help="do not ask for confirmation")
    parser.add_argument(
        "--sandbox",
        action=SWITCH,
        help="run against an in-process sandbox on a free loopback port instead of the real API",
    )
    parser.add_argument(
        "--sandbox-registrations",
        type=Path,
        metavar="FILE",
        help="with --sandbox: the registrations the sandbox knows (default: every row of the input)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--progress", action="store_false", dest="no_progress", help="a progress bar in a terminal")
    parser.add_argument(
        "--progress-every",
        type=finite_number,
        metavar="SEC",
        help=f"without a terminal: a progress line every SEC seconds (default {_default('progress_every')})",
    )
    parser.add_argument(
        "--resume",
        action=SWITCH,
        help="skip every registration the earlier run on the same --results path applied (read from its "
        "journal and results), and send the rest; with no earlier run, start fresh",
    )
    parser.add_argument(
        "--allow-invalid",
        action=SWITCH,
        help="invalid rows stay in the results and the summary but alone do not make the exit code 1",
    )
    parser.add_argument(
        "--verify",
        action=SWITCH,
        help="after the run, read back every row it changed or left unchanged and check its status "
        "(as batcher verify does; exit 1 if any row does not verify)",
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        metavar="N",
        help="resend a batch after a 5xx, timeout or dropped connection up to N times "
        f"(default {_default('max_retries')})",
    )
    parser.add_argument(
        "--max-throttle-wait",
        type=finite_number,
        metavar="SEC",
        help="stop the run (exit 3) once 429 answers have made it wait this long in all "
        f"(default {_default('max_throttle_wait')})",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help='JSON file {"access_token": ..., "refresh_token": ...}; refreshed tokens are written back (mode 0600)',
    )
    parser.add_argument(
        "--token-url",
        metavar="URL",
        help="the OAuth token endpoint for refreshes (default: env CTCT_TOKEN_URL, else the login's, else "
        "Constant Contact's)",
    )
    add_profile_option(parser)
    parser.add_argument(
        "--daily-quota",
        type=int,
        metavar="N",
        help="requests the API key may send per UTC day; the run stops before going over "
        f"(default {_default('daily_quota')})",
    )
    parser.add_argument(
        "--max-changes",
        type=int,
        metavar="N",
        help="refuse (exit 2, nothing sent) a run that would change more than N registrations",
    )
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="send only the first N rows still to send (a canary run); the rest stay pending for --resume",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML file holding any run option")
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved options and where each came from; send nothing"
    )
    parser.add_argument("-v", "--verbose", action="count", help="more detail: -v a line per batch")
    parser.add_argument("-q", "--quiet", action=SWITCH, help="only errors and the final summary")
    parser.add_argument("--log-format", choices=LOG_FORMATS, help="text or json lines (default text)")
    parser.add_argument("--log-file", type=Path, metavar="PATH", help="also write a line per batch to this file")
    parser.add_argument(
        "--summary-json",
        type=Path,
        metavar="PATH",
        help="write the run's summary as JSON (counts, requests, duration, exit code, results path)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where the daily request count and saved tokens live "
        "(default: $BATCHER_STATE_DIR, else $XDG_STATE_HOME/batcher, else ~/.local/state/batcher)",
    )

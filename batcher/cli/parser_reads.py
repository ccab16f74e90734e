"""The words of the commands that only read: `verify` and `export`, which take run's own API options."""

from __future__ import annotations

import argparse
from pathlib import Path

from batcher.cli.option_parser import OptionParser
from batcher.cli.parser_run import add_input_options, add_send_options
from batcher.models import KNOWN_STATUSES

READ_OPTIONS = (
    "base_url",
    "allow_insecure",
    "rate",
    "concurrency",
    "timeout",
    "max_retries",
    "max_throttle_wait",
    "token_file",
    "token_url",
    "profile",
    "daily_quota",
    "state_dir",
    "no_progress",
)  # the run options verify and export take too, resolved as run's are (flag, environment, config file)


def add_read_commands(commands: argparse._SubParsersAction[OptionParser]) -> None:
    """The subcommands that only read: verify (a results file against the API) and export (an event's list)."""
    verify = commands.add_parser(
        "verify",
        help="read back every row a run marked succeeded or unchanged and check its status now",
        epilog="example:\n  batcher verify cancellations.results.csv\n\nExit codes: 0 every row verified, "
        "1 some row not (verified no or missing), 2 usage or input error, 3 stopped (401/403/quota).\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    verify.add_argument(
        "results",
        type=Path,
        default=None,
        metavar="RESULTS|RUN_ID",
        help="a results CSV of batcher run, or a run ID of 'batcher runs'",
    )
    verify.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="the verification CSV (default: RESULTS with .verify.csv in place of .csv)",
    )
    add_read_options(verify)
    runs = commands.add_parser(
        "runs",
        help="list the run history: every run and undo, with its ID, time, input, API, counts and exit code",
        epilog="examples:\n  batcher runs\n  batcher runs 20261204T183012Z-3fa9\n"
        "  batcher undo 20261204T183012Z-3fa9 --dry-run\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    runs.add_argument(
        "run_id",
        nargs="?",
        default=None,
        metavar="RUN_ID",
        help="show this run alone: what it ran against, how it ended, and its files",
    )
    runs.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the state folder that holds the history (default: $BATCHER_STATE_DIR, else "
        "$XDG_STATE_HOME/batcher, else ~/.local/state/batcher)",
    )
    runs.add_argument(
        "--profile",
        default=None,
        metavar="NAME",
        help="the history of this profile's runs (default: $BATCHER_PROFILE, else default)",
    )
    export = commands.add_parser(
        "export",
        help="write every registration of one or more events (their default track, or --track) to a CSV",
        epilog="examples:\n  batcher export 07216444-4e3b-41ea-a3b8-5a418fce41f4\n"
        "  batcher export EVENT_ID --track gqz1gb --status REGISTERED,PENDING --out - > guests.csv\n\n"
        "Exit codes: 0 written, 2 usage error or unknown event/track, 3 stopped (401/403/quota).\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    export.add_argument("events", nargs="+", default=None, metavar="EVENT_ID", help="the events to export")
    export.add_argument(
        "--track",
        action="append",
        default=None,
        metavar="T",
        help="the track to read in each event (repeatable; default: each event's default track)",
    )
    export.add_argument(
        "--status",
        default=None,
        metavar="S[,S...]",
        help=f"only registrations with one of these statuses ({', '.join(KNOWN_STATUSES)})",
    )
    export.add_argument("--payment-status", default=None, metavar="P", help="only this payment status, e.g. PAID")
    export.add_argument(
        "--search",
        default=None,
        metavar="TEXT",
        help="only registrations whose first name, last name or email holds it",
    )
    export.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="where to write; - for standard output (default: EVENT_ID.export.csv in the current folder, after the "
        "first event)",
    )
    add_read_options(export)


def add_read_options(parser: OptionParser) -> None:
    """The API options of verify and export: run's own (same words, same help), plus --config."""

    scratch = OptionParser(add_help=False, argument_default=argparse.SUPPRESS)
    add_input_options(scratch)
    add_send_options(scratch)
    parser.share(scratch, (*READ_OPTIONS, "config"))

"""The command line's words: subcommands, options, their defaults and help texts."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from batcher import __version__
from batcher.cli.config import OptionSpec, option_specs
from batcher.cli.option_parser import OptionParser
from batcher.cli.parser_login import add_login_commands
from batcher.cli.parser_reads import READ_OPTIONS, add_read_commands
from batcher.cli.parser_run import SWITCH, UNDO_RESULTS, add_input_options, add_pace_options, add_send_options
from batcher.cli.parser_sandbox import add_sandbox_command
from batcher.cli.parser_ui import add_ui_command
from batcher.defaults import PROG
from batcher.flows.options import RUN_DEFAULTS

__all__ = ["READ_OPTIONS", "REFUSED", "SWITCH", "build_parser", "option_table"]

# options a command parses with the options it shares with run, then refuses (flows/options.py): never in a hint
REFUSED: dict[str, tuple[str, ...]] = {"undo": ("--no-snapshot",)}

EXAMPLES = """\
examples:
  batcher plan cancellations.csv --status CANCELED                  # check the file, send nothing
  batcher run cancellations.csv --status CANCELED --sandbox        # rehearse on the local sandbox
  batcher run cancellations.csv --status CANCELED --limit 20       # canary: the first 20 rows only
  batcher run cancellations.csv --status CANCELED --resume         # the rest, and retry failures
  batcher verify cancellations.results.csv                        # check that the API applied it
  batcher undo cancellations.results.csv                          # put back what the run changed
  batcher export EVENT_ID --out event.csv                         # every registration of an event
  batcher report cancellations.results.csv --only failed,pending --out retry.csv

Log in once with `batcher login --client-id KEY` (docs/login.md); or give the access token in CTCT_ACCESS_TOKEN
(or --token-file). Exit codes: 0 all done (succeeded, unchanged
or skipped), 1 some rows failed or were invalid, 2 usage or input error (nothing sent), 3 stopped early
(rows left pending: re-run with --resume), 4 an unexpected error (a bug; results and summary still written),
130 interrupted.
"""


def build_parser() -> OptionParser:
    """The argument parser of every subcommand."""
    parser = OptionParser(
        prog=PROG,
        description="Change the registration status of many Constant Contact event registrations from a CSV.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_commands(
        dest="command",
        required=True,
        metavar="{run,plan,undo,report,verify,export,runs,sandbox,ui,login,logout,whoami,profiles}",
    )
    run = commands.add_parser(
        "run",
        help="send the updates and write the results CSV",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,  # defaults: RUN_DEFAULTS, applied by config.resolve
    )
    add_input_options(run)
    add_send_options(run)
    plan = commands.add_parser(
        "plan",
        help="validate and print the plan; send nothing (same as run --dry-run)",
        epilog="example:\n  batcher plan cancellations.csv --status CANCELED\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    add_input_options(plan)
    add_send_options(plan)
    undo = commands.add_parser(
        "undo",
        help="put every registration a run changed back to its previous status, as the run's journal says",
        epilog="examples:\n  batcher undo cancellations.results.csv --dry-run\n"
        "  batcher undo cancellations.results.csv --yes\n  batcher undo 20261204T183012Z-3fa9 --yes\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    undo.add_argument(
        "input",
        type=Path,
        metavar="RESULTS|RUN_ID",
        help="the results file of the run to undo, or its run ID (batcher runs)",
    )
    add_pace_options(undo)
    add_send_options(undo, results_default=UNDO_RESULTS)
    undo.add_argument(
        "--force",
        action="store_true",
        help="also put back registrations whose status changed since the run (default: they fail, not undone), "
        "and rows the run's journal does not know, from the results file's previous_status",
    )
    report = commands.add_parser(
        "report",
        help="summarize an existing results file, or extract rows to run again",
        epilog="examples:\n  batcher report cancellations.results.csv\n"
        "  batcher report cancellations.results.csv --only failed,pending --out retry.csv\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("results", type=Path, metavar="RESULTS", help="a results CSV written by batcher run")
    report.add_argument(
        "--only",
        default=None,
        metavar="OUTCOMES",
        help="with --out: the outcomes to extract, comma-separated (e.g. failed,pending)",
    )
    report.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help="write the chosen rows (input columns only) here"
    )
    report.add_argument("--summary-json", type=Path, default=None, metavar="PATH", help="the summary as JSON")
    add_read_commands(commands)
    add_sandbox_command(commands)
    add_ui_command(commands)
    add_login_commands(commands)
    return parser


def option_table() -> tuple[dict[str, OptionSpec], dict[str, object]]:
    """The specs and defaults of every option of run and plan."""
    scratch = OptionParser(add_help=False, argument_default=argparse.SUPPRESS)
    add_input_options(scratch)
    add_send_options(scratch)
    specs = option_specs(scratch)
    return specs, {dest: RUN_DEFAULTS.get(dest) for dest in specs}  # None: the stage's own default (--max-input-mb)


def summary_path(words: Sequence[str]) -> Path | None:
    """The --summary-json of a command line the parser refused, read by a parser of that option alone."""
    alone = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    alone.add_argument("--summary-json", type=Path)
    try:
        known, _ = alone.parse_known_args(list(words))
    except (argparse.ArgumentError, SystemExit):
        return None
    path: Path | None = known.summary_json
    return path

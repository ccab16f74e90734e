"""The command line: argv to Settings, confirmation, progress, and errors to messages and exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from batcher import sandbox
from batcher.auth import Credentials
from batcher.chunker import count_requests
from batcher.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, BatcherError, UsageError
from batcher.loader import DELIMITER_NAMES, FIELDS, FIRST_DATA_ROW, InputOptions, normalize_header
from batcher.models import KNOWN_STATUSES, Outcome, QueryFlags
from batcher.runner import Plan, RunSummary, SandboxOptions, execute, prepare
from batcher.settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_RATE_PER_S,
    DEFAULT_TIMEOUT_S,
    MAX_BATCH_SIZE,
    Settings,
)

PROG = "batcher"
MAX_INVALID_SHOWN = 10

EXAMPLES = """\
examples:
  batcher plan cancellations.csv --status CANCELED
  batcher run cancellations.csv --status CANCELED --sandbox        # rehearse locally
  CTCT_ACCESS_TOKEN=... batcher run cancellations.csv --status CANCELED
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Change the registration status of many Constant Contact event registrations from a CSV.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,plan,sandbox}")
    run = commands.add_parser(
        "run",
        help="send the updates and write the results CSV",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_options(run)
    _add_send_options(run)
    plan = commands.add_parser(
        "plan",
        help="validate and print the plan; send nothing (same as run --dry-run)",
        epilog="example:\n  batcher plan cancellations.csv --status CANCELED\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_options(plan)
    _add_send_options(plan)
    box = commands.add_parser(
        "sandbox",
        help="run the local emulator of the endpoint",
        epilog="example:\n  batcher sandbox --port 8080 --registrations sample_inputs/sandbox_registrations.csv\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    box.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    box.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    box.add_argument(
        "--registrations",
        type=Path,
        default=None,
        metavar="FILE",
        help="CSV of known registrations (event_id, track_id, registration_id[, registration_status]); "
        "default: sample_inputs/sandbox_registrations.csv",
    )
    box.add_argument("--token", default=sandbox.SANDBOX_TOKEN, help="bearer token the sandbox accepts")
    box.add_argument(
        "--rate-limit",
        type=int,
        default=sandbox.DEFAULT_RATE_LIMIT_PER_S,
        metavar="N",
        help="answer 429 past N requests in any one second, 0 for no limit (default 4)",
    )
    box.add_argument(
        "--latency-ms",
        default="0",
        metavar="MIN[,MAX]",
        help="delay each answer by a uniform MIN..MAX milliseconds (default 0)",
    )
    return parser


def documented_options(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(subcommand, --option) for every long option of every subcommand, --help aside."""
    found: list[tuple[str, str]] = []
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public walk of subcommands
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                found.extend(
                    (name, option)
                    for sub_action in sub._actions  # noqa: SLF001
                    for option in sub_action.option_strings
                    if option.startswith("--") and option != "--help"
                )
    return found


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input", type=Path, metavar="INPUT", help="the CSV (or .xlsx workbook) of registrations to change"
    )
    parser.add_argument(
        "--delimiter",
        default=None,
        metavar="SEP",
        help="the CSV's separator: ',' ';' or tab (default: the one that splits the header line into most fields)",
    )
    parser.add_argument(
        "--encoding",
        default=None,
        metavar="NAME",
        help="the CSV's text encoding, e.g. cp1252 (default: UTF-8, with or without a byte-order mark)",
    )
    parser.add_argument(
        "--sheet", default=None, metavar="NAME", help="the sheet of an .xlsx input (default: the first)"
    )
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="FIELD=HEADER",
        help=f"read FIELD ({', '.join(FIELDS)}) from the column headed HEADER; repeatable",
    )
    parser.add_argument(
        "--only",
        default=None,
        metavar="OUTCOMES",
        help="input is an earlier results file: keep only rows whose outcome is in this comma list, "
        "e.g. failed,pending",
    )
    parser.add_argument(
        "--status",
        default=None,
        metavar="S",
        help=f"target status for rows with no registration_status value ({', '.join(KNOWN_STATUSES)})",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"registration IDs per request, 1..{MAX_BATCH_SIZE} (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE_PER_S,
        metavar="R",
        help=f"requests per second (default {DEFAULT_RATE_PER_S:g}, the API's limit per key)",
    )


def _add_send_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        metavar="PATH",
        help="results CSV (default: the input path with .results.csv in place of its suffix)",
    )
    parser.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="API base URL (default: env CTCT_BASE_URL, else https://api.cc.email/v3)",
    )
    parser.add_argument(
        "--allow-insecure",
        action="store_true",
        help="allow a plain http:// base URL that is not a loopback address",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"requests in flight at once (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SEC",
        help=f"seconds to wait for each answer (default {DEFAULT_TIMEOUT_S:g})",
    )
    for flag in ("increase-count", "increase-item-count", "return-items-to-inventory"):
        parser.add_argument(
            f"--{flag}",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"send the query flag {flag.replace('-', '_')}=true/false (not sent unless given)",
        )
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan; send nothing")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="run against an in-process sandbox on a free loopback port instead of the real API",
    )
    parser.add_argument(
        "--sandbox-registrations",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --sandbox: the registrations the sandbox knows (default: every row of the input)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    env = os.environ if environ is None else environ
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its message
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if args.command == "sandbox":
            return _sandbox(args)
        return _run(args, env, dry_run=args.command == "plan" or args.dry_run)
    except BatcherError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


def _settings(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    return Settings(
        base_url=args.base_url or Settings.base_url_from_env(env),
        batch_size=args.batch_size,
        rate_per_s=args.rate,
        concurrency=args.concurrency,
        timeout_s=args.timeout,
        flags=QueryFlags(args.increase_count, args.increase_item_count, args.return_items_to_inventory),
        allow_insecure=args.allow_insecure or args.sandbox,
    )


def _run(args: argparse.Namespace, env: Mapping[str, str], *, dry_run: bool) -> int:
    settings = _settings(args, env)
    if args.sandbox_registrations is not None and not args.sandbox:
        raise UsageError("--sandbox-registrations needs --sandbox")
    credentials = None
    if not dry_run and not args.sandbox:
        credentials = Credentials.from_env(env)
    plan = prepare(args.input, settings, default_status=args.status, options=_input_options(args))
    for note in plan.loaded.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    if dry_run:
        _print_plan(plan, settings, sys.stdout)
        return EXIT_OK if plan.loaded.invalid_reason.tolist().count("") == plan.loaded.row_count else EXIT_SOME_FAILED
    if not plan.batches:
        raise UsageError(f"{args.input}: no row can be sent; every row is invalid. Run 'batcher plan' to see why.")
    results_path = args.results or default_results_path(args.input)
    if not args.yes and not args.sandbox and sys.stdin.isatty() and sys.stderr.isatty():
        _print_plan(plan, settings, sys.stderr)
        if not _confirm(f"Send {len(plan.batches)} requests to {settings.base_url}? [y/N] "):
            print(f"{PROG}: nothing sent", file=sys.stderr)
            return EXIT_USAGE
    show_progress = not args.no_progress and sys.stderr.isatty()
    with tqdm(total=plan.sendable_rows, unit="reg", disable=not show_progress, file=sys.stderr) as bar:

        def advance(rows: int) -> None:
            bar.update(rows)

        summary = execute(
            plan,
            settings,
            credentials,
            results_path,
            sandbox_options=SandboxOptions(args.sandbox_registrations) if args.sandbox else None,
            on_progress=advance,
        )
    _print_summary(summary, sys.stderr)
    if plan.loaded.skipped_rows:
        print(f"{PROG}: {_skipped(plan.loaded.skipped_rows)}; they are not in the results", file=sys.stderr)
    if summary.stopped is not None:
        print(f"{PROG}: error: {summary.stopped}", file=sys.stderr)
    return summary.exit_code


def _input_options(args: argparse.Namespace) -> InputOptions:
    return InputOptions(
        delimiter=_delimiter(args.delimiter),
        encoding=args.encoding,
        sheet=args.sheet,
        columns=tuple(_column(text) for text in args.column),
        only=_only(args.only),
    )


def _delimiter(text: str | None) -> str | None:
    if text is None:
        return None
    names = {name: delimiter for delimiter, name in DELIMITER_NAMES.items()}
    delimiter = names.get(text.strip().lower(), "\t" if text in ("\t", "\\t") else text)
    if delimiter not in DELIMITER_NAMES:
        raise UsageError(f"--delimiter takes ',' ';' or tab (also written '\\t'), not {text!r}")
    return delimiter


def _column(text: str) -> tuple[str, str]:
    field, equals, header = text.partition("=")
    fields = {normalize_header(name): name for name in FIELDS}
    if not equals or normalize_header(field) not in fields:
        raise UsageError(f"--column takes FIELD=HEADER with FIELD one of {', '.join(FIELDS)} (got {text!r})")
    header = header.strip()
    if len(header) >= 2 and header[0] == header[-1] == '"':
        header = header[1:-1]  # event_id="Event" typed where the shell keeps the quotes
    return fields[normalize_header(field)], header


def _only(text: str | None) -> frozenset[str] | None:
    if text is None:
        return None
    return frozenset(word.strip().lower() for word in text.split(",") if word.strip())


def _skipped(rows: int) -> str:
    return f"{rows} row{'s' if rows != 1 else ''} skipped by --only"


def default_results_path(input_path: Path) -> Path:
    """The input path with .results.csv in place of its suffix."""
    return input_path.with_name(input_path.stem + ".results.csv")


def _confirm(question: str) -> bool:
    print(question, end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")


def _print_plan(plan: Plan, settings: Settings, out: TextIO) -> None:
    loaded = plan.loaded
    invalid = int((loaded.invalid_reason != "").sum())
    duplicate = int((loaded.duplicate_of >= 0).sum())
    valid = loaded.row_count - invalid - duplicate
    skipped = f", {_skipped(loaded.skipped_rows)}" if loaded.skipped_rows else ""
    print(
        f"{loaded.path}: {loaded.row_count} rows: {valid} valid, {invalid} invalid, {duplicate} duplicate{skipped}",
        file=out,
    )
    shown = [index for index, reason in enumerate(loaded.invalid_reason.tolist()) if reason][:MAX_INVALID_SHOWN]
    for index in shown:
        print(f"  row {index + FIRST_DATA_ROW}: {loaded.invalid_reason[index]}", file=out)
    if invalid > len(shown):
        print(f"  ... and {invalid - len(shown)} more invalid rows (all listed in the results file)", file=out)
    if loaded.groups:
        print(f"{'event_id':36}  {'track_id':10}  {'status':11}  {'rows':>7}  {'requests':>8}", file=out)
    for group in loaded.groups:
        requests = count_requests([group], batch_size=settings.batch_size)
        print(
            f"{group.event_id:36}  {group.track_id:10}  {group.registration_status:11}  "
            f"{len(group.rows):>7}  {requests:>8}",
            file=out,
        )
    print(
        f"total: {len(plan.batches)} requests of up to {settings.batch_size} IDs; "
        f"estimated time at {settings.rate_per_s:g} requests/s: {_duration(plan.estimated_seconds(settings))}",
        file=out,
    )


def _print_summary(summary: RunSummary, out: TextIO) -> None:
    counts = ", ".join(f"{count} {outcome.value}" for outcome, count in summary.counts.items())
    total = sum(summary.counts.values())
    print(f"{PROG}: {total} rows: {counts}", file=out)
    print(
        f"{PROG}: {summary.requests_sent} requests in {_duration(summary.elapsed_s)} "
        f"({summary.requests_per_s:.2f} requests/s)",
        file=out,
    )
    print(f"{PROG}: results: {summary.results_path}", file=out)
    if summary.exit_code == EXIT_SOME_FAILED:
        failed = summary.counts[Outcome.FAILED] + summary.counts[Outcome.INVALID]
        print(f"{PROG}: {failed} rows did not succeed; the error column of the results says why", file=out)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"


def _sandbox(args: argparse.Namespace) -> int:
    registrations_file = args.registrations or sandbox.DEFAULT_REGISTRATIONS
    registrations = sandbox.read_registrations(registrations_file) if registrations_file.exists() else []
    if not registrations:
        print(f"{PROG}: sandbox: no registrations loaded (no file {registrations_file})", file=sys.stderr)
    scenario = sandbox.Scenario(
        token=args.token,
        rate_limit_per_s=args.rate_limit or None,
        latency_s=_latency(args.latency_ms),
    )
    sandbox.serve(args.host, args.port, scenario, registrations)
    return EXIT_OK


def _latency(text: str) -> tuple[float, float]:
    try:
        parts = [float(part) / 1000 for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--latency-ms takes MIN or MIN,MAX in milliseconds (got {text!r})") from None
    if len(parts) == 1:
        parts.append(parts[0])
    if len(parts) != 2 or parts[0] < 0 or parts[1] < parts[0]:
        raise UsageError(f"--latency-ms takes MIN or MIN,MAX with 0 <= MIN <= MAX (got {text!r})")
    return parts[0], parts[1]

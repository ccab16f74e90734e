"""The command line: argv to Settings, confirmation, progress, and errors to messages and exit codes."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from batcher import sandbox
from batcher.auth import load_credentials
from batcher.chunker import count_requests
from batcher.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, BatcherError, UsageError
from batcher.loader import FIRST_DATA_ROW
from batcher.models import KNOWN_STATUSES, Outcome, QueryFlags
from batcher.quota import DEFAULT_DAILY_QUOTA, QuotaLedger, default_state_dir
from batcher.runner import Plan, RunSummary, SandboxOptions, execute, prepare, read_earlier_run
from batcher.settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_THROTTLE_WAIT_S,
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
    faults = box.add_argument_group("fault injection (fractions of PUT requests, 0..1; nothing is applied)")
    faults.add_argument("--error-rate", type=_fraction, default=0.0, metavar="F", help="answer 500 or 503")
    faults.add_argument("--html-errors", action="store_true", help="5xx answers carry an HTML page, as proxies send")
    faults.add_argument("--reset-rate", type=_fraction, default=0.0, metavar="F", help="drop the connection unanswered")
    faults.add_argument("--stall-rate", type=_fraction, default=0.0, metavar="F", help="answer only after --stall-s")
    faults.add_argument("--stall-s", type=float, default=30.0, metavar="SEC", help="length of a stall (default 30)")
    faults.add_argument("--throttle-rate", type=_fraction, default=0.0, metavar="F", help="answer 429 throttled")
    faults.add_argument("--retry-after", default=None, metavar="VALUE", help="Retry-After header on 429 and 5xx")
    faults.add_argument(
        "--daily-quota", type=int, default=None, metavar="N", help="answer 429 quota_exceeded after N PUTs"
    )
    faults.add_argument(
        "--token-expires-after",
        type=int,
        default=None,
        metavar="N",
        help=f"the access token stops working after N PUTs; refresh at {sandbox.TOKEN_PATH} "
        f"with client_id {sandbox.SANDBOX_CLIENT_ID} and refresh_token {sandbox.SANDBOX_REFRESH_TOKEN} (rotating)",
    )
    faults.add_argument("--seed", type=int, default=None, metavar="N", help="seed of the fault generator")
    return parser


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 1, got {text!r}")
    return value


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
    parser.add_argument("input", type=Path, metavar="INPUT", help="the CSV of registrations to change")
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
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip every registration the earlier run on the same --results path applied (read from its "
        "journal and results), and send the rest",
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=DEFAULT_MAX_RETRIES,
        metavar="N",
        help=f"resend a batch after a 5xx, timeout or dropped connection up to N times (default {DEFAULT_MAX_RETRIES})",
    )
    parser.add_argument(
        "--max-throttle-wait",
        type=float,
        default=DEFAULT_MAX_THROTTLE_WAIT_S,
        metavar="SEC",
        help="stop the run (exit 3) once 429 answers have made it wait this long in all "
        f"(default {DEFAULT_MAX_THROTTLE_WAIT_S:g})",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        metavar="PATH",
        help='JSON file {"access_token": ..., "refresh_token": ...}; refreshed tokens are written back (mode 0600)',
    )
    parser.add_argument(
        "--daily-quota",
        type=int,
        default=DEFAULT_DAILY_QUOTA,
        metavar="N",
        help="requests the API key may send per UTC day; the run stops before going over "
        f"(default {DEFAULT_DAILY_QUOTA})",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the daily request count and saved tokens live "
        "(default: $BATCHER_STATE_DIR, else $XDG_STATE_HOME/batcher, else ~/.local/state/batcher)",
    )


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
        return _run(
            args, env, list(sys.argv[1:] if argv is None else argv), dry_run=args.command == "plan" or args.dry_run
        )
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
        max_retries=args.max_retries,
        max_throttle_wait_s=args.max_throttle_wait,
    )


def _run(args: argparse.Namespace, env: Mapping[str, str], argv: Sequence[str], *, dry_run: bool) -> int:
    settings = _settings(args, env)
    if args.sandbox_registrations is not None and not args.sandbox:
        raise UsageError("--sandbox-registrations needs --sandbox")
    state_dir = args.state_dir or default_state_dir(env)
    credentials = None
    if not dry_run and not args.sandbox:
        credentials = load_credentials(env, token_file=args.token_file, state_dir=state_dir)
    results_path = args.results or default_results_path(args.input)
    applied = read_earlier_run(results_path, default_status=args.status) if args.resume else None
    plan = prepare(args.input, settings, default_status=args.status, applied=applied)
    for note in plan.loaded.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    ledger = None if args.sandbox else QuotaLedger(state_dir, args.daily_quota)
    if dry_run:
        _print_plan(plan, settings, sys.stdout, ledger)
        return EXIT_OK if int((plan.loaded.invalid_reason != "").sum()) == 0 else EXIT_SOME_FAILED
    if not plan.batches and not plan.rows_applied_before:
        raise UsageError(f"{args.input}: no row can be sent; every row is invalid. Run 'batcher plan' to see why.")
    if not args.yes and not args.sandbox and sys.stdin.isatty() and sys.stderr.isatty() and plan.batches:
        _print_plan(plan, settings, sys.stderr, ledger)
        if not _confirm(f"Send {len(plan.batches)} requests to {settings.base_url}? [y/N] "):
            print(f"{PROG}: nothing sent", file=sys.stderr)
            return EXIT_USAGE
    show_progress = not args.no_progress and sys.stderr.isatty()
    try:
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
                resume=args.resume,
                quota=ledger,
            )
    finally:
        if ledger is not None:
            ledger.close()
    if credentials is not None and credentials.saved_notice:
        print(f"{PROG}: note: {credentials.saved_notice}", file=sys.stderr)
    if plan.rows_applied_before:
        print(
            f"{PROG}: {plan.rows_applied_before} rows were applied by the earlier run; not sent again", file=sys.stderr
        )
    _print_summary(summary, sys.stderr)
    if summary.stopped is not None:
        print(f"{PROG}: error: {summary.stopped}", file=sys.stderr)
    if summary.counts[Outcome.PENDING]:
        print(f"{PROG}: to send the pending rows: {resume_command(argv, results_path)}", file=sys.stderr)
    return summary.exit_code


def resume_command(argv: Sequence[str], results_path: Path) -> str:
    """The command that resumes this run: the same arguments plus --resume and the results path."""
    words = [PROG, *argv]
    if "--resume" not in words:
        words.append("--resume")
    if not any(word == "--results" or word.startswith("--results=") for word in words):
        words += ["--results", str(results_path)]
    return shlex.join(words)


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


def _print_plan(plan: Plan, settings: Settings, out: TextIO, ledger: QuotaLedger | None) -> None:
    loaded = plan.loaded
    invalid = int((loaded.invalid_reason != "").sum())
    duplicate = int((loaded.duplicate_of >= 0).sum())
    valid = loaded.row_count - invalid - duplicate
    print(f"{loaded.path}: {loaded.row_count} rows: {valid} valid, {invalid} invalid, {duplicate} duplicate", file=out)
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
    if plan.rows_applied_before:
        print(f"{plan.rows_applied_before} rows were applied by the earlier run and are not sent again", file=out)
    print(
        f"total: {len(plan.batches)} requests of up to {settings.batch_size} IDs; "
        f"estimated time at {settings.rate_per_s:g} requests/s: {_duration(plan.estimated_seconds(settings))}",
        file=out,
    )
    if ledger is not None:
        left = ledger.remaining_today()
        verdict = "covers it" if left >= len(plan.batches) else "does NOT cover it: the run would stop part-way"
        print(
            f"daily quota: {left} of {ledger.daily_quota} requests left today (UTC, counted by batcher in "
            f"{ledger.path.parent}); {verdict}",
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
        error_rate=args.error_rate,
        html_errors=args.html_errors,
        reset_rate=args.reset_rate,
        stall_rate=args.stall_rate,
        stall_s=args.stall_s,
        throttle_rate=args.throttle_rate,
        retry_after=args.retry_after,
        daily_quota=args.daily_quota,
        token_expires_after=args.token_expires_after,
        seed=args.seed,
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

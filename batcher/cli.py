"""The command line: options to Settings, confirmation, progress, summaries, errors to exit codes."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from batcher import config, logs, sandbox
from batcher.auth import ENV_ACCESS_TOKEN, ENV_CLIENT_SECRET, ENV_REFRESH_TOKEN, Credentials, load_credentials
from batcher.chunker import count_requests
from batcher.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, BatcherError, UsageError
from batcher.loader import DELIMITER_NAMES, FIELDS, FIRST_DATA_ROW, InputOptions, normalize_header
from batcher.models import Outcome, QueryFlags
from batcher.parser import PROG, build_parser, documented_options, run_options
from batcher.progress import Progress
from batcher.quota import QuotaLedger, default_state_dir
from batcher.reconciler import write_text_atomically
from batcher.report import Report, extract_rows, format_report, read_results_file, report_results_file
from batcher.runner import Plan, RunSummary, SandboxOptions, execute, prepare, read_earlier_run
from batcher.settings import DEFAULT_BASE_URL, Settings

__all__ = ["build_parser", "documented_options", "main"]

MAX_INVALID_SHOWN = 10
MIN_REQUESTS_FOR_RATE = 20
SECRET_ENV = (ENV_ACCESS_TOKEN, ENV_REFRESH_TOKEN, ENV_CLIENT_SECRET)
ENV_CONFIG = "BATCHER_CONFIG"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    env = os.environ if environ is None else environ
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(words)
    except SystemExit as exc:  # argparse has printed its message (or the help)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if args.command == "sandbox":
            return _sandbox(args)
        if args.command == "report":
            return _report(args)
        return _run(args, env, words)
    except BatcherError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


def _options(args: argparse.Namespace, env: Mapping[str, str]) -> config.Resolved:
    specs, defaults = run_options()
    given = {name: value for name, value in vars(args).items() if name in specs}
    config_path = args.config or (Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None)
    return config.resolve(given, specs, defaults, env, config_path)


def _settings(options: Mapping[str, object]) -> Settings:
    def number(name: str) -> float:
        value = options[name]
        if not isinstance(value, int | float):
            raise UsageError(f"--{name.replace('_', '-')} must be a number (got {value!r})")
        return value

    def switch(name: str) -> bool | None:
        value = options[name]
        return value if isinstance(value, bool) else None

    return Settings(
        base_url=str(options["base_url"] or DEFAULT_BASE_URL),
        batch_size=int(number("batch_size")),
        rate_per_s=float(number("rate")),
        concurrency=int(number("concurrency")),
        timeout_s=float(number("timeout")),
        flags=QueryFlags(switch("increase_count"), switch("increase_item_count"), switch("return_items_to_inventory")),
        allow_insecure=bool(options["allow_insecure"] or options["sandbox"]),
        max_retries=int(number("max_retries")),
        max_throttle_wait_s=float(number("max_throttle_wait")),
    )


def _optional_path(options: Mapping[str, object], name: str) -> Path | None:
    value = options[name]
    return Path(str(value)) if value not in (None, "") else None


def _optional_int(options: Mapping[str, object], name: str) -> int | None:
    value = options[name]
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UsageError(f"--{name.replace('_', '-')} must be a whole number of 0 or more (got {value!r})")
    return value


def _run(args: argparse.Namespace, env: Mapping[str, str], argv: Sequence[str]) -> int:
    resolved = _options(args, env)
    options = resolved.values
    if args.print_config:
        print("\n".join(config.describe(resolved, env, SECRET_ENV)))
        return EXIT_OK
    settings = _settings(options)
    dry_run = args.command == "plan" or bool(options["dry_run"])
    use_sandbox = bool(options["sandbox"])
    sandbox_file = _optional_path(options, "sandbox_registrations")
    if sandbox_file is not None and not use_sandbox:
        raise UsageError("--sandbox-registrations needs --sandbox")
    state_dir = _optional_path(options, "state_dir") or default_state_dir(env)
    credentials = None
    if not dry_run and not use_sandbox:
        credentials = load_credentials(env, token_file=_optional_path(options, "token_file"), state_dir=state_dir)
    verbosity = -1 if options["quiet"] else int(str(options["verbose"]))
    logs.configure(
        verbosity=verbosity,
        log_format=str(options["log_format"]),
        log_file=_optional_path(options, "log_file"),
        secrets=[env.get(name, "") for name in SECRET_ENV],
    )
    status = options["status"]
    default_status = str(status) if status else None
    results_path = _optional_path(options, "results") or default_results_path(args.input)
    if results_path.resolve() == args.input.resolve():
        raise UsageError(f"--results {results_path} is the input file; give the results another path")
    resume = bool(options["resume"])
    applied = read_earlier_run(results_path, default_status=default_status) if resume else None
    limit = _optional_int(options, "limit")
    plan = prepare(
        args.input,
        settings,
        default_status=default_status,
        applied=applied,
        limit=limit,
        options=_input_options(options),
    )
    for note in plan.loaded.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    daily_quota = _optional_int(options, "daily_quota")
    ledger = None if use_sandbox else QuotaLedger(state_dir, daily_quota if daily_quota is not None else 0)
    if dry_run:
        _print_plan(plan, settings, sys.stdout, ledger)
        return EXIT_OK if int((plan.loaded.invalid_reason != "").sum()) == 0 else EXIT_SOME_FAILED
    _check_guard_rails(plan, args.input, _optional_int(options, "max_changes"))
    if not options["yes"] and not use_sandbox and plan.batches and sys.stdin.isatty() and sys.stderr.isatty():
        _print_plan(plan, settings, sys.stderr, ledger)
        if not _confirm(f"Send {len(plan.batches)} requests to {settings.base_url}? [y/N] "):
            print(f"{PROG}: nothing sent", file=sys.stderr)
            return EXIT_USAGE
    show_bar = not options["no_progress"] and sys.stderr.isatty()
    try:
        with Progress(plan.sendable_rows, bar=show_bar) as progress:
            summary = execute(
                plan,
                settings,
                credentials,
                results_path,
                sandbox_options=SandboxOptions(sandbox_file) if use_sandbox else None,
                on_progress=progress.advance,
                resume=resume,
                quota=ledger,
            )
    finally:
        if ledger is not None:
            ledger.close()
    return _finish_run(plan, summary, credentials, ledger, argv, _optional_path(options, "summary_json"))


def _input_options(options: Mapping[str, object]) -> InputOptions:
    columns = options["column"]
    only = options["only"]
    return InputOptions(
        delimiter=_delimiter(options["delimiter"]),
        encoding=str(options["encoding"]) if options["encoding"] else None,
        sheet=str(options["sheet"]) if options["sheet"] else None,
        columns=tuple(_column(str(text)) for text in columns) if isinstance(columns, list) else (),
        only=frozenset(word.strip().lower() for word in str(only).split(",") if word.strip()) if only else None,
    )


def _delimiter(value: object) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
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


def _skipped(rows: int) -> str:
    return f"{rows} row{'s' if rows != 1 else ''} skipped by --only"


def _check_guard_rails(plan: Plan, input_path: Path, max_changes: int | None) -> None:
    if not plan.batches and not plan.rows_applied_before:
        raise UsageError(f"{input_path}: no row can be sent; every row is invalid. Run 'batcher plan' to see why.")
    if max_changes is not None and plan.sendable_rows > max_changes:
        raise UsageError(
            f"{input_path}: this run would change {plan.sendable_rows} registrations, more than --max-changes "
            f"{max_changes}; nothing was sent. Check the input; if it is right, raise --max-changes."
        )


def _finish_run(
    plan: Plan,
    summary: RunSummary,
    credentials: Credentials | None,
    ledger: QuotaLedger | None,
    argv: Sequence[str],
    summary_json: Path | None,
) -> int:
    if credentials is not None and credentials.saved_notice:
        print(f"{PROG}: note: {credentials.saved_notice}", file=sys.stderr)
    if plan.rows_applied_before:
        print(
            f"{PROG}: {plan.rows_applied_before} rows were applied by the earlier run; not sent again", file=sys.stderr
        )
    report = summary.report
    quota_left = ledger.remaining_today() if ledger is not None else None
    for line in format_report(report):
        print(f"{PROG}: {line}" if not line.startswith(" ") else line, file=sys.stderr)
    quota_text = f"; daily quota: {quota_left} requests left today (UTC)" if quota_left is not None else ""
    # over a handful of requests the rate says little (n requests span n-1 intervals)
    rate_text = f" ({summary.requests_per_s:.2f} requests/s)" if summary.requests_sent >= MIN_REQUESTS_FOR_RATE else ""
    print(
        f"{PROG}: {summary.requests_sent} requests in {_duration(summary.elapsed_s)}{rate_text}{quota_text}",
        file=sys.stderr,
    )
    print(f"{PROG}: results: {summary.results_path}", file=sys.stderr)
    if plan.loaded.skipped_rows:
        print(f"{PROG}: {_skipped(plan.loaded.skipped_rows)}; they are not in the results", file=sys.stderr)
    if summary.stopped is not None:
        print(f"{PROG}: error: {summary.stopped}", file=sys.stderr)
    retry = ""
    pending, failed = report.counts[Outcome.PENDING], report.counts[Outcome.FAILED]
    if pending or failed:
        retry = resume_command(argv, summary.results_path)
        what = (
            "the pending and failed rows"
            if pending and failed
            else "the pending rows"
            if pending
            else "the failed rows"
        )
        print(f"{PROG}: to send {what} again: {retry}", file=sys.stderr)
    if summary_json is not None:
        _write_summary_json(summary_json, summary, report, quota_left, retry, plan)
    return summary.exit_code


def _write_summary_json(
    path: Path, summary: RunSummary, report: Report, quota_left: int | None, retry: str, plan: Plan
) -> None:
    document = {
        "exit_code": summary.exit_code,
        "input": str(plan.loaded.path),
        "results": str(summary.results_path),
        "requests_sent": summary.requests_sent,
        "elapsed_s": round(summary.elapsed_s, 3),
        "requests_per_s": round(summary.requests_per_s, 3),
        "rows_applied_before": plan.rows_applied_before,
        "quota_left_today": quota_left,
        "stopped": str(summary.stopped) if summary.stopped is not None else None,
        "interrupted": summary.interrupted,
        "resume_command": retry or None,
        **report.as_dict(),
    }
    write_text_atomically(path, json.dumps(document, indent=2) + "\n")


def resume_command(argv: Sequence[str], results_path: Path) -> str:
    """The command that resumes this run: the same arguments, without --limit, plus --resume and --results."""
    words: list[str] = [PROG]
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--limit":
            skip = True
            continue
        if word.startswith("--limit="):
            continue
        words.append(word)
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
    skipped = f", {_skipped(loaded.skipped_rows)}" if loaded.skipped_rows else ""
    print(
        f"{loaded.path}: {loaded.row_count} rows: {valid} valid, {invalid} invalid, {duplicate} duplicate{skipped}",
        file=out,
    )
    shown = (loaded.invalid_reason != "").nonzero()[0][:MAX_INVALID_SHOWN].tolist()
    for index in shown:
        print(f"  row {index + FIRST_DATA_ROW}: {loaded.invalid_reason[index]}", file=out)
    if invalid > len(shown):
        print(f"  ... and {invalid - len(shown)} more invalid rows (all listed in the results file)", file=out)
    if loaded.groups:
        print(f"{'event_id':36}  {'track_id':10}  {'status':11}  {'rows':>7}  {'requests':>8}", file=out)
    per_status: dict[str, int] = {}
    for group in loaded.groups:
        requests = count_requests([group], batch_size=settings.batch_size)
        per_status[group.registration_status] = per_status.get(group.registration_status, 0) + len(group.rows)
        print(
            f"{group.event_id:36}  {group.track_id:10}  {group.registration_status:11}  "
            f"{len(group.rows):>7}  {requests:>8}",
            file=out,
        )
    if per_status:
        events = len({group.event_id for group in loaded.groups})
        tracks = len({(group.event_id, group.track_id) for group in loaded.groups})
        targets = ", ".join(f"{rows} to {status}" for status, rows in per_status.items())
        print(f"{events} events, {tracks} tracks; registrations: {targets}", file=out)
    if plan.rows_applied_before:
        print(f"{plan.rows_applied_before} rows were applied by the earlier run and are not sent again", file=out)
    if plan.held_back:
        print(f"--limit {plan.limit}: {plan.held_back} rows are left for a later run with --resume", file=out)
    print(
        f"this run: {plan.sendable_rows} registrations in {len(plan.batches)} requests of up to "
        f"{settings.batch_size} IDs; estimated time at {settings.rate_per_s:g} requests/s: "
        f"{_duration(plan.estimated_seconds(settings))}",
        file=out,
    )
    if ledger is not None:
        left = ledger.remaining_today()
        verdict = "covers it" if left >= len(plan.batches) else "does NOT cover it: the run would stop part-way"
        print(
            f"daily quota: {len(plan.batches)} requests needed, {left} of {ledger.daily_quota} left today "
            f"(UTC, counted by batcher in {ledger.path.parent}); {verdict}",
            file=out,
        )


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"


def _report(args: argparse.Namespace) -> int:
    if (args.only is None) != (args.out is None):
        raise UsageError("--only and --out go together: --only failed,pending --out retry.csv")
    results = read_results_file(args.results)
    report = report_results_file(results)
    for line in format_report(report):
        print(line)
    if args.summary_json is not None:
        write_text_atomically(
            args.summary_json, json.dumps({"results": str(args.results), **report.as_dict()}, indent=2) + "\n"
        )
    if args.out is not None:
        count = extract_rows(results, args.only, args.out)
        chosen = ",".join(outcome.value for outcome in args.only)
        print(f"{count} rows ({chosen}) written to {args.out}; run them with: batcher run {shlex.quote(str(args.out))}")
    unfinished = report.counts[Outcome.PENDING] + report.counts[Outcome.FAILED] + report.counts[Outcome.INVALID]
    return EXIT_OK if not unfinished else EXIT_SOME_FAILED


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
        max_page_size=args.max_page_size,
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

"""The command line: argv to typed options, one flow per command, its result rendered, errors to exit codes.

Every text it prints, on stdout and stderr, passes through the redaction of the run's secrets.

Each command's flow and texts are imported inside the branch that runs it (the `noqa: PLC0415` imports), so that
`batcher --help` loads no asyncio, aiohttp, pandas or pyarrow (tests/test_imports.py); each such import points down
the layers, and lint-imports counts it as any other.
"""

from __future__ import annotations

import argparse
import gc
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from batcher.cli import config
from batcher.cli.option_parser import OptionParser
from batcher.cli.parser import REFUSED, build_parser, option_table, summary_path
from batcher.cli.parser_login import LOGIN_OPTIONS
from batcher.defaults import PROG
from batcher.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, BatcherError, UsageError, internal_error
from batcher.flows.command_line import Given
from batcher.flows.options import RunOptions, outcomes, run_options
from batcher.flows.render import (
    confirm_question,
    error_word,
    note_lines,
    plan_estimate,
    plan_lines,
    preview_lines,
    run_lines,
)
from batcher.flows.render_reads import extracted_lines
from batcher.flows.run import RunHooks, check_distinct_outputs, run_flow
from batcher.flows.summary import QuotaView, write_error_summary
from batcher.models import QueryFlags
from batcher.support import hints, redaction
from batcher.support.files import SameFile
from batcher.support.logs import get_logger
from batcher.support.text import printable_lines

if TYPE_CHECKING:
    from batcher.plan.planning import Plan
    from batcher.remote.estimate import Estimate
    from batcher.remote.execute import ProgressCallback
    from batcher.remote.snapshot import Preview

__all__ = ["build_parser", "main"]

# the names are auth's; kept here so that `--help` and `--print-config` need not import auth
ENV_ACCESS_TOKEN, ENV_REFRESH_TOKEN = "CTCT_ACCESS_TOKEN", "CTCT_REFRESH_TOKEN"
ENV_CLIENT_ID, ENV_CLIENT_SECRET = "CTCT_CLIENT_ID", "CTCT_CLIENT_SECRET"
SECRET_ENV = (ENV_ACCESS_TOKEN, ENV_REFRESH_TOKEN, ENV_CLIENT_SECRET)
CREDENTIAL_ENV = (ENV_ACCESS_TOKEN, ENV_REFRESH_TOKEN, ENV_CLIENT_ID, ENV_CLIENT_SECRET)  # --print-config: set or not
ENV_CONFIG = "BATCHER_CONFIG"
LOGIN_COMMANDS = ("login", "logout", "whoami", "profiles")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    env = os.environ if environ is None else environ
    words = list(sys.argv[1:] if argv is None else argv)
    redaction.add(*(env.get(name, "") for name in SECRET_ENV))
    redaction.add_client(env.get(ENV_CLIENT_ID, ""), env.get(ENV_CLIENT_SECRET, ""))
    redaction.add_url_passwords(*words, *env.values())  # refused later, but never repeated meanwhile
    try:
        parser = build_parser()
        args = parser.parse_args(words)
    except SystemExit as exc:  # argparse has printed its message (or the help)
        code = exc.code if isinstance(exc.code, int) else EXIT_USAGE
        if code:
            refused = UsageError("the command line was refused; see the usage message above")
            write_error_summary(summary_path(words), refused, None)
        return code
    chosen = parser.commands()[args.command]
    with hints.accepting(flag for flag in chosen.long_flags() if flag not in REFUSED.get(args.command, ())):
        return _command(parser, args, words, env)


def _command(parser: OptionParser, args: argparse.Namespace, words: Sequence[str], env: Mapping[str, str]) -> int:
    try:
        if args.command == "sandbox":
            return _sandbox(args)
        if args.command == "report":
            return _report(args)
        if args.command == "runs":
            return _runs(args, env)
        if args.command == "ui":
            return _ui(args, env)
        if args.command in ("verify", "export"):
            return _read_command(args, env)
        if args.command in LOGIN_COMMANDS:
            from batcher.cli.login import login_command  # noqa: PLC0415

            return login_command(args, env)
        return _run(args, env, words, parser.commands()[args.command].given(args))
    except BatcherError as exc:
        say(f"{PROG}: {error_word(exc)}{exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        say(f"{PROG}: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # the last line of defence: one line and an exit code of its own, never 1
        error = internal_error(exc)
        say(f"{PROG}: error: {error}")
        return error.exit_code


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


def say(line: str, out: TextIO | None = None) -> None:
    """Print one line (to stderr unless told), with every known secret masked."""
    text, stream = printable_lines(redaction.redact(line)), out or sys.stderr
    progress = sys.modules.get("batcher.cli.progress")  # loaded: a bar may be drawn, the line goes above it
    if progress is None:
        print(text, file=stream)
    else:
        progress.print_between_bars(text, stream)


def _run(args: argparse.Namespace, env: Mapping[str, str], words: Sequence[str], as_given: Sequence[Given]) -> int:
    """run, plan or undo: words as typed (for the log), as_given the options they give (for the resume command)."""
    specs, defaults = option_table()
    # a query flag's default None is in args though not given: "not given" is None, which a flag never gives
    given = {name: value for name, value in vars(args).items() if name in specs and value is not None}
    config_path = getattr(args, "config", None) or (Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None)
    summary: object = given.get("summary_json")
    try:  # --summary-json is written on every exit, a refusal of the options too
        resolved = config.tokens_by_precedence(
            config.resolve(given, specs, defaults, env, config_path, also_known=LOGIN_OPTIONS), env
        )
        summary = resolved.values["summary_json"]
        values = {**resolved.values, "force": bool(getattr(args, "force", False))}  # undo's alone
        try:  # checked before --print-config too: it shows only values a run would take
            options = run_options(values, command=args.command, input_path=args.input, as_given=as_given)
        except UsageError as exc:
            raise config.with_origin(exc, resolved, specs) from None
        if getattr(args, "print_config", False):
            unset = dict.fromkeys((flag.name for flag in fields(QueryFlags)), "(not sent: the API's default)")
            for line in [*config.describe(resolved, env, CREDENTIAL_ENV, unset), _credentials_line(resolved, env)]:
                say(line, sys.stdout)
            return EXIT_OK
        if values.get("max_input_mb") is not None:  # --max-input-mb (docs/limits.md); InputOptions checks it
            bound = replace(options.input_options, max_input_mb=float(str(values["max_input_mb"])))
            options = replace(options, input_options=bound)
        from batcher.flows.record import history_folder  # noqa: PLC0415

        # before the log file is opened: it may be the results file, or another run's journal
        check_distinct_outputs(options, history_folder(options, env))
        _configure_logs(options, env)
    except SameFile:
        raise  # the summary's path may be another output's: nothing is written
    except BatcherError as exc:
        write_error_summary(Path(str(summary)) if summary else None, exc, args.input)
        raise
    planned: list[Estimate] = []  # the plan's estimate, for the progress's total and time left

    def on_plan(plan: Plan) -> None:
        planned.append(plan_estimate(plan, options.settings, reads=options.snapshot))
        _show_notes(plan)

    hooks = RunHooks(
        on_plan=on_plan, confirm=_confirmer(options), progress=_progress(options, planned), on_preview=_show_preview
    )
    log = get_logger()
    log.info("start: batcher %s", shlex.join(words), extra={"event": "start"})  # secrets masked by the log's filter
    result = run_flow(options, env, hooks)
    stop = result.error or (result.summary.stopped if result.summary is not None else None)
    if stop is not None and result.exit_code != EXIT_OK:
        log.info("stopped: %s", stop, extra={"event": "stopped"})
    log.info("end: exit %d", result.exit_code, extra={"event": "end", "exit_code": result.exit_code})
    out, err = run_lines(result)
    if result.verification is not None:
        from batcher.flows.render_reads import verify_lines  # noqa: PLC0415

        err += verify_lines(result.verification)
    if options.sandbox and result.summary is not None and result.exit_code != EXIT_USAGE:
        # a rehearsal's lines read like a real run's: say which it was, last (not after a refusal)
        err.append(
            f"{PROG}: rehearsal (--sandbox): a local emulator answered; nothing at {options.settings.base_url} "
            "was read or changed. Run the same command without --sandbox to send."
        )
    for line in out:
        say(line, sys.stdout)
    for line in err:
        say(line)
    return result.exit_code


def _credentials_line(resolved: config.Resolved, env: Mapping[str, str]) -> str:
    """--print-config's last line: where the tokens come from (flag, environment, config file, profile)."""
    from batcher.flows.login import credentials_source  # noqa: PLC0415
    from batcher.http.profiles import chosen_profile  # noqa: PLC0415
    from batcher.http.session import state_root  # noqa: PLC0415

    values = resolved.values
    token_file = Path(str(values["token_file"])) if values.get("token_file") else None
    root = state_root(Path(str(values["state_dir"])) if values.get("state_dir") else None, env)
    profile = chosen_profile(str(values["profile"]) if values.get("profile") else None, env)
    what, source = credentials_source(
        env,
        token_file=token_file,
        token_file_source=resolved.sources.get("token_file", ""),
        state_root=root,
        profile=profile,
    )
    return f"credentials = {what!r}  # {source}"


def _configure_logs(options: RunOptions, env: Mapping[str, str]) -> None:
    from batcher.support import logs  # noqa: PLC0415

    output = options.output
    logs.configure(
        verbosity=output.verbosity,
        log_format=output.log_format,
        log_file=output.log_file,
        secrets=[env.get(name, "") for name in SECRET_ENV],
    )


def _show_notes(plan: Plan) -> None:
    # the loaded rows (millions of strings in arrays and tuples) live until this process ends with the run:
    # the cycle collector walking them at every full collection cost a tenth of a second per million rows.
    # Only the command line knows the process ends with the run, so the freeze is here, not in the library.
    gc.freeze()
    for line in note_lines(plan):
        say(line)


def _show_preview(preview: Preview) -> None:
    for line in preview_lines(preview):
        say(line)


def _confirmer(options: RunOptions) -> Callable[[Plan, QuotaView | None], bool]:
    def confirm(plan: Plan, quota: QuotaView | None) -> bool:
        if options.yes or options.sandbox or not plan.groups or not (sys.stdin.isatty() and sys.stderr.isatty()):
            return True
        for line in plan_lines(plan, options.settings, quota, reads=options.snapshot):
            say(line)
        print(confirm_question(plan, options.settings, reads=options.snapshot), end="", file=sys.stderr, flush=True)
        try:
            answer = sys.stdin.readline()
        except EOFError:
            return False
        # Ctrl-C at the prompt is an interruption (130), raised on to the flow, not a "no"
        return answer.strip().lower() in ("y", "yes")

    return confirm


def _progress(
    options: RunOptions, planned: list[Estimate]
) -> Callable[[int], AbstractContextManager[ProgressCallback | None]]:
    @contextmanager
    def show(total: int) -> Iterator[ProgressCallback | None]:
        from batcher.cli.progress import Progress  # noqa: PLC0415

        guess = planned[-1] if planned else None
        people = sum(group.rows for group in guess.people) if guess is not None else 0
        bar = options.output.progress and sys.stderr.isatty()
        with Progress(
            total + people,
            bar=bar,
            line_every_s=options.output.progress_every_s,
            likely_requests=guess.likely if guess is not None else 0,
            interval_s=options.settings.pacing_interval_s,
        ) as progress:
            yield progress.advance

    return show


def _report(args: argparse.Namespace) -> int:
    from batcher.flows.render import report_lines  # noqa: PLC0415
    from batcher.flows.report import ReportOptions, chosen_words, report_flow  # noqa: PLC0415

    only = outcomes(args.only)
    result = report_flow(ReportOptions(args.results, only, args.out, args.summary_json))
    for line in report_lines(result.report):
        say(line, sys.stdout)
    if result.extracted is not None and only is not None:
        chosen = chosen_words(only)
        for line in extracted_lines(result.extracted, chosen, args.out, result.needs_status, result.status):
            say(line, sys.stdout)
    return result.exit_code


def _runs(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from batcher.flows.render_reads import run_lines_of, runs_lines  # noqa: PLC0415
    from batcher.flows.runs import find_run, runs_flow  # noqa: PLC0415

    if args.run_id:
        lines = run_lines_of(find_run(args.state_dir, env, args.run_id, args.profile))
    else:
        lines = runs_lines(runs_flow(args.state_dir, env, args.profile))
    for line in lines:
        say(line, sys.stdout)
    return EXIT_OK


def _sandbox(args: argparse.Namespace) -> int:
    from batcher.flows.sandbox import Scenario, ServeOptions, latency, serve_flow  # noqa: PLC0415 - aiohttp

    scenario = Scenario(
        token=args.token,
        rate_limit_per_s=args.rate_limit or None,
        latency_s=latency(args.latency_ms),
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
        auto_approve_after=args.auto_approve_after,
        device_interval_s=args.device_interval,
    )
    serve_flow(
        ServeOptions(args.host, args.port, scenario, args.registrations), on_ready=lambda text: say(f"{PROG}: {text}")
    )
    return EXIT_OK


def _ui(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """The page: run's options resolved as run's are, served until Ctrl-C."""
    from batcher.cli.parser_ui import UI_OPTIONS  # noqa: PLC0415
    from batcher.http.session import state_root  # noqa: PLC0415
    from batcher.web.serve import PageOptions, serve_page  # noqa: PLC0415 - aiohttp and Jinja2 only for the page

    specs, defaults = option_table()
    given = {name: value for name, value in vars(args).items() if name in UI_OPTIONS}
    config_path = getattr(args, "config", None) or (Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None)
    values = config.resolve(given, specs, defaults, env, config_path).values
    state_dir = state_root(Path(str(values["state_dir"])) if values["state_dir"] else None, env)
    options = PageOptions(values, state_dir, port=args.port, browser=not args.no_browser, sandbox=args.sandbox)
    # the one line that shows the one-time token: printed as it is (say() would mask it as a secret)
    serve_page(options, env, on_ready=lambda address: print(f"{PROG} ui: open {address}", flush=True))
    return EXIT_OK


def _read_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """verify or export: the API options resolved as run's are, one flow, its summary on stderr."""
    from batcher.cli.parser import READ_OPTIONS  # noqa: PLC0415
    from batcher.flows.options import read_options  # noqa: PLC0415
    from batcher.flows.session import PageBar  # noqa: PLC0415
    from batcher.support import logs  # noqa: PLC0415

    specs, defaults = option_table()
    given = {name: value for name, value in vars(args).items() if name in READ_OPTIONS}
    config_path = getattr(args, "config", None) or (Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None)
    resolved = config.resolve(given, specs, defaults, env, config_path, also_known=LOGIN_OPTIONS)
    try:
        read = read_options(config.tokens_by_precedence(resolved, env).values)
    except UsageError as exc:
        raise config.with_origin(exc, resolved, specs) from None
    logs.configure(verbosity=0, log_format="text", log_file=None, secrets=[env.get(name, "") for name in SECRET_ENV])
    with PageBar(shown=read.progress) as bar:
        if args.command == "verify":
            from batcher.flows.render_reads import verify_lines  # noqa: PLC0415
            from batcher.flows.verify import VerifyOptions, verify_flow  # noqa: PLC0415

            verified = verify_flow(VerifyOptions(args.results, read, args.out), env, on_listing=bar.listing)
            lines, code = verify_lines(verified), verified.exit_code
        else:
            from batcher.flows.export import export_flow, export_options  # noqa: PLC0415
            from batcher.flows.render_reads import export_lines  # noqa: PLC0415

            chosen = export_options(
                args.events,
                read,
                tracks=args.track,
                status=args.status,
                payment_status=args.payment_status,
                search=args.search,
                out=args.out,
            )
            exported = export_flow(chosen, env, on_listing=bar.listing)
            if chosen.out is None:
                sys.stdout.write(redaction.redact(exported.text))
                sys.stdout.flush()
            lines, code = export_lines(exported), exported.exit_code
    for line in lines:
        say(line)
    return code

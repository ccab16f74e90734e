"""The typed options of `run` and `plan`: resolved values (flag, environment, config file, default) made
into frozen dataclasses, each option converted once, in the same words whatever its source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from batcher.defaults import DELIMITER_NAMES, FIELDS, RESULTS_FORMATS
from batcher.errors import UsageError
from batcher.flows.command_line import CommandLine, Given
from batcher.http.profiles import DEFAULT_PROFILE, check_profile_name
from batcher.http.quota import DEFAULT_DAILY_QUOTA
from batcher.http.session import SessionOptions
from batcher.models import KNOWN_STATUSES, Outcome, QueryFlags, status_words
from batcher.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_THROTTLE_WAIT_S,
    DEFAULT_RATE_PER_S,
    DEFAULT_TIMEOUT_S,
    Settings,
)
from batcher.support.csvtext import normalize_header

if TYPE_CHECKING:  # the loader pulls in pyarrow, which `--print-config` and `--help` do not need
    from batcher.input.loader import InputOptions


PROGRESS_EVERY_S = 30.0
# every run/plan option's default, in one table: the parser gives only the options typed, so that
# config.resolve can tell a flag from a default (flag, then environment, then config file, then this)
RUN_DEFAULTS: dict[str, object] = {
    "delimiter": None,
    "encoding": None,
    "sheet": None,
    "column": [],
    "only": None,
    "status": None,
    "status_column": None,
    "snapshot": True,
    "if_status": None,
    "force": False,
    "batch_size": DEFAULT_BATCH_SIZE,
    "rate": DEFAULT_RATE_PER_S,
    "results": None,
    "results_format": "auto",
    "base_url": None,
    "allow_insecure": False,
    "concurrency": DEFAULT_CONCURRENCY,
    "timeout": DEFAULT_TIMEOUT_S,
    "increase_count": None,
    "increase_item_count": None,
    "return_items_to_inventory": None,
    "dry_run": False,
    "yes": False,
    "sandbox": False,
    "sandbox_registrations": None,
    "no_progress": False,
    "progress_every": PROGRESS_EVERY_S,
    "resume": False,
    "allow_invalid": False,
    "verify": False,
    "max_retries": DEFAULT_MAX_RETRIES,
    "max_throttle_wait": DEFAULT_MAX_THROTTLE_WAIT_S,
    "token_file": None,
    "token_url": None,
    "profile": None,
    "daily_quota": DEFAULT_DAILY_QUOTA,
    "max_changes": None,
    "limit": None,
    "verbose": 0,
    "quiet": False,
    "log_format": "text",
    "log_file": None,
    "summary_json": None,
    "state_dir": None,
}


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """What a run writes besides the rows' own results: logs, progress, the summary JSON."""

    verbosity: int = 0  # -1 quiet, 0 default, 1 -v, 2 -vv
    log_format: str = "text"
    log_file: Path | None = None
    progress: bool = True
    progress_every_s: float = PROGRESS_EVERY_S  # without a terminal, a progress line this often
    summary_json: Path | None = None


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything `run` and `plan` were told, typed; built once, at the edge."""

    input: Path
    settings: Settings
    input_options: InputOptions
    output: OutputOptions
    results: Path
    results_format: str = "auto"
    dry_run: bool = False
    default_status: str | None = None
    resume: bool = False
    limit: int | None = None
    max_changes: int | None = None
    daily_quota: int | None = None
    yes: bool = False
    sandbox: bool = False
    sandbox_registrations: Path | None = None
    state_dir: Path | None = None  # None: quota.default_state_dir of the environment
    token_file: Path | None = None
    token_url: str | None = None  # None: the environment's CTCT_TOKEN_URL, else the login's, else auth's default
    profile: str = DEFAULT_PROFILE  # whose login, quota ledger and saved tokens (a folder under state_dir)
    allow_invalid: bool = False
    verify: bool = False  # read back, after the run, what it changed (as `batcher verify` does)
    snapshot: bool = True  # read the current status of every registration before any PUT (--no-snapshot: not)
    if_status: frozenset[str] | None = None  # --if-status: change only rows whose current status is one of these
    undo: bool = False  # `batcher undo`: the input is a results file whose changes are put back
    force: bool = False  # undo: also rows someone changed since the run
    command_line: CommandLine | None = None  # the options given on the command line, for the resume command
    results_given: bool = False  # --results was given (undo RUN_ID puts its own results beside the run's else)

    @property
    def session(self) -> SessionOptions:
        """How this run reaches the API (http/session.py builds its token, ledger and client from it)."""
        return SessionOptions(
            self.settings, self.daily_quota, self.state_dir, self.token_file, self.token_url, self.profile
        )

    @property
    def sends(self) -> bool:
        """True when this run talks to the real API (and so needs credentials and the quota ledger)."""
        return not self.dry_run and not self.sandbox


def run_options(
    values: Mapping[str, object], *, command: str, input_path: Path, as_given: Sequence[Given] = ()
) -> RunOptions:
    """The typed options of run/plan from their resolved values.

    Raises:
        UsageError: a value does not fit its option.
    """
    sandbox = bool(values["sandbox"])
    sandbox_file = _path(values["sandbox_registrations"])
    if sandbox_file is not None and not sandbox:
        raise UsageError("--sandbox-registrations needs --sandbox")
    if command == "undo" and not values["snapshot"]:
        raise UsageError("undo reads the current status first (to leave alone what changed since); drop --no-snapshot")
    given = values["results"]  # '' is kept, and refused as a folder: it names no file
    if given is not None:
        results = Path(str(given))
    elif command == "undo":
        results = input_path.with_name(input_path.stem + ".undo.csv")
    else:
        results = default_results_path(input_path)
    status = values["status"]
    snapshot = bool(values["snapshot"])
    if values["if_status"] and not snapshot:
        raise UsageError("--if-status needs the reads that --no-snapshot turns off; drop one of them")
    return RunOptions(
        input=input_path,
        settings=_settings(values),
        input_options=_input_options(values),
        output=OutputOptions(
            verbosity=-1 if values["quiet"] else _count(values["verbose"]),
            log_format=str(values["log_format"]),
            log_file=_path(values["log_file"]),
            progress=not values["no_progress"],
            progress_every_s=_seconds(values, "progress_every"),
            summary_json=_path(values["summary_json"]),
        ),
        results=results,
        results_format=_choice(values, "results_format", RESULTS_FORMATS),
        dry_run=command == "plan" or bool(values["dry_run"]),
        default_status=str(status) if status else None,
        resume=bool(values["resume"]),
        limit=_whole(values, "limit"),
        max_changes=_whole(values, "max_changes"),
        daily_quota=_whole(values, "daily_quota"),
        yes=bool(values["yes"]),
        sandbox=sandbox,
        sandbox_registrations=sandbox_file,
        state_dir=_path(values["state_dir"]),
        token_file=_path(values["token_file"]),
        token_url=str(values["token_url"]) if values["token_url"] else None,
        profile=_profile(values),
        allow_invalid=bool(values["allow_invalid"]),
        verify=bool(values.get("verify", False)),
        snapshot=bool(values["snapshot"]),
        if_status=if_status(values["if_status"]),
        undo=command == "undo",
        force=bool(values.get("force", False)),
        command_line=CommandLine(command, input_path, tuple(as_given)),
        results_given=given is not None,
    )


def default_results_path(input_path: Path) -> Path:
    """The input path with .results.csv in place of its suffix."""
    return input_path.with_name(input_path.stem + ".results.csv")


def _settings(values: Mapping[str, object]) -> Settings:
    def switch(name: str) -> bool | None:
        value = values[name]
        return value if isinstance(value, bool) else None

    return Settings(
        base_url=str(values["base_url"] or DEFAULT_BASE_URL),
        batch_size=int(_number(values, "batch_size")),
        rate_per_s=float(_number(values, "rate")),
        concurrency=int(_number(values, "concurrency")),
        timeout_s=float(_number(values, "timeout")),
        flags=QueryFlags(switch("increase_count"), switch("increase_item_count"), switch("return_items_to_inventory")),
        allow_insecure=bool(values["allow_insecure"] or values["sandbox"]),
        max_retries=int(_number(values, "max_retries")),
        max_throttle_wait_s=float(_number(values, "max_throttle_wait")),
    )


def _input_options(values: Mapping[str, object]) -> InputOptions:
    from batcher.input.loader import InputOptions  # noqa: PLC0415 - see the typing import above

    columns = values["column"]
    encoding, sheet, status_column = values["encoding"], values["sheet"], values["status_column"]
    if status_column is not None and not str(status_column).strip():
        raise UsageError("--status-column needs the header of the column holding each row's target status")
    return InputOptions(
        delimiter=delimiter(values["delimiter"]),
        encoding=str(encoding) if encoding else None,
        sheet=str(sheet) if sheet else None,
        columns=tuple(column(str(text)) for text in columns) if isinstance(columns, list) else (),
        only=only(values["only"]),
        status_column=str(status_column) if status_column is not None else None,
    )


def delimiter(value: object) -> str | None:
    """--delimiter: ',' ';' or tab, by character or by name; None when not given.

    Raises:
        UsageError: anything else.
    """
    if value is None or value == "":
        return None
    text = str(value)
    names = {name: delimiter for delimiter, name in DELIMITER_NAMES.items()}
    chosen = names.get(text.strip().lower(), "\t" if text in ("\t", "\\t") else text)
    if chosen not in DELIMITER_NAMES:
        raise UsageError(f"--delimiter takes ',' ';' or tab (also written '\\t'), not {text!r}")
    return chosen


def column(text: str) -> tuple[str, str]:
    """--column FIELD=HEADER as (field, header).

    Raises:
        UsageError: FIELD is not an input field, or '=' is missing.
    """
    field, equals, header = text.partition("=")
    fields = {normalize_header(name): name for name in FIELDS}
    if not equals or normalize_header(field) not in fields:
        raise UsageError(f"--column takes FIELD=HEADER with FIELD one of {', '.join(FIELDS)} (got {text!r})")
    header = header.strip()
    if len(header) >= 2 and header[0] == header[-1] == '"':
        header = header[1:-1]  # event_id="Event" typed where the shell keeps the quotes
    return fields[normalize_header(field)], header


def only(value: object) -> frozenset[str] | None:
    """--only of run: the outcomes to keep from an earlier results file; None when not given.

    Raises:
        UsageError: a word is not an outcome.
    """
    chosen = outcomes(value)
    return None if chosen is None else frozenset(outcome.value for outcome in chosen)


def outcomes(value: object) -> tuple[Outcome, ...] | None:
    """The outcomes of a comma list (--only of run and of report), in the order given; None when not given.

    Raises:
        UsageError: a word is not an outcome, or there is none.
    """
    if value is None or value == "":
        return None
    words = [word.strip().lower() for word in str(value).split(",") if word.strip()]
    known = {outcome.value: outcome for outcome in Outcome}
    unknown = sorted(set(words) - set(known))
    if not words or unknown:
        got = ", ".join(unknown) or "nothing"
        raise UsageError(f"--only takes outcomes separated by commas, from {', '.join(known)} (got {got})")
    return tuple(dict.fromkeys(known[word] for word in words))


def if_status(value: object) -> frozenset[str] | None:
    """--if-status: the current statuses a row may have to be changed; None when not given.

    Raises:
        UsageError: a word is not a known status.
    """
    if not value:
        return None
    statuses = frozenset(status_words(str(value)))
    unknown = sorted(statuses - set(KNOWN_STATUSES))
    if not statuses or unknown:
        raise UsageError(
            f"--if-status takes statuses separated by commas, from {', '.join(KNOWN_STATUSES)} "
            f"(got {', '.join(unknown) or 'nothing'})"
        )
    return statuses


def _number(values: Mapping[str, object], name: str) -> float:
    value = values[name]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise UsageError(f"--{name.replace('_', '-')} must be a number (got {value!r})")
    return value


def _seconds(values: Mapping[str, object], name: str) -> float:
    value = _number(values, name)
    if value < 0:
        raise UsageError(f"--{name.replace('_', '-')} must be 0 or more seconds (got {value!r})")
    return float(value)


def _choice(values: Mapping[str, object], name: str, choices: tuple[str, ...]) -> str:
    value = str(values[name]).strip().lower()
    if value not in choices:
        raise UsageError(f"--{name.replace('_', '-')} takes one of {', '.join(choices)} (got {values[name]!r})")
    return value


def _whole(values: Mapping[str, object], name: str) -> int | None:
    value = values[name]
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UsageError(f"--{name.replace('_', '-')} must be a whole number of 0 or more (got {value!r})")
    return value


def _count(value: object) -> int:
    if isinstance(value, bool):  # BATCHER_VERBOSE=true, or verbose = true in a config file
        return int(value)
    if not isinstance(value, int) or value < 0:
        raise UsageError(f"--verbose must be a count of 0 or more (got {value!r})")
    return value


def _profile(values: Mapping[str, object]) -> str:
    value = values.get("profile")
    return check_profile_name(str(value)) if value else DEFAULT_PROFILE


def _path(value: object) -> Path | None:
    return Path(str(value)) if value not in (None, "") else None


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How a command that only reads (`verify`, `export`) reaches the API, and whether it shows progress."""

    session: SessionOptions
    progress: bool = True

    @property
    def settings(self) -> Settings:
        return self.session.settings


def read_options(values: Mapping[str, object]) -> ReadOptions:
    """The typed API options of verify/export from resolved values (RUN_DEFAULTS for the rest).

    Raises:
        UsageError: a value does not fit its option.
    """
    session = SessionOptions(
        settings=_settings(values),
        daily_quota=_whole(values, "daily_quota"),
        state_dir=_path(values["state_dir"]),
        token_file=_path(values["token_file"]),
        token_url=str(values["token_url"]) if values["token_url"] else None,
        profile=_profile(values),
    )
    return ReadOptions(session, progress=not values["no_progress"])


def read_options_of(run: RunOptions) -> ReadOptions:
    """The API options of a run, for the reads after it (`run --verify` calls verify_flow with these)."""
    return ReadOptions(run.session, progress=run.output.progress)

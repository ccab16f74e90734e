"""Shared fixtures: CSV writing, fast settings, a real sandbox server on 127.0.0.1, a clean environment, the command
line at the test environment's pace (run_cli), and no backoff waits unless a test is marked real_waits."""

from __future__ import annotations

import csv
import itertools
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import pytest

from batcher.cli import main as cli
from batcher.http import pacing
from batcher.http.pace_record import PaceRecord
from batcher.sandbox import app as sandbox
from batcher.settings import Settings
from batcher.support import redaction

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_inputs"
EVENT = "07216444-4e3b-41ea-a3b8-5a418fce41f4"
TRACK = "gqz1gb"
HEADER = ("event_id", "track_id", "registration_id", "registration_status")


def reg_id(n: int) -> str:
    """A deterministic registration UUID."""
    return f"00000000-0000-4000-8000-{n:012d}"


def rows_for(count: int, *, event: str = EVENT, track: str = TRACK, status: str = "CANCELED") -> list[list[str]]:
    return [[event, track, reg_id(n), status] for n in range(count)]


@pytest.fixture(autouse=True)
def _no_secrets_of_earlier_tests() -> Iterator[None]:
    """The secret registry is process-wide: a token one test registered must not mask words in the next."""
    yield
    redaction.forget_all()


@pytest.fixture(autouse=True)
def _no_waits(request: pytest.FixtureRequest) -> Iterator[None]:
    """The one testing switch for waits (backoff, 429 pauses, token-endpoint spacing) is on in every test, but one
    marked real_waits, which measures them."""
    pacing.set_testing(request.node.get_closest_marker("real_waits") is None)
    yield
    pacing.set_testing(False)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may pick up real credentials or a real base URL."""
    for name in list(os.environ):
        if name.startswith(("CTCT_", "BATCHER_")):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _private_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The daily request count and saved tokens go to the test's own folder, never the user's."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # for CLI calls given an environ without XDG_STATE_HOME
    return state / "batcher"


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    def write(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER, name: str = "input.csv") -> Path:
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    return write


@pytest.fixture
def settings() -> Settings:
    """Fast settings: no backoff waits, a high pace; every test passes its sandbox's URL."""
    return Settings(base_url="http://127.0.0.1:1/v3", rate_per_s=1000)


@dataclass
class RunningSandbox:
    """A sandbox serving on 127.0.0.1 from its own thread, for in-process CLI tests."""

    url: str
    state: sandbox.SandboxState
    scenario: sandbox.Scenario


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., RunningSandbox]]:
    """Start sandboxes on free loopback ports from threads (sandbox.serve_in_thread); stopped after the test."""
    with ExitStack() as stack:

        def start(
            scenario: sandbox.Scenario | None = None,
            registrations: Iterable[sandbox.Registration | tuple[str, ...]] = (),
        ) -> RunningSandbox:
            scenario = scenario or sandbox.Scenario(rate_limit_per_s=None)
            url, state = stack.enter_context(sandbox.serve_in_thread(scenario, registrations))
            return RunningSandbox(url, state, scenario)

        yield start


def known(rows: Sequence[Sequence[str]]) -> list[tuple[str, str, str, str]]:
    """Sandbox registrations for every row, status REGISTERED."""
    return [(row[0], row[1], row[2].lower(), "REGISTERED") for row in rows]


def with_url(settings: Settings, url: str) -> Settings:
    return replace(settings, base_url=url)


TOKEN_ENV = {"CTCT_ACCESS_TOKEN": sandbox.SANDBOX_TOKEN}
WriteCsv = Callable[..., Path]
StartSandbox = Callable[..., RunningSandbox]


def read_results(path: Path) -> list[dict[str, str]]:
    """The rows of a results file, by header."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def outcomes(path: Path) -> list[str]:
    """The outcome column of a results file."""
    return [row["outcome"] for row in read_results(path)]


# the test rows' own registration_status column names each row's target
TARGET_COLUMN = ("--status-column", "registration_status")
BLIND = (*TARGET_COLUMN, "--no-snapshot")  # ... and send without reading first
# the test environment's pace: the sandboxes of the tests have no per-second limit; a test of the pace passes --rate,
# which beats the environment
TEST_PACE = {"BATCHER_RATE": "1000"}


class RunCli(Protocol):
    def __call__(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> int: ...


@pytest.fixture
def run_cli() -> RunCli:
    """cli.main(args) with the sandbox's token (or env, when given) and the test environment's pace."""

    def run(args: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        return cli.main(list(args), environ={**TEST_PACE, **(TOKEN_ENV if env is None else env)})

    return run


def record_run(results: Path, state_dir: Path | None = None) -> str:
    """Put a hand-written results file into the run history, as if a run wrote it: its journal records every row
    the file says succeeded with a change (an intent with its previous_status, then an applied batch).

    state_dir: None for the default state folder of the CLI tests (under the test's HOME). Returns the run ID.
    """
    from batcher.models import Batch, BatchResult  # noqa: PLC0415
    from batcher.results import history  # noqa: PLC0415
    from batcher.results.journal import Journal  # noqa: PLC0415

    state = state_dir or Path.home() / ".local" / "state" / "batcher"
    run = history.begin(
        state,
        history.RunRecord(
            run_id="",
            command="run",
            started="",
            input=str(results.with_suffix(".input.csv").resolve()),
            input_sha256="",
            results=str(results.resolve()),
            api="http://127.0.0.1/v3",
            finished=True,
        ),
    )
    journal = Journal(run.journal, append=True)
    rows = read_results(results)
    for number, row in enumerate(rows):
        keys = [value for name, value in row.items() if name.replace(" ", "_").lower() in HEADER[:3]]
        before, after = row["previous_status"], row["target_status"]
        if row["outcome"] != "succeeded" or before == after or len(keys) != 3:
            continue
        batch = Batch(number + 1, 0, keys[0], keys[1], after, (keys[2].lower(),), (number,))
        journal.record_intents([(batch, [before])])
        journal.record(batch, BatchResult(number + 1, 200))
    journal.close()
    return run.run_id


def history_files(state_dir: Path | None = None) -> dict[str, str]:
    """The text of every file the run history holds (run.json, journal, results copies), by 'RUN_ID/name'."""
    runs = (state_dir or Path.home() / ".local" / "state" / "batcher") / "runs"
    return {f"{p.parent.name}/{p.name}": p.read_text(encoding="utf-8") for p in runs.glob("*/*") if p.is_file()}


def cancel_argv(path: Path, url: str, *extra: str) -> list[str]:
    """batcher run PATH --status CANCELED --base-url URL --yes --no-progress, then extra."""
    return ["run", str(path), "--status", "CANCELED", "--base-url", url, "--yes", "--no-progress", *extra]


def undo_argv(results: Path, url: str, *extra: str) -> list[str]:
    """batcher undo RESULTS --base-url URL --yes --no-progress, then extra."""
    return ["undo", str(results), "--base-url", url, "--yes", "--no-progress", *extra]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def token_url(box: RunningSandbox) -> str:
    """The sandbox's token endpoint."""
    return box.url.removesuffix("/v3") + sandbox.TOKEN_PATH


PaceStarts = list[tuple[float, float]]


@pytest.fixture
def pace_starts(monkeypatch: pytest.MonkeyPatch) -> PaceStarts:
    """Every request start the shared pace record grants, as (time, interval): the pace's own readings of its
    clock, so a check on them holds however loaded the machine is (a strict sandbox window does not)."""
    granted: PaceStarts = []
    claim = PaceRecord.claim

    def recording(record: PaceRecord, now: float, interval_s: float) -> float:
        wait = claim(record, now, interval_s)
        if wait == 0.0:
            granted.append((now, interval_s))
        return wait

    monkeypatch.setattr(PaceRecord, "claim", recording)
    return granted


def an_interval_apart(starts: PaceStarts) -> bool:
    """Each start comes at least its interval after the one before."""
    return all(later >= earlier + interval for (earlier, interval), (later, _) in itertools.pairwise(starts))

"""The page's work: a Job per uploaded or exported file, in its own 0700 folder, and the one task at a time that
runs a flow on it (run, undo, verify) in a thread, with the page's hooks for confirmation and progress.

Every change wakes the pages watching the job (server-sent events), so a reload or a second tab shows the same
state; a second task on a busy job is refused here, and the results lock refuses one from another process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from batcher.errors import BatcherError, UnclearColumns, UsageError
from batcher.flows.command_line import Given
from batcher.flows.options import RunOptions, run_options
from batcher.flows.render import plan_lines
from batcher.flows.run import RunHooks, run_flow
from batcher.flows.summary import QuotaView, RunResult
from batcher.support.signals import StopButton
from batcher.web.setup import PageSetup
from batcher.web.watch import Watched

if TYPE_CHECKING:
    from batcher.flows.verify import VerifyResult
    from batcher.plan.planning import Plan
    from batcher.remote.execute import ProgressCallback
    from batcher.remote.snapshot import Preview
    from batcher.web.signin import SignIn

FOLDER_MODE = 0o700
JOB_ID = re.compile(r"[0-9a-f]{16}")
INPUT_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm")
WAKE_EVERY_S = 0.25  # progress wakes the watching pages at most this often (the last update always)


@dataclass(frozen=True, slots=True)
class Choices:
    """What the person chose on the page before "Preview", as run's options say it."""

    status: str
    if_status: str = ""
    limit: int | None = None
    columns: tuple[tuple[str, str], ...] = ()  # (field, header), as --column FIELD=HEADER

    def given(self, results: Path) -> tuple[Given, ...]:
        """The same run's options as a command line would give them (its resume command repeats them)."""
        given: list[Given] = [("--status", self.status)]
        given += [("--if-status", self.if_status)] if self.if_status else []
        given += [("--limit", str(self.limit))] if self.limit is not None else []
        given += [("--column", f"{name}={header}") for name, header in self.columns]
        return (*given, ("--results", str(results)))


@dataclass(slots=True)
class Progress:
    """The live counts of a send."""

    total: int = 0
    done: int = 0
    requests: int = 0
    started: float = field(default_factory=time.monotonic)
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def left_s(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


class Job(Watched):
    """One file and what was done with it from the page."""

    def __init__(self, job_id: str, folder: Path, input_path: Path, name: str, setup: PageSetup) -> None:
        super().__init__()
        self.id, self.folder, self.input, self.name, self.setup = job_id, folder, input_path, name, setup
        self.kind = ""  # the task now or last: "run", "undo" or "verify"
        self.phase = "ready"  # ready, planning, reading, confirm, sending, stopping, done
        self.choices: Choices | None = None
        self.plan_text: list[str] = []
        self.preview: Preview | None = None
        self.progress = Progress()
        self.run: RunResult | None = None
        self.undo: RunResult | None = None
        self.verification: VerifyResult | None = None
        self.error = ""  # the last task's error, for the page
        self.unclear: UnclearColumns | None = None
        self.notes: list[str] = []  # e.g. the export's lines
        self.run_id = ""  # a job started from the run history: the run it undoes (it has no input file)
        self.stop = StopButton()
        self.task: asyncio.Future[None] | None = None
        self.running = False  # a task is on: set before it starts, cleared as its last change is told
        self._answer: bool | None = None
        self._decided = threading.Event()
        self._last_wake = 0.0

    @property
    def busy(self) -> bool:
        return self.running

    @property
    def results(self) -> Path:
        return self.folder / (self.input.stem + ".results.csv")

    @property
    def undo_results(self) -> Path:
        return self.folder / (self.input.stem + ".results.undo.csv")

    @property
    def verify_file(self) -> Path:
        return self.folder / (self.input.stem + ".results.verify.csv")

    def changed(self) -> None:
        """Wake the watching pages (from any thread); progress counts when it was last told."""
        self._last_wake = time.monotonic()
        super().changed()

    # -- the tasks --------------------------------------------------------------------------------------------

    def start_run(self, choices: Choices, *, resume: bool = False) -> None:
        """Plan and read now; the PUTs wait for decide(True).

        Raises:
            UsageError: a task is going on this job, or a choice does not fit its option.
        """
        values = self._values(
            status=choices.status,
            if_status=choices.if_status or None,
            limit=None if resume else choices.limit,
            column=[f"{name}={header}" for name, header in choices.columns],
            results=str(self.results),
            resume=resume,
        )
        options = run_options(values, command="run", input_path=self.input, as_given=choices.given(self.results))
        self.choices = choices
        self._start("run", lambda: self._run_flow(options))

    def start_undo(self) -> None:
        """Read what the run changed and show undo's from -> to; the PUTs wait for decide(True).

        Raises:
            UsageError: a task is going on, or there is no results file to undo.
        """
        # a run of the history is named by its ID: undo then reads that run's own journal and results copy
        source = Path(self.run_id) if self.run_id else self.results
        if not self.run_id and not self.results.exists():
            raise UsageError("there is no results file to undo yet: send first")
        values = self._values(results=str(self.undo_results))
        options = run_options(
            values, command="undo", input_path=source, as_given=(("--results", str(self.undo_results)),)
        )
        self._start("undo", lambda: self._run_flow(options))

    def start_verify(self) -> None:
        """Read back what the results file says was done.

        Raises:
            UsageError: a task is going on, or there is no results file yet.
        """
        from batcher.flows.options import read_options  # noqa: PLC0415
        from batcher.flows.verify import VerifyOptions, verify_flow  # noqa: PLC0415

        if not self.results.exists():
            raise UsageError("there is no results file to verify yet: send first")
        options = VerifyOptions(self.results, read_options(self._values()), self.verify_file)

        def verify() -> None:
            self.verification = verify_flow(options, self.setup.environ)

        self._start("verify", verify)

    def decide(self, *, send: bool) -> bool:
        """The person's answer to the preview; False when no run is waiting for one."""
        if self.phase != "confirm":
            return False
        self._answer = send
        self.phase = "sending" if send else "done"
        self._decided.set()
        self.changed()
        return True

    def press_stop(self) -> None:
        """Stop as Ctrl-C does: a run waiting at its preview sends nothing, a send sends no new request."""
        if not self.busy:
            return
        self.stop.press()
        if self.phase == "confirm":
            self.decide(send=False)
        elif self.phase == "sending":
            self.phase = "stopping"
            self.changed()

    def _values(self, **chosen: object) -> dict[str, object]:
        return {**self.setup.values, "yes": True, "no_progress": True, **chosen}

    def _start(self, kind: str, work: Callable[[], None]) -> None:
        if self.busy:
            raise UsageError("a task is already going on this file (it is shown below); wait for it or stop it")
        self.kind, self.phase, self.error, self.unclear = kind, "planning", "", None
        self.plan_text, self.preview, self.progress = [], None, Progress()
        self.stop, self._answer = StopButton(), None
        self._decided.clear()

        def guarded() -> None:
            try:
                work()
            except BatcherError as exc:
                self.error = str(exc)
            finally:
                self.phase, self.running = "done", False
                self.changed()

        self.running = True
        self.task = self.loop.run_in_executor(None, guarded)
        self.changed()

    def _run_flow(self, options: RunOptions) -> None:
        hooks = RunHooks(
            confirm=self._planned_hook(options),
            progress=self._progress,
            on_preview=self._previewed,
            confirm_changes=self._wait_for_answer,
            stop=self.stop,
        )
        result = run_flow(options, self.setup.environ, hooks)
        if isinstance(result.error, UnclearColumns):
            self.unclear = result.error
        if options.undo:
            self.undo = result
        else:
            self.run = result
        if result.error is not None:
            self.error = str(result.error)

    def _planned_hook(self, options: RunOptions) -> Callable[[Plan, QuotaView | None], bool]:
        def planned(plan: Plan, quota: QuotaView | None) -> bool:
            # pressing "Preview" asked for the reads (no PUT): the question comes after them, in confirm_changes
            self.plan_text = plan_lines(plan, options.settings, quota, reads=options.snapshot)
            self.phase = "reading"
            self.changed()
            return not self.stop.pressed

        return planned

    def _previewed(self, preview: Preview) -> None:
        self.preview = preview
        self.phase = "confirm" if preview.puts else "sending"
        self.progress = Progress(total=preview.changes)
        self.changed()

    def _wait_for_answer(self, preview: Preview) -> bool:
        self._decided.wait()
        return bool(self._answer)

    @contextmanager
    def _progress(self, total: int) -> Iterator[ProgressCallback | None]:
        if not self.progress.total:
            self.progress = replace(self.progress, total=total)

        def advance(rows: int, requests: int) -> None:
            progress = self.progress
            if progress.done == 0 and progress.requests == 0:
                progress.started = time.monotonic()
            progress.done += rows
            progress.requests += requests
            progress.elapsed_s = time.monotonic() - progress.started
            if progress.done >= progress.total or time.monotonic() - self._last_wake >= WAKE_EVERY_S:
                self.changed()

        yield advance


class Jobs:
    """The jobs of this page, each in a folder of its own (mode 0700) under the page's folder."""

    def __init__(self, setup: PageSetup) -> None:
        self.setup = setup
        self.by_id: dict[str, Job] = {}
        self.closing = False  # the server is stopping: the event streams end
        self.signin: SignIn | None = None  # the page's login, once one was started

    def switch_profile(self, profile: str) -> None:
        """Work as another profile from now on (its credentials, quota ledger and run history), every file too.

        Raises:
            UsageError: a task or a login is going on: it keeps the profile it started with.
        """
        if any(job.busy for job in self.by_id.values()) or (self.signin is not None and self.signin.busy):
            raise UsageError("a run is in progress on this page; wait for it to end (or stop it), then switch profiles")
        self.setup = self.setup.with_profile(profile)
        for job in self.by_id.values():
            job.setup = self.setup

    @property
    def uploads(self) -> Path:
        return self.setup.folder / "uploads"

    def new_folder(self) -> tuple[str, Path]:
        """A fresh private folder for one file."""
        for folder in (self.setup.folder, self.uploads):  # private, whatever the umask
            folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            os.chmod(folder, FOLDER_MODE)
        job_id = secrets.token_hex(8)
        folder = self.uploads / job_id
        folder.mkdir(mode=FOLDER_MODE)
        return job_id, folder

    def add(self, job_id: str, folder: Path, input_path: Path, name: str, *, run_id: str = "") -> Job:
        job = Job(job_id, folder, input_path, name, self.setup)
        job.run_id = run_id
        about = {"name": name, "input": input_path.name, "at": time.time(), "run_id": run_id}
        (folder / "job.json").write_text(json.dumps(about))
        self.by_id[job_id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        """The job of that id, this session's or an earlier one's (read back from its folder)."""
        if not JOB_ID.fullmatch(job_id):
            return None
        job = self.by_id.get(job_id)
        if job is not None:
            return job
        folder = self.uploads / job_id
        try:
            about = json.loads((folder / "job.json").read_text())
            input_path = folder / Path(str(about["input"])).name
        except (OSError, ValueError, KeyError, TypeError):
            return None
        job = self.by_id[job_id] = Job(job_id, folder, input_path, str(about.get("name", input_path.name)), self.setup)
        job.run_id = str(about.get("run_id", ""))
        return job

    def listed(self) -> list[tuple[str, str, float, bool]]:
        """(id, file name, when, has results) of every job in the folder, newest first."""
        found = []
        if self.uploads.is_dir():
            for folder in self.uploads.iterdir():
                try:
                    about = json.loads((folder / "job.json").read_text())
                    input_name = Path(str(about["input"])).name
                    found.append((folder.name, str(about["name"]), float(about["at"]), input_name))
                except (OSError, ValueError, KeyError, TypeError):
                    continue
        found.sort(key=lambda item: -item[2])
        return [
            (job_id, name, at, (self.uploads / job_id / (Path(input_name).stem + ".results.csv")).exists())
            for job_id, name, at, input_name in found
            if JOB_ID.fullmatch(job_id)
        ]

    async def close(self) -> None:
        """Stop every task (as Ctrl-C) and wait for them: their rows are written, pending where unsent."""
        self.closing = True
        tasks = [job.task for job in self.by_id.values() if job.task is not None and not job.task.done()]
        for job in self.by_id.values():
            job.press_stop()
            job.changed()  # wakes its streams, which see closing and end
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def safe_name(name: str) -> str:
    """An uploaded file's name, as a plain file name in its folder (its suffix kept when it is an input's)."""
    base = re.sub(r"[^A-Za-z0-9._ -]+", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .") or "input"
    stem, dot, suffix = base.rpartition(".")
    if not dot or f".{suffix.lower()}" not in INPUT_SUFFIXES:
        stem, suffix = base, "csv"
    return f"{stem[:80] or 'input'}.{suffix.lower()}"

"""The bench's harness: measured child processes, batcher runs read through --summary-json, sandboxes in a
thread or a process, the naive baseline sender, and the table of results.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]
from datasets import Dataset, sandbox_rows

from batcher.input.loader import load_input
from batcher.plan.chunker import plan_batches
from batcher.sandbox import app as sandbox

ROOT = Path(__file__).resolve().parent.parent
TOKEN = sandbox.SANDBOX_TOKEN
API_RATE_PER_S = 4.0
CASE_TIMEOUT_S = 240.0  # no single process of the bench may run longer


@dataclass
class Row:
    """One line of the table."""

    case: str
    figure: str
    value: str
    target: str
    ratio: str
    passed: bool | None  # None: skipped


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, dict[str, object]] = field(default_factory=dict)

    def add(self, case: str, figure: str, value: str, target: str, ratio: str, *, passed: bool | None) -> None:
        self.rows.append(Row(case, figure, value, target, ratio, passed))
        verdict = "SKIP" if passed is None else "PASS" if passed else "FAIL"
        print(f"  {verdict}  {case}: {figure} = {value} (target {target}, ratio {ratio})", flush=True)

    def table(self) -> str:
        header = ("case", "figure", "measured", "target", "ratio", "result")
        lines = [[r.case, r.figure, r.value, r.target, r.ratio, _verdict(r.passed)] for r in self.rows]
        widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
        out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
        out.append("| " + " | ".join("-" * w for w in widths) + " |")
        out.extend("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines)
        return "\n".join(out)

    @property
    def passed(self) -> bool:
        return all(row.passed is not False for row in self.rows)


def _verdict(passed: bool | None) -> str:
    return "skipped" if passed is None else "pass" if passed else "FAIL"


# ---------------------------------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Measured:
    """A finished child process: wall seconds, peak resident memory, exit code and output."""

    wall_s: float
    peak_rss_bytes: int
    exit_code: int
    stdout: str
    stderr: str


# Runs one command and reports its wall time and peak RSS from wait4. It runs as its own small process, so the
# measured command is forked from a small parent: a child forked straight from this (large) bench process would
# start with the bench's pages counted in its peak RSS.
MEASURER = """
import json, os, subprocess, sys, time
command, report, timeout = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
started = time.perf_counter()
process = subprocess.Popen(command)
while True:
    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    if pid:
        break
    if time.perf_counter() - started > timeout:
        process.kill()
        pid, status, usage = os.wait4(process.pid, 0)
        break
    time.sleep(0.002)
wall = time.perf_counter() - started
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, kilobytes on Linux
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as handle:
    json.dump({"wall_s": wall, "peak_rss_bytes": usage.ru_maxrss * scale, "exit_code": code}, handle)
"""


def measure(command: Sequence[str], *, env: dict[str, str] | None = None) -> Measured:
    """Run a command to its end (at most CASE_TIMEOUT_S) and measure it."""
    with tempfile.TemporaryDirectory() as folder:
        out, err, report = (Path(folder) / name for name in ("out", "err", "report.json"))
        with out.open("wb") as stdout, err.open("wb") as stderr:
            subprocess.run(
                [sys.executable, "-c", MEASURER, json.dumps(list(command)), str(report), str(CASE_TIMEOUT_S)],
                stdout=stdout,
                stderr=stderr,
                env={**os.environ, **(env or {})},
                cwd=ROOT,
                check=True,
            )
        figures = json.loads(report.read_text())
        return Measured(
            figures["wall_s"],
            figures["peak_rss_bytes"],
            figures["exit_code"],
            out.read_text(),
            err.read_text(errors="replace"),
        )


def median_wall_s(command: Sequence[str], runs: int) -> tuple[float, list[Measured]]:
    """The median wall time of `runs` runs of a command, and the runs."""
    measured = [measure(command) for _ in range(runs)]
    return statistics.median(run.wall_s for run in measured), measured


def batcher_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "batcher", *args]


@dataclass(frozen=True)
class BatcherRun:
    """A finished `batcher run`: the process and its --summary-json document."""

    process: Measured
    summary: dict[str, Any]

    @property
    def requests(self) -> int:
        return int(self.summary.get("requests_sent", self.summary.get("requests", 0)))

    @property
    def requests_per_s(self) -> float:
        return float(self.summary.get("requests_per_s", 0.0))

    @property
    def exit_code(self) -> int:
        return self.process.exit_code


# the PUT path alone, as the cases measured it before batcher read (issue 11): the dataset's status column is the
# target, and nothing is read first
PUT_PATH = ("--status-column", "registration_status", "--no-snapshot")


def run_batcher(dataset: Dataset, url: str, results: Path, *options: str) -> BatcherRun:
    """`batcher run` of the dataset's input against url, its summary read from --summary-json."""
    summary_path = results.with_suffix(".summary.json")
    command = batcher_command(
        "run", str(dataset.input_path), "--base-url", url, "--yes", "--no-progress", "--results", str(results)
    )
    # the daily request count goes to the run's own folder, never the user's: a bench spends thousands of requests
    state = results.parent / "state"
    process = measure(
        [*command, *options, "--state-dir", str(state), "--summary-json", str(summary_path)],
        env={"CTCT_ACCESS_TOKEN": TOKEN},
    )
    if not summary_path.exists():
        raise RuntimeError(f"batcher wrote no summary ({process.exit_code}):\n{process.stderr[-2000:]}")
    return BatcherRun(process, json.loads(summary_path.read_text(encoding="utf-8")))


def outcomes(results: Path) -> Counter[str]:
    table = pa_csv.read_csv(results, convert_options=pa_csv.ConvertOptions(include_columns=["outcome"]))
    return Counter(table.column("outcome").to_pylist())


# ---------------------------------------------------------------------------------------------------- sandboxes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def sandbox_process(registrations: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`batcher sandbox` in its own process on 127.0.0.1; yields its base URL once it accepts connections."""
    port = free_port()
    command = batcher_command("sandbox", "--port", str(port), "--registrations", str(registrations), *options)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        deadline = time.monotonic() + CASE_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the sandbox exited early: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start in time") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v3", process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def arrival_rate(requests: Sequence[sandbox.RecordedRequest]) -> float:
    """Requests per second as the API saw them: (n - 1) over the span from the first arrival to the last, so the
    run's start-up and its last answer's latency do not count; the summary's rate counts them."""
    arrivals = sorted(request.at for request in requests)
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0


def not_canceled(state: sandbox.SandboxState, dataset: Dataset) -> int:
    """Registrations of the dataset the sandbox does not hold as CANCELED."""
    return sum(
        1
        for item in sandbox_rows(dataset)
        if state.status_of(item.event_id, item.track_id, item.registration_id) != "CANCELED"
    )


# ---------------------------------------------------------------------------------------------------- the naive sender


def naive_requests(url: str, dataset: Dataset, *, batch_size: int, limit: int) -> list[tuple[str, str]]:
    """(URL, JSON body) of the first `limit` batches batcher would send for the dataset."""
    loaded = load_input(dataset.input_path, default_status=None)
    return [
        (
            f"{url}/events/{batch.event_id}/tracks/{batch.track_id}/registrations",
            json.dumps({"registration_ids": list(batch.registration_ids), "registration_status": "CANCELED"}),
        )
        for batch in plan_batches(loaded.groups, batch_size=batch_size)[:limit]
    ]


async def send_naively(requests: Sequence[tuple[str, str]], *, concurrency: int) -> Counter[int]:
    """The baseline sender: plain aiohttp, `concurrency` requests at a time (1: wait for each answer), no pacing."""
    statuses: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    queue = iter(requests)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for put_url, body in queue:
                async with session.put(put_url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def timed_naive(requests: Sequence[tuple[str, str]], *, concurrency: int = 1) -> tuple[float, Counter[int]]:
    """(seconds, statuses) of the naive sender pushing these requests."""
    started = time.perf_counter()
    statuses = asyncio.run(send_naively(requests, concurrency=concurrency))
    return time.perf_counter() - started, statuses


def machine() -> str:
    """The OS, CPU model and count, memory and Python version, as far as this system tells them."""
    cpu, memory = platform.processor() or platform.machine(), ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        kilobytes = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f", {kilobytes / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}){memory}, Python {platform.python_version()}"


@dataclass(frozen=True)
class SandboxedRun:
    """A `batcher run` against a sandbox in this process's thread, with what that sandbox saw."""

    run: BatcherRun
    requests: list[sandbox.RecordedRequest]
    not_canceled: int  # registrations of the dataset the sandbox does not hold as CANCELED afterwards

    @property
    def puts(self) -> list[sandbox.RecordedRequest]:
        return [request for request in self.requests if request.method == "PUT"]

    @property
    def reads(self) -> list[sandbox.RecordedRequest]:
        return [request for request in self.requests if request.method == "GET"]

    @property
    def throttled(self) -> int:
        return sum(1 for request in self.requests if request.status == 429)


def run_against_sandbox(dataset: Dataset, scenario: sandbox.Scenario, results: Path, *options: str) -> SandboxedRun:
    """`batcher run` of the dataset against a sandbox served by sandbox.serve_in_thread."""
    with sandbox.serve_in_thread(scenario, sandbox_rows(dataset)) as (url, state):
        run = run_batcher(dataset, url, results, *options)
        return SandboxedRun(run, list(state.requests), not_canceled(state, dataset))

"""`make bench`: batcher's speed against the API's limit, against a naive sender, and on a million rows.

Starts sandboxes on 127.0.0.1, runs every case of issue 5, prints one table (case, figure, target, ratio,
pass/fail) and writes the same figures to JSON (default bench/out/bench.json). Inputs are generated into a
temporary directory that is removed at the end. Every case compares against its ceiling, or against a baseline
measured in the same run, so the ratios hold on a noisy machine. Exit status: 0 when every target is met.

    python bench/run.py [--json PATH] [--only CASE ...] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from batcher import sandbox
from batcher.chunker import plan_batches
from batcher.loader import load_input

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "bench" / "out" / "bench.json"
TOKEN = sandbox.SANDBOX_TOKEN
MILLION = 1_000_000
EVENTS, TRACKS = 50, 4  # 200 (event, track) groups
API_RATE_PER_S = 4.0
CASE_TIMEOUT_S = 240.0  # no single process of the bench may run longer
# plan 1M and the bare read alternate this many times, and results runs as often; the fastest of each counts, so
# that a busy moment (other work on the machine) in one run does not decide a ratio
REPEATS = 5

# A bare process: import pandas and read the file, nothing else. It prints the read_csv call's own seconds.
BARE_READ = """
import sys, time
import pandas as pd
started = time.perf_counter()
pd.read_csv(sys.argv[1], dtype=str, engine="pyarrow")
print(time.perf_counter() - started)
"""

# Times write_results alone for an input whose every batch succeeded; prints the seconds.
WRITE_RESULTS = """
import sys, time
from pathlib import Path
from batcher.chunker import plan_batches
from batcher.loader import load_input
from batcher.models import BatchResult
from batcher.reconciler import reconcile
from batcher.results_file import write_results
loaded = load_input(Path(sys.argv[1]), default_status=None)
batches = plan_batches(loaded.groups, batch_size=500)
rows = reconcile(loaded, batches, [BatchResult(batch.number, 200) for batch in batches])
started = time.perf_counter()
write_results(Path(sys.argv[2]), loaded, rows)
print(time.perf_counter() - started)
"""


# ---------------------------------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the table."""

    case: str
    figure: str
    value: str
    target: str
    ratio: str
    passed: bool


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, dict[str, object]] = field(default_factory=dict)

    def add(self, case: str, figure: str, value: str, target: str, ratio: str, *, passed: bool) -> None:
        self.rows.append(Row(case, figure, value, target, ratio, passed))
        print(f"  {'PASS' if passed else 'FAIL'}  {case}: {figure} = {value} (target {target}, ratio {ratio})")

    def table(self) -> str:
        header = ("case", "figure", "measured", "target", "ratio", "result")
        lines = [[r.case, r.figure, r.value, r.target, r.ratio, "pass" if r.passed else "FAIL"] for r in self.rows]
        widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
        out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
        out.append("| " + " | ".join("-" * w for w in widths) + " |")
        out.extend("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines)
        return "\n".join(out)


# ---------------------------------------------------------------------------------------------------- inputs


def uuids(rng: np.random.Generator, count: int) -> pa.Array:
    """count random version-4 UUIDs as strings, built with array operations."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    digits = np.empty((count, 32), dtype=np.uint8)
    digits[:, 0::2] = hex_digits[raw >> 4]
    digits[:, 1::2] = hex_digits[raw & 0x0F]
    text = np.full((count, 36), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at : at + stop - start] = digits[:, start:stop]
    return pa.array(text.reshape(-1).view("S36"), type=pa.binary(36)).cast(pa.string())


def track_keys(count: int) -> list[str]:
    return [f"trk{number}x" for number in range(count)]


@dataclass(frozen=True)
class Dataset:
    input_path: Path
    registrations_path: Path
    rows: int
    group_sizes: list[int]  # distinct registrations per (event, track), in group order


def write_dataset(
    directory: Path,
    name: str,
    group_sizes: Sequence[int],
    *,
    seed: int,
    extra_columns: bool = True,
    duplicates: int = 0,
) -> Dataset:
    """An input CSV whose (event, track) group g holds group_sizes[g] registrations, rows shuffled, every one
    CANCELED; plus the sandbox's registrations file (all REGISTERED). duplicates: exact repeats appended."""
    rng = np.random.default_rng(seed)
    groups = len(group_sizes)
    events = uuids(rng, math.ceil(groups / TRACKS)).to_numpy(zero_copy_only=False)
    tracks = np.array(track_keys(TRACKS), dtype=object)
    base_group = np.repeat(np.arange(groups), group_sizes)
    count = len(base_group)
    base_registration = uuids(rng, count).to_numpy(zero_copy_only=False)
    order = rng.permutation(count)
    if duplicates:
        order = rng.permutation(np.concatenate([order, rng.choice(count, size=duplicates, replace=False)]))
    group_of_row, registration = base_group[order], base_registration[order]
    columns: dict[str, pa.Array] = {
        "event_id": pa.array(events[group_of_row // TRACKS], type=pa.string()),
        "track_id": pa.array(tracks[group_of_row % TRACKS], type=pa.string()),
        "registration_id": pa.array(registration, type=pa.string()),
        "registration_status": pa.array(np.full(len(order), "CANCELED", dtype=object), type=pa.string()),
    }
    if extra_columns:
        first = np.array(["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken"], dtype=object)
        last = np.array(["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"], object)
        names = np.array([f"Event {number}" for number in range(len(events))], dtype=object)
        person = order % len(first)
        columns["event_name"] = pa.array(names[group_of_row // TRACKS], type=pa.string())
        columns["first_name"] = pa.array(first[person], type=pa.string())
        columns["last_name"] = pa.array(last[(order // len(first)) % len(last)], type=pa.string())
        columns["email"] = pa.array([f"guest{number}@example.com" for number in order.tolist()], type=pa.string())
    input_path = directory / f"{name}.csv"
    _write_csv(pa.table(columns), input_path)
    known = pa.table(
        {
            "event_id": pa.array(events[base_group // TRACKS], type=pa.string()),
            "track_id": pa.array(tracks[base_group % TRACKS], type=pa.string()),
            "registration_id": pa.array(base_registration, type=pa.string()),
            "registration_status": pa.array(np.full(count, "REGISTERED", dtype=object), type=pa.string()),
        }
    )
    registrations_path = directory / f"{name}.registrations.csv"
    _write_csv(known, registrations_path)
    return Dataset(input_path, registrations_path, len(order), list(group_sizes))


def _write_csv(table: pa.Table, path: Path) -> None:
    # plain values only (UUIDs, words, e-mail addresses): nothing needs quoting
    pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="none"))


def sandbox_rows(dataset: Dataset) -> list[tuple[str, str, str, str]]:
    return sandbox.read_registrations(dataset.registrations_path)


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


def batcher_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "batcher", *args]


def run_batcher(dataset: Dataset, url: str, results: Path, *options: str) -> Measured:
    command = batcher_command(
        "run", str(dataset.input_path), "--base-url", url, "--yes", "--no-progress", "--results", str(results)
    )
    # the daily request count goes to the run's own folder, never the user's: a bench spends thousands of requests
    state = results.parent / "state"
    return measure([*command, *options, "--state-dir", str(state)], env={"CTCT_ACCESS_TOKEN": TOKEN})


SUMMARY_LINE = re.compile(r"batcher: (\d+) requests in .*?\(([\d.]+) requests/s\)")


def summary_rate(stderr: str) -> tuple[int, float]:
    """(requests, requests/s) from batcher's summary line 'batcher: N requests in T (R requests/s)...'."""
    for line in stderr.splitlines():
        found = SUMMARY_LINE.search(line)
        if found:
            return int(found.group(1)), float(found.group(2))
    raise RuntimeError(f"no summary line in batcher's output:\n{stderr[-2000:]}")


def outcomes(results: Path) -> Counter[str]:
    table = pa_csv.read_csv(results, convert_options=pa_csv.ConvertOptions(include_columns=["outcome"]))
    return Counter(table.column("outcome").to_pylist())


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


class ThreadSandbox:
    """A sandbox application served from a thread of this process, so its records can be read afterwards."""

    def __init__(self, scenario: sandbox.Scenario, registrations: Sequence[tuple[str, str, str, str]]) -> None:
        self.app = sandbox.make_app(scenario, registrations)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._finished: asyncio.Event | None = None
        self.url = ""
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._finished = asyncio.Event()
        async with sandbox.running(self.app) as url:
            self.url = url
            self._ready.set()
            await self._finished.wait()

    def __enter__(self) -> ThreadSandbox:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the in-process sandbox did not start")
        return self

    def __exit__(self, *_: object) -> None:
        if self._finished is not None:
            self._loop.call_soon_threadsafe(self._finished.set)
        self._thread.join(30)
        self._loop.close()

    @property
    def puts(self) -> list[sandbox.RecordedRequest]:
        return self.app[sandbox.STATE].puts

    def arrival_rate(self) -> float:
        """PUTs per second as the API saw them: (n - 1) over the span from the first arrival to the last, so the
        run's start-up and its last answer's latency do not count; the summary line's rate counts them."""
        arrivals = sorted(request.at for request in self.puts)
        return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0

    def unchanged(self, dataset: Dataset) -> int:
        """Registrations of the dataset the sandbox still holds as REGISTERED."""
        state = self.app[sandbox.STATE]
        return sum(
            1
            for event_id, track_id, registration_id, _ in sandbox_rows(dataset)
            if state.status_of(event_id, track_id, registration_id) != "CANCELED"
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


# ---------------------------------------------------------------------------------------------------- cases


def pacing(report: Report, work: Path) -> None:
    """Default options against a sandbox that allows 4 requests in any one second and answers in 50-400 ms."""
    dataset = write_dataset(work, "pacing", [2000] * 10, seed=1, extra_columns=False)  # 200 requests of 100
    scenario = sandbox.Scenario(rate_limit_per_s=4, latency_s=(0.05, 0.4), seed=1)
    with ThreadSandbox(scenario, sandbox_rows(dataset)) as box:
        run = run_batcher(dataset, box.url, work / "pacing.results.csv")
        requests, rate = summary_rate(run.stderr)
        throttled = sum(1 for request in box.puts if request.status == 429)
        arrivals = box.arrival_rate()
    report.figures["pacing"] = {
        "requests": requests,
        "arrival_rate_per_s": arrivals,
        "summary_rate_per_s": rate,
        "http_429": throttled,
        "exit_code": run.exit_code,
        "wall_s": run.wall_s,
    }
    ratio = arrivals / API_RATE_PER_S
    report.add(
        "pacing",
        "requests/s ÷ 4",
        f"{arrivals:.3f}/s over {requests} requests (summary line: {rate:.2f}/s)",
        ">= 0.97",
        f"{ratio:.3f}",
        passed=ratio >= 0.97 and run.exit_code == 0,
    )
    report.add("pacing", "429 answers", str(throttled), "0", "-", passed=throttled == 0)


def latency_hiding(report: Report, work: Path) -> None:
    """As pacing, with answers taking 800-1200 ms; against a sender that waits for each answer."""
    dataset = write_dataset(work, "latency", [2000] * 10, seed=2, extra_columns=False)
    scenario = sandbox.Scenario(rate_limit_per_s=4, latency_s=(0.8, 1.2), seed=2)
    with ThreadSandbox(scenario, sandbox_rows(dataset)) as box:
        run = run_batcher(dataset, box.url, work / "latency.results.csv")
        requests, rate = summary_rate(run.stderr)
        throttled = sum(1 for request in box.puts if request.status == 429)
        arrivals = box.arrival_rate()
    sample = 30  # the sequential sender's rate is steady; 30 requests measure it well
    scenario = sandbox.Scenario(rate_limit_per_s=4, latency_s=(0.8, 1.2), seed=3)
    with ThreadSandbox(scenario, sandbox_rows(dataset)) as box:
        seconds, statuses = timed_naive(naive_requests(box.url, dataset, batch_size=100, limit=sample))
        sequential = box.arrival_rate()
    report.figures["latency_hiding"] = {
        "requests": requests,
        "arrival_rate_per_s": arrivals,
        "summary_rate_per_s": rate,
        "http_429": throttled,
        "sequential_requests": sample,
        "sequential_arrival_rate_per_s": sequential,
        "sequential_requests_per_s": sample / seconds,
        "sequential_statuses": dict(statuses),
        "exit_code": run.exit_code,
    }
    ratio = arrivals / API_RATE_PER_S
    report.add(
        "latency hiding",
        "requests/s ÷ 4",
        f"{arrivals:.3f}/s over {requests} requests, {throttled} x 429 (summary line: {rate:.2f}/s)",
        ">= 0.95",
        f"{ratio:.3f}",
        passed=ratio >= 0.95 and run.exit_code == 0 and throttled == 0,
    )
    report.add(
        "latency hiding",
        "÷ sequential sender",
        f"{arrivals:.2f}/s vs {sequential:.2f}/s",
        ">= 3.0x",
        f"{arrivals / sequential:.2f}x",
        passed=arrivals / sequential >= 3.0,
    )


def request_economy(report: Report, work: Path) -> None:
    """50 events x 4 tracks of uneven sizes, rows shuffled, a few exact repeats; batch 100."""
    rng = np.random.default_rng(4)
    sizes = [1, 99, 100, 101, 199, 200, 201, 1000, *rng.integers(1, 700, size=EVENTS * TRACKS - 8).tolist()]
    dataset = write_dataset(work, "economy", sizes, seed=4, duplicates=500)
    optimal = sum(-(-size // 100) for size in sizes)
    with ThreadSandbox(sandbox.Scenario(rate_limit_per_s=None), sandbox_rows(dataset)) as box:
        run = run_batcher(dataset, box.url, work / "economy.results.csv", "--rate", "1000", "--concurrency", "8")
        puts = len(box.puts)
        unchanged = box.unchanged(dataset)
    counts = outcomes(work / "economy.results.csv")
    report.figures["request_economy"] = {
        "rows": dataset.rows,
        "groups": len(sizes),
        "puts": puts,
        "optimal": optimal,
        "outcomes": dict(counts),
        "exit_code": run.exit_code,
        "unchanged_registrations": unchanged,
    }
    ok = run.exit_code == 0 and unchanged == 0
    report.add(
        "request economy",
        "PUTs ÷ sum of ceil(group/100)",
        f"{puts} / {optimal}",
        "= 1.00",
        f"{puts / optimal:.2f}",
        passed=puts == optimal and ok,
    )


def plan_million(report: Report, work: Path, million: Dataset) -> dict[str, float]:
    """`batcher plan` over a million rows as a whole process, against a bare pandas read of the same file."""
    bare_runs: list[Measured] = []
    plan_runs: list[Measured] = []
    for _ in range(REPEATS):
        bare_runs.append(measure([sys.executable, "-c", BARE_READ, str(million.input_path)]))
        plan_runs.append(
            measure(
                batcher_command(
                    "plan", str(million.input_path), "--state-dir", str(million.input_path.parent / "state")
                )
            )
        )
    for run in (*bare_runs, *plan_runs):
        if run.exit_code != 0:
            raise RuntimeError(f"a plan 1M process failed ({run.exit_code}):\n{run.stderr[-2000:]}")
    bare = min(run.wall_s for run in bare_runs)
    bare_call = min(float(run.stdout.strip()) for run in bare_runs)
    plan = min(run.wall_s for run in plan_runs)
    plan_rss = max(run.peak_rss_bytes for run in plan_runs)
    bare_rss = max(run.peak_rss_bytes for run in bare_runs)
    report.figures["plan_1m"] = {
        "plan_wall_s": [run.wall_s for run in plan_runs],
        "bare_wall_s": [run.wall_s for run in bare_runs],
        "bare_read_call_s": [float(run.stdout.strip()) for run in bare_runs],
        "plan_peak_rss_bytes": plan_rss,
        "bare_peak_rss_bytes": bare_rss,
    }
    report.add(
        "plan 1M",
        "wall s ÷ bare read process",
        f"{plan:.2f} s vs {bare:.2f} s",
        "<= 3.0x",
        f"{plan / bare:.2f}x",
        passed=plan / bare <= 3.0,
    )
    report.add(
        "plan 1M",
        "peak RSS",
        f"{plan_rss / 2**20:.0f} MiB (bare {bare_rss / 2**20:.0f} MiB)",
        "<= 1024 MiB",
        f"{plan_rss / 2**30:.2f} of 1 GiB",
        passed=plan_rss <= 2**30,
    )
    return {"bare_s": bare, "bare_call_s": bare_call}


def run_million(report: Report, work: Path, million: Dataset) -> None:
    """`batcher run` over a million rows, batch 500, against a sandbox process with no limit and no latency."""
    with sandbox_process(million.registrations_path, "--rate-limit", "0") as (url, _):
        run = run_batcher(
            million, url, work / "million.results.csv", "--rate", "1000", "--concurrency", "8", "--batch-size", "500"
        )
    requests, rate = summary_rate(run.stderr)
    counts = outcomes(work / "million.results.csv")
    rows_per_s = million.rows / run.wall_s
    report.figures["run_1m"] = {
        "wall_s": run.wall_s,
        "rows_per_s": rows_per_s,
        "peak_rss_bytes": run.peak_rss_bytes,
        "requests": requests,
        "requests_per_s": rate,
        "outcomes": dict(counts),
        "exit_code": run.exit_code,
    }
    succeeded = counts.get("succeeded", 0) == million.rows and run.exit_code == 0
    report.add(
        "run 1M",
        "rows/s end to end",
        f"{rows_per_s:,.0f} ({run.wall_s:.2f} s, {requests} requests)",
        ">= 100,000",
        f"{rows_per_s / 100_000:.2f}",
        passed=rows_per_s >= 100_000 and succeeded,
    )
    report.add(
        "run 1M",
        "peak RSS",
        f"{run.peak_rss_bytes / 2**20:.0f} MiB",
        "<= 1536 MiB",
        f"{run.peak_rss_bytes / 2**30 / 1.5:.2f} of 1.5 GiB",
        passed=run.peak_rss_bytes <= 1.5 * 2**30,
    )


def results_file(report: Report, work: Path, million: Dataset, bare: dict[str, float]) -> None:
    """write_results alone for a million rows, in a fresh process, against the bare read of plan 1M."""
    runs = [
        measure([sys.executable, "-c", WRITE_RESULTS, str(million.input_path), str(work / "written.results.csv")])
        for _ in range(REPEATS)
    ]
    for run in runs:
        if run.exit_code != 0:
            raise RuntimeError(f"the results writer failed:\n{run.stderr[-2000:]}")
    seconds = min(float(run.stdout.strip()) for run in runs)
    report.figures["results"] = {
        "write_s": [float(run.stdout.strip()) for run in runs],
        "bare_read_process_s": bare["bare_s"],
        "bare_read_call_s": bare["bare_call_s"],
    }
    ratio = seconds / bare["bare_s"]
    report.add(
        "results",
        "write s ÷ bare read process",
        f"{seconds:.2f} s vs {bare['bare_s']:.2f} s",
        "<= 2.0x",
        f"{ratio:.2f}x",
        passed=ratio <= 2.0,
    )


def faults(report: Report, work: Path) -> None:
    """20,000 rows in batches of 20 against a sandbox allowing 100/s that fails 10% of PUTs with a 5xx."""
    dataset = write_dataset(work, "faults", [100] * (EVENTS * TRACKS), seed=6, extra_columns=False)
    scenario = sandbox.Scenario(rate_limit_per_s=100, error_rate=0.1, seed=6)
    with ThreadSandbox(scenario, sandbox_rows(dataset)) as box:
        run = run_batcher(dataset, box.url, work / "faults.results.csv", "--rate", "90", "--batch-size", "20")
        statuses = Counter(request.status for request in box.puts)
        unchanged = box.unchanged(dataset)
        arrivals = box.arrival_rate()
    requests, rate = summary_rate(run.stderr)
    counts = outcomes(work / "faults.results.csv")
    lost = dataset.rows - counts.get("succeeded", 0)
    report.figures["faults"] = {
        "requests": requests,
        "arrival_rate_per_s": arrivals,
        "summary_rate_per_s": rate,
        "statuses": {str(status): count for status, count in statuses.items()},
        "outcomes": dict(counts),
        "unchanged_registrations": unchanged,
        "exit_code": run.exit_code,
    }
    ratio = arrivals / 90
    errors = statuses.get(500, 0) + statuses.get(503, 0)
    report.add(
        "faults",
        "requests/s ÷ 90",
        f"{arrivals:.1f}/s over {requests} requests, {errors} x 5xx, {statuses.get(429, 0)} x 429",
        ">= 0.8",
        f"{ratio:.3f}",
        passed=ratio >= 0.8,
    )
    report.add(
        "faults",
        "rows lost",
        f"{lost} (sandbox: {unchanged} unchanged)",
        "0",
        "-",
        passed=lost == 0 and unchanged == 0 and run.exit_code == 0,
    )


def sandbox_alone(report: Report, million: Dataset) -> None:
    """The sandbox process by itself: how many 500-ID PUTs per second it answers, 8 at a time."""
    count = 2000
    with sandbox_process(million.registrations_path, "--rate-limit", "0") as (url, _):
        seconds, statuses = timed_naive(naive_requests(url, million, batch_size=500, limit=count), concurrency=8)
    rate = count / seconds
    report.figures["sandbox_alone"] = {"requests": count, "requests_per_s": rate, "statuses": dict(statuses)}
    report.add(
        "sandbox alone",
        "500-ID PUTs/s, 8 in flight",
        f"{rate:,.0f}/s",
        ">= 1,000/s (run 1M's --rate)",
        f"{rate / 1000:.2f}",
        passed=rate >= 1000 and statuses == Counter({200: count}),
    )


# ---------------------------------------------------------------------------------------------------- main


CASES = ("pacing", "latency", "economy", "plan", "run", "results", "faults", "sandbox")


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the figures ({DEFAULT_JSON})")
    parser.add_argument("--only", nargs="*", choices=CASES, default=list(CASES), help="run only these cases")
    parser.add_argument("--keep", action="store_true", help="keep the generated inputs (the folder is printed)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = Report()
    print(f"batcher bench on {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="batcher-bench-") as folder:
        work = Path(folder)
        steps: list[tuple[str, Callable[[], object]]] = []
        million: list[Dataset] = []
        bare: dict[str, float] = {}

        def the_million() -> Dataset:
            if not million:
                print("generating 1,000,000 rows ...", flush=True)
                million.append(
                    write_dataset(work, "million", [MILLION // (EVENTS * TRACKS)] * (EVENTS * TRACKS), seed=5)
                )
            return million[0]

        def plan_case() -> None:
            bare.update(plan_million(report, work, the_million()))

        def results_case() -> None:
            if not bare:
                plan_case()
            results_file(report, work, the_million(), bare)

        steps = [
            ("pacing", lambda: pacing(report, work)),
            ("latency", lambda: latency_hiding(report, work)),
            ("economy", lambda: request_economy(report, work)),
            ("plan", plan_case),
            ("run", lambda: run_million(report, work, the_million())),
            ("results", results_case),
            ("faults", lambda: faults(report, work)),
            ("sandbox", lambda: sandbox_alone(report, the_million())),
        ]
        for name, step in steps:
            if name in args.only:
                print(f"[{time.perf_counter() - started:6.1f} s] {name}", flush=True)
                step()
        if args.keep:
            kept = Path(tempfile.mkdtemp(prefix="batcher-bench-kept-"))
            for path in work.iterdir():
                path.rename(kept / path.name)
            print(f"inputs kept in {kept}")
    elapsed = time.perf_counter() - started
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\nbatcher bench, {stamp}, {machine()}, {elapsed:.0f} s\n")
    print(report.table())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "date": stamp,
                "machine": machine(),
                "elapsed_s": elapsed,
                "rows": [asdict(row) for row in report.rows],
                "figures": report.figures,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nfigures written to {args.json}")
    return 0 if all(row.passed for row in report.rows) else 1


if __name__ == "__main__":
    sys.exit(main())

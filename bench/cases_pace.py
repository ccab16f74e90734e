"""The bench's pace cases (issue 19): how fast a run is back to full pace after a burst of 429s, and whether two runs
on one API key, back to back, the second with --verify, stay inside a strict 4-per-second window.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from datasets import Dataset, sandbox_rows, write_dataset
from harness import API_RATE_PER_S, PUT_PATH, BatcherRun, Report, not_canceled, run_batcher

from batcher.sandbox import app as sandbox

THROTTLED_ARRIVALS = frozenset({4, 5, 6})  # the night: the API's 4th, 5th and 6th requests answer 429
RETRY_AFTER_S = 2.0
FIRST_PUTS = 20  # the first of the back-to-back runs: 400 rows in batches of 20
FIRST_LEFT = 12  # the second run starts when the first has this many requests (3 s) left to send


def paused_s(throttled_at: list[float], retry_after_s: float) -> float:
    """The time covered by the pauses the 429s asked for (each from its arrival, overlaps counted once)."""
    covered, end = 0.0, float("-inf")
    for start in sorted(throttled_at):
        stop = start + retry_after_s
        covered += max(0.0, stop - max(start, end))
        end = max(end, stop)
    return covered


def throttle_recovery(report: Report, work: Path) -> None:
    """2,400 rows over two tracks with reads on (about 75 requests), the 4th, 5th and 6th answered 429 with
    Retry-After: 2, the API allowing 4 in any second: the arrival span against N requests at 4/s plus the pause."""
    dataset = write_dataset(work, "throttle", [1200, 1200], seed=19, extra_columns=False)
    scenario = sandbox.Scenario(
        rate_limit_per_s=4,
        latency_s=(0.05, 0.2),
        max_page_size=50,
        throttled_arrivals=THROTTLED_ARRIVALS,
        retry_after=f"{RETRY_AFTER_S:g}",
        seed=19,
    )
    with sandbox.serve_in_thread(scenario, sandbox_rows(dataset)) as (url, state):
        run = run_batcher(dataset, url, work / "throttle.results.csv", "--status", "CANCELED")
        requests = list(state.requests)
        left = not_canceled(state, dataset)
    arrivals = sorted(request.at for request in requests)
    throttled = [request.at for request in requests if request.status == 429]
    span = arrivals[-1] - arrivals[0]
    pause = paused_s(throttled, RETRY_AFTER_S)
    ideal = (len(arrivals) - 1) / API_RATE_PER_S + pause
    ratio = ideal / span if span else 0.0
    report.figures["throttle_recovery"] = {
        "requests": len(arrivals),
        "http_429": len(throttled),
        "span_s": span,
        "paused_s": pause,
        "ideal_s": ideal,
        "ratio": ratio,
        "exit_code": run.exit_code,
        "unchanged_registrations": left,
    }
    report.add(
        "throttle recovery",
        "(N/4 + pause) ÷ run time",
        f"{span:.1f} s for {len(arrivals)} requests, {len(throttled)} x 429, {pause:.1f} s asked (ideal {ideal:.1f} s)",
        ">= 0.85",
        f"{ratio:.3f}",
        passed=ratio >= 0.85 and run.exit_code == 0 and left == 0,
    )


def halves(dataset: Dataset, work: Path) -> tuple[Path, Path]:
    """The dataset's input split in two files of about half the rows each."""
    header, *lines = dataset.input_path.read_text(encoding="utf-8").splitlines(keepends=True)
    middle = len(lines) // 2
    first, second = work / "back_to_back.first.csv", work / "back_to_back.second.csv"
    first.write_text(header + "".join(lines[:middle]), encoding="utf-8")
    second.write_text(header + "".join(lines[middle:]), encoding="utf-8")
    return first, second


def back_to_back(report: Report, work: Path) -> None:
    """Two runs on one API key (one state folder) against a strict 4-per-second window, the second verifying its
    results. The second is started while the first still has its last few seconds of requests to send (FIRST_LEFT),
    so that, whatever this machine's start-up time, the second's first requests meet the first's last ones in one
    second, as they do on a quick machine run back to back: how many 429s the pace earns."""
    dataset = write_dataset(work, "back_to_back", [400, 400], seed=20, extra_columns=False)
    first, second = halves(dataset, work)
    scenario = sandbox.Scenario(rate_limit_per_s=4, latency_s=(0.05, 0.2), max_page_size=50, seed=20)
    runs: dict[int, BatcherRun] = {}

    def start(number: int, path: Path, *extra: str) -> None:
        results = work / f"back_to_back.{number}.results.csv"
        runs[number] = run_batcher(Dataset(path, dataset.registrations_path, 0, []), url, results, *extra)

    with sandbox.serve_in_thread(scenario, sandbox_rows(dataset)) as (url, state):
        earlier = threading.Thread(target=start, args=(1, first, *PUT_PATH, "--batch-size", "20"))
        earlier.start()  # 400 rows in 20 PUTs: 5 s at 4/s
        while state.arrived < FIRST_PUTS - FIRST_LEFT and earlier.is_alive():
            time.sleep(0.01)
        start(2, second, *PUT_PATH, "--verify")
        earlier.join()
        requests = list(state.requests)
        left = not_canceled(state, dataset)
    throttled = sum(1 for request in requests if request.status == 429)
    codes = [runs[number].exit_code for number in sorted(runs)]
    report.figures["back_to_back"] = {
        "requests": len(requests),
        "reads": sum(1 for request in requests if request.method == "GET"),
        "http_429": throttled,
        "exit_codes": codes,
        "unchanged_registrations": left,
    }
    report.add(
        "back to back",
        "429 answers, 2 runs + --verify at 4/s",
        f"{throttled} in {len(requests)} requests (exit codes {codes})",
        "0",
        "-",
        passed=throttled == 0 and codes == [0, 0] and left == 0,
    )

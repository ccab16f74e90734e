"""`make bench`: batcher's speed against the API's limit, against a naive sender, on a million rows and at start-up.

Starts sandboxes on 127.0.0.1, runs every case, prints one table (case, figure, target, ratio, pass/fail) and writes
the same figures to JSON (default bench/out/bench.json). Inputs are generated into a temporary directory that is
removed at the end. Every case compares against its ceiling, or against a baseline measured in the same run, so the
ratios hold on a noisy machine. Exit status: 0 when every target is met (a skipped case counts as met).

    python bench/run.py [--json PATH] [--only CASE ...] [--keep]

The pieces: datasets.py (generated inputs), harness.py (measured processes, sandboxes, the naive sender, the table),
cases.py (against the API's limit), cases_pace.py (429 recovery, one pace per key) and cases_scale.py (a million
rows, start-up).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import cases
import cases_pace
import cases_scale
from datasets import Dataset, million_dataset
from harness import ROOT, Report, machine

DEFAULT_JSON = ROOT / "bench" / "out" / "bench.json"
CASES = (
    "startup",
    "pacing",
    "throttle",
    "back-to-back",
    "latency",
    "economy",
    "reads",
    "read-economy",
    "plan",
    "run",
    "results",
    "faults",
    "sandbox",
)


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
        million: list[Dataset] = []
        bare: dict[str, float] = {}

        def the_million() -> Dataset:
            if not million:
                print("generating 1,000,000 rows ...", flush=True)
                million.append(million_dataset(work))
            return million[0]

        def plan_case() -> None:
            bare.update(cases_scale.plan_million(report, work, the_million()))

        def results_case() -> None:
            if not bare:
                plan_case()
            cases_scale.results_file(report, work, the_million(), bare)

        steps: list[tuple[str, Callable[[], object]]] = [
            ("startup", lambda: cases_scale.startup(report, work)),
            ("pacing", lambda: cases.pacing(report, work)),
            ("throttle", lambda: cases_pace.throttle_recovery(report, work)),
            ("back-to-back", lambda: cases_pace.back_to_back(report, work)),
            ("latency", lambda: cases.latency_hiding(report, work)),
            ("economy", lambda: cases.request_economy(report, work)),
            ("reads", lambda: cases.reads_at_the_ceiling(report, work)),
            ("read-economy", lambda: cases.read_economy(report, work)),
            ("plan", plan_case),
            ("run", lambda: cases_scale.run_million(report, work, the_million())),
            ("results", results_case),
            ("faults", lambda: cases.faults(report, work)),
            ("sandbox", lambda: cases.sandbox_alone(report, the_million())),
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
    document = {
        "date": stamp,
        "machine": machine(),
        "elapsed_s": elapsed,
        "rows": [asdict(row) for row in report.rows],
        "figures": report.figures,
    }
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())

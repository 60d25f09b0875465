"""Benchmark: generate a synthetic CRM and ingest it, side by side in one run.

    python benchmarks/bench_pipeline.py --activities 1000000

Machines here are shared and noisy, so compare the ratios between the rows of one run, not the
seconds between runs. Each stage runs in this process one after the other; peak memory is the
process's maximum resident set so far.
"""

import argparse
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path

from relanalytics_pipeline.lib.canonical import LOAD_ORDER
from relanalytics_pipeline.lib.generator import generate_dataset
from relanalytics_pipeline.lib.ingest import ingest_entity


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--formats", default="parquet,csv,jsonl")
    args = parser.parse_args()
    as_of = dt.date(2026, 3, 31)
    timings: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        for fmt in args.formats.split(","):
            out = Path(folder) / fmt
            started = time.perf_counter()
            counts = generate_dataset(out, args.activities, seed=1, as_of=as_of, fmt=fmt)
            timings.append((f"generate {fmt}", time.perf_counter() - started, peak_gib()))
        parties = counts["activity_parties"]
        first = args.formats.split(",")[0]
        started = time.perf_counter()
        for entity in LOAD_ORDER:
            ingest_entity(Path(folder) / "w.duckdb", Path(folder) / first, entity, run_id="bench")
        timings.append((f"ingest {first}", time.perf_counter() - started, peak_gib()))
    base = timings[0][1]
    print(f"{args.activities:,} activities, {parties:,} party rows")
    print(f"{'stage':<18}{'seconds':>10}{'ratio':>8}{'peak GiB':>10}")
    for name, seconds, peak in timings:
        print(f"{name:<18}{seconds:>10.1f}{seconds / base:>8.2f}{peak:>10.2f}")


if __name__ == "__main__":
    main()

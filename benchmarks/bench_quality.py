"""Benchmark: the ingest's great-expectations checks beside the ingest itself, in one run.

    python benchmarks/bench_quality.py --activities 1000000

Generates a synthetic CRM (Parquet), ingests every entity into an empty warehouse (a first load:
every row is new, the worst case for checks that validate the run's new rows), then reads those
rows and validates them against `expectations/crm/*.json` as the ingest step does (a sample of at
most SAMPLE_LIMIT rows per entity). Prints seconds and peak memory of each stage; compare the
ratios, not seconds across runs (shared machines).
"""

import argparse
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path

from relanalytics_pipeline.cli.generator import generate_dataset
from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.defs.quality.suites import suites, validate_new_rows
from relanalytics_pipeline.raw_contract import LOAD_ORDER
from relanalytics_pipeline.warehouse import connect


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activities", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        landing, warehouse = Path(folder) / "landing", Path(folder) / "w.duckdb"
        generate_dataset(landing, args.activities, seed=1, as_of=dt.date(2026, 3, 31))
        stages = []
        started = time.perf_counter()
        for entity in LOAD_ORDER:
            ingest_entity(warehouse, landing, entity, run_id="bench")
        stages.append(("ingest, every entity", time.perf_counter() - started, peak_gib()))
        started = time.perf_counter()
        import great_expectations  # noqa: F401  (its import, ~6 s, is a stage of its own)

        stages.append(("import great_expectations", time.perf_counter() - started, peak_gib()))
        started = time.perf_counter()
        with connect(warehouse, read_only=True) as connection:
            outcomes = [validate_new_rows(connection, s, "bench") for s in suites("crm")]
        rows = sum(o.rows for o in outcomes)
        new = sum(o.sampled_from or o.rows for o in outcomes)
        stages.append(
            (f"check {rows:,} of {new:,} new rows", time.perf_counter() - started, peak_gib())
        )
    for outcome in outcomes:
        print(outcome.summary())
    ingest = stages[0][1]
    print(f"{args.activities:,} activities")
    print(f"{'stage':<40}{'seconds':>10}{'x ingest':>10}{'peak GiB':>10}")
    for name, seconds, peak in stages:
        print(f"{name:<40}{seconds:>10.1f}{seconds / ingest:>10.2f}{peak:>10.2f}")


if __name__ == "__main__":
    main()

"""Benchmark: the whole pipeline against a one-pass DuckDB yardstick, side by side in one run.

    python benchmarks/bench_pipeline.py --activities 1000000 [--activities 10000000]

For each size: generate a synthetic CRM (Parquet), materialize everything from an empty warehouse
with `dagster asset materialize --select '*'` (ingest, dbt build with its tests), then compute
relationship_kpis in one hand-written DuckDB pass straight from the files (the yardstick, which
the tests use as their second method: tests/support/second_method.py) and count the rows where
the two disagree. Wall time and peak memory are per child process (`os.wait4`), so the figures of
one run sit side by side; machines here are shared and noisy, so compare the ratios, not seconds
across runs.
"""

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relanalytics_pipeline.settings import DEFAULT_MEMORY_LIMIT

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 3, 31)
STEP = re.compile(r'Finished execution of step "(\w+)" in (?:(\d+)m)?([0-9.]+)(ms|s)')
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak GiB (the child and what it waited for) and output of a command."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command[:4])} failed:\n{output[-3000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 2**20, ANSI.sub("", output)


def step_seconds(output: str) -> dict[str, float]:
    """Seconds of each step, from the lines Dagster logs when a step finishes."""
    return {
        step: int(minutes or 0) * 60 + float(value) / (1000 if unit == "ms" else 1)
        for step, minutes, value, unit in STEP.findall(output)
    }


def bench(activities: int, folder: Path) -> list[tuple[str, float, float]]:
    python, bin_dir = sys.executable, Path(sys.executable).parent
    landing, home = folder / "landing", folder / "home"
    # A temporary Dagster instance (no DAGSTER_HOME): nothing of the run outlives the benchmark.
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {"RELANALYTICS_HOME": str(home), "RELANALYTICS_LANDING_DIR": str(landing),
            "RELANALYTICS_AS_OF": AS_OF.isoformat()}  # fmt: skip
    rows = []
    seconds, peak, _ = timed(
        [str(bin_dir / "relanalytics"), "generate", "--activities", str(activities), "--out",
         str(landing), "--seed", "1", "--as-of", AS_OF.isoformat()], env,
    )  # fmt: skip
    rows.append(("generate", seconds, peak))
    seconds, peak, output = timed(
        [str(bin_dir / "dagster"), "asset", "materialize", "-m", "relanalytics_pipeline.definitions",
         "--select", "*", "--partition", AS_OF.isoformat()], env,
    )  # fmt: skip
    rows.append(("pipeline, all assets", seconds, peak))
    for step, seconds in step_seconds(output).items():
        rows.append((f"  step {step}", seconds, float("nan")))
    end = (AS_OF + dt.timedelta(days=1)).isoformat()
    code = (
        "import sys, duckdb; sys.path.insert(0, 'tests'); from support import second_method; "
        f"c = duckdb.connect(config={{'memory_limit': {DEFAULT_MEMORY_LIMIT!r}}}); "
        f"second_method.run(c, {str(landing)!r}, {end!r}); "
        f"print('MISMATCHES', second_method.compare(c, {str(home / 'warehouse.duckdb')!r}))"
    )
    seconds, peak, output = timed([python, "-c", code], env)
    rows.append(("yardstick (one DuckDB pass)", seconds, peak))
    mismatches = output.split("MISMATCHES")[-1].strip()
    print(
        f"\n{activities:,} activities; rows of relationship_kpis differing from the yardstick: {mismatches}"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activities", type=int, action="append", help="repeat for several sizes")
    args = parser.parse_args()
    for activities in args.activities or [1_000_000]:
        with tempfile.TemporaryDirectory() as folder:
            rows = bench(activities, Path(folder))
        yardstick = next(seconds for name, seconds, _ in rows if name.startswith("yardstick"))
        print(f"{'stage':<30}{'seconds':>10}{'x yardstick':>13}{'peak GiB':>10}")
        for name, seconds, peak in rows:
            print(f"{name:<30}{seconds:>10.1f}{seconds / yardstick:>13.2f}{peak:>10.2f}")


if __name__ == "__main__":
    main()

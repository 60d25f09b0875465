"""Benchmark: the full refresh against the yardstick, side by side in one run.

    python benchmarks/bench_pipeline.py --activities 1000000 [--activities 10000000]

For each size: generate a synthetic CRM (Parquet) whose history ends on D; run the full refresh as
a user runs it, `dagster asset materialize --select '*'` as of D from an empty warehouse (Dagster's
start-up, ingest with its checks, dbt with its tests, the model, publication); then the yardstick
(tests/support/yardstick.py: every mart but the model's, hand-written, in one DuckDB connection
straight from the same files, with the pipeline's memory limit) and count, per mart, the rows on
which the two disagree (EXCEPT ALL both ways, doubles to 9 significant digits). Printed: each one's
wall time and the ratio, peak memory (`os.wait4` of the pipeline's process; the yardstick's own
process before it compares), peak spill (the DuckDB temporary directories' size, sampled every
0.2 s) and the pipeline's seconds per step. The machine is shared and noisy: compare the ratios
within one run, not seconds across runs.
"""

import argparse
import datetime as dt
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

from relanalytics_pipeline.settings import DEFAULT_MEMORY_LIMIT

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 3, 31)
STEP = re.compile(r'Finished execution of step "(\w+)" in (?:(\d+)m)?([0-9.]+)(ms|s)')
ANSI = re.compile(r"\x1b\[[0-9;]*m")
GIB = 2**30


class SpillSampler(threading.Thread):
    """The peak total size of the files under `folder` in DuckDB temporary directories (`*.tmp`,
    where DuckDB spills beside a database file, or `folder` itself), sampled until stopped."""

    def __init__(self, folder: Path, whole: bool = False):
        super().__init__(daemon=True)
        self.folder, self.whole, self.peak = folder, whole, 0
        self.stopped = threading.Event()

    def size(self) -> int:
        total = 0
        for directory, _, files in os.walk(self.folder):
            if self.whole or any(part.endswith(".tmp") for part in Path(directory).parts):
                for name in files:
                    try:
                        total += os.stat(os.path.join(directory, name)).st_size
                    except FileNotFoundError:  # deleted while we looked
                        pass
        return total

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            self.peak = max(self.peak, self.size())

    def __enter__(self) -> "SpillSampler":
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self.stopped.set()
        self.join()


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


def materialize(home: Path, landing: Path, as_of: dt.date) -> tuple[float, float, str]:
    """Every asset as of `as_of`, as the README runs it: seconds, peak GiB, output."""
    # A temporary Dagster instance (no DAGSTER_HOME): nothing of the run outlives the benchmark.
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {"RELANALYTICS_HOME": str(home), "RELANALYTICS_LANDING_DIR": str(landing),
            "RELANALYTICS_AS_OF": as_of.isoformat()}  # fmt: skip
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "asset", "materialize", "-m", "relanalytics_pipeline.definitions"]
    return timed([*command, "--select", "*", "--partition", as_of.isoformat()], env)


def run_yardstick(folder: Path, warehouse: Path) -> None:
    """In the benchmark's child process: compute the yardstick from `folder`/landing, then print
    its seconds, peak memory and spill, and the rows differing from `warehouse`, as JSON."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support import yardstick

    temp = folder / "yardstick.tmp"
    org_domains = [d for d in os.environ.get("RELANALYTICS_ORG_DOMAINS", "").split(",") if d]
    config = {"memory_limit": DEFAULT_MEMORY_LIMIT, "temp_directory": str(temp),
              "preserve_insertion_order": False}  # fmt: skip
    connection = duckdb.connect(config=config)
    connection.execute("SET enable_progress_bar = false")
    with SpillSampler(temp, whole=True) as spill:
        started = time.perf_counter()
        yardstick.compute(connection, folder / "landing", AS_OF, org_domains)
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    differing = yardstick.rows_differing(connection, warehouse)
    connection.close()
    print(
        json.dumps({"seconds": seconds, "peak": peak, "spill": spill.peak, "differing": differing})
    )


def bench(activities: int, folder: Path) -> None:
    landing, home = folder / "landing", folder / "home"
    relanalytics = Path(sys.executable).with_name("relanalytics")
    generate_seconds, _, _ = timed(
        [str(relanalytics), "generate", "--activities", str(activities), "--out", str(landing),
         "--seed", "1", "--as-of", AS_OF.isoformat()], dict(os.environ),
    )  # fmt: skip
    home.mkdir()
    with SpillSampler(home) as pipeline_spill:
        seconds, peak, output = materialize(home, landing, AS_OF)
    _, _, report = timed(
        [sys.executable, __file__, "--yardstick-of", str(folder)], dict(os.environ)
    )
    yardstick = json.loads(report.strip().splitlines()[-1])

    print(f"\n{activities:,} activities as of {AS_OF} (generated in {generate_seconds:.0f} s)")
    print(f"{'':<44}{'seconds':>9}{'x yardstick':>13}{'peak GiB':>10}{'spill GiB':>11}")
    for name, run_seconds, run_peak, spill in (
        ("full refresh (dagster asset materialize)", seconds, peak, pipeline_spill.peak),
        ("yardstick (one DuckDB connection)", yardstick["seconds"], yardstick["peak"],
         yardstick["spill"]),
    ):  # fmt: skip
        ratio = run_seconds / yardstick["seconds"]
        print(f"{name:<44}{run_seconds:>9.1f}{ratio:>13.2f}{run_peak:>10.2f}{spill / GIB:>11.2f}")
    for step, step_time in step_seconds(output).items():
        print(f"{'  step ' + step:<44}{step_time:>9.1f}")
    print("rows differing from the yardstick per mart:", yardstick["differing"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activities", type=int, action="append", help="repeat for several sizes")
    parser.add_argument("--yardstick-of", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.yardstick_of:
        run_yardstick(args.yardstick_of, args.yardstick_of / "home" / "warehouse.duckdb")
        return
    for activities in args.activities or [1_000_000]:
        with tempfile.TemporaryDirectory() as folder:
            bench(activities, Path(folder))


if __name__ == "__main__":
    main()

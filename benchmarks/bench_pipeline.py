"""Benchmark: the full refresh on each engine against the yardstick, side by side in one run.

    python benchmarks/bench_pipeline.py --activities 1000000 [--activities 10000000]
        [--engine duckdb] [--engine spark] [--no-yardstick] [--work-dir FOLDER] [--crm FOLDER]

For each size: generate a synthetic CRM (Parquet) whose history ends on D; for each engine
(`--engine`, repeatable; DuckDB when none is named), one after the other, run the full refresh as
a user runs it, `RELANALYTICS_ENGINE=<engine> dagster asset materialize --select '*'` as of D from
an empty data folder (Dagster's start-up, ingest with its checks, dbt with its tests, the model,
publication); then the yardstick (tests/support/yardstick.py: every mart but the model's,
hand-written, in one DuckDB connection straight from the same files, with the pipeline's memory
limit) and count, per engine and mart, the rows on which the published marts (the DuckDB file BI
readers open, which both engines publish alike) and the yardstick's disagree (EXCEPT ALL both
ways, doubles to 9 significant digits). Printed, for each run:
- wall time, and its ratio to the yardstick's and to the first engine's;
- peak memory of the whole process tree: the resident memory of their own (not the code and
  files they map) of the run's process and all its descendants (dbt, and the JVMs local Spark
  starts in the Python steps and inside dbt) summed, sampled from /proc every 0.5 s. `os.wait4`'s
  peak, printed beside it, is that of the largest single process among those whose parents
  waited for them: a JVM counts only if it alone is the largest, and the memory of several
  processes at once never adds up in it;
- peak spill (DuckDB's temporary directories, Spark's block managers in spark.local.dir) and
  peak disk (everything under the data folder: warehouses, spill, publication), sampled alike;
- seconds per Dagster step and for the slowest dbt models (dbt's log lines in the run's output:
  a run removes its dbt artefacts, run_results.json included, once it succeeded).
Each run's data folder but its publication is removed after it, so the disk holds one warehouse
at a time. `--no-yardstick` leaves the yardstick out (its spill grows with the data: 20 GB at 10M).
`--crm` takes a CRM generated before (100M activities take about 20 minutes to generate) and
keeps it.
The machine is shared and noisy: compare the ratios within one run, not seconds across runs.
"""

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

import duckdb

from relanalytics_pipeline.defs.serve.publish import DUCKDB_FILE
from relanalytics_pipeline.settings import DEFAULT_MEMORY_LIMIT

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 3, 31)
STEP = re.compile(r'Finished execution of step "(\w+)" in (?:(\d+)m)?([0-9.]+)(ms|s)')
MODEL = re.compile(r"OK created sql \w+ model (\S+) \.* \[OK in ([0-9.]+)s\]")
# Dagster's line as a step starts: its time (to the second) and the step's name.
STEP_START = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}) - dagster - .* - STEP_START - "
    r'Started execution of step "(\w+)"',
    re.MULTILINE,
)
TEST = re.compile(r"(?:PASS|WARN \d+) (\S+) \.* \[(?:PASS|WARN \d+) in ([0-9.]+)s\]")
# Colours, also as JSON escapes: dagster-dbt prints dbt's JSON line as it came when it cannot
# parse it (Spark's progress bar before it on the line).
ANSI = re.compile(r"(?:\x1b|\\u001b)\[[0-9;]*m")
GIB = 2**30
PAGE = os.sysconf("SC_PAGE_SIZE")
# Where the benchmark's runs publish: the published DuckDB file's marts are in its `main` schema.
PUBLISHED = Path("published") / DUCKDB_FILE
SLOWEST_MODELS = 8
# The width of the printed tables' first column: a dbt model's name fits.
NAMES = 60


class Sampler(threading.Thread):
    """Calls `sample` every `interval` seconds until stopped (and once more then); less often
    where one sample takes long (a large warehouse's files), so that sampling never takes more
    than a twentieth of a core from the run it measures."""

    interval = 0.5
    share = 1 / 20

    def __init__(self):
        super().__init__(daemon=True)
        self.stopped = threading.Event()

    def sample(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        wait = self.interval
        while not self.stopped.wait(wait):
            started = time.perf_counter()
            self.sample()
            wait = max(self.interval, (time.perf_counter() - started) / self.share)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self.stopped.set()
        self.join()
        self.sample()


class SpillSampler(Sampler):
    """Peak sizes of the files under `folder`: in all (`disk`), and in spill folders (`peak`):
    DuckDB's temporary directories (`*.tmp`, beside a database file) and Spark's block managers
    (`blockmgr-*` in spark.local.dir: its shuffle and spill files), or all of `folder` if `whole`."""

    def __init__(self, folder: Path, whole: bool = False):
        super().__init__()
        self.folder, self.whole, self.peak, self.disk = folder, whole, 0, 0

    @staticmethod
    def spills(directory: str) -> bool:
        return any(p.endswith(".tmp") or p.startswith("blockmgr-") for p in Path(directory).parts)

    def sample(self) -> None:
        total = spill = 0
        for directory, _, files in os.walk(self.folder):
            size = 0
            for name in files:
                try:
                    size += os.stat(os.path.join(directory, name)).st_size
                except FileNotFoundError:  # deleted while we looked
                    pass
            total += size
            spill += size if self.whole or self.spills(directory) else 0
        self.peak, self.disk = max(self.peak, spill), max(self.disk, total)


class TreeMemorySampler(Sampler):
    """Peak memory of the process `pid` and all its descendants together: the sum of their
    resident memory of their own (heaps, buffers), read from /proc; not the pages of the code and
    files they map, which the system shares between processes and can drop. (Proportional set
    sizes would count shared pages once too, but reading them walks a large JVM's page tables:
    seconds a sample.)"""

    def __init__(self, pid: int):
        super().__init__()
        self.pid, self.peak = pid, 0
        # At the peak, the memory of the tree's processes by command name (dagster, dbt, java).
        self.at_peak: dict[str, int] = {}
        self.peak_time = 0.0  # when the peak was sampled (seconds since the epoch)

    def descendants(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    stat = Path(entry.path, "stat").read_text()
                except OSError:  # ended while we looked
                    continue
                # The command name, in parentheses, may hold spaces: the fields follow its end.
                parent = int(stat[stat.rindex(")") + 2 :].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
        tree, pending = [], [self.pid]
        while pending:
            pid = pending.pop()
            tree.append(pid)
            pending += children.get(pid, [])
        return tree

    def sample(self) -> None:
        sizes = {}
        for pid in self.descendants():
            try:
                statm = Path(f"/proc/{pid}/statm").read_text().split()
            except OSError:  # ended while we looked
                continue
            resident, file_backed = int(statm[1]), int(statm[2])
            sizes[pid] = (resident - file_backed) * PAGE
        if sum(sizes.values()) > self.peak:
            self.peak, self.at_peak, self.peak_time = sum(sizes.values()), {}, time.time()
            for pid, size in sizes.items():
                try:
                    name = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    name = "ended"
                self.at_peak[name] = self.at_peak.get(name, 0) + size


class Run(NamedTuple):
    seconds: float
    peak: float  # GiB, the whole process tree at once (TreeMemorySampler)
    largest: float  # GiB, os.wait4's: the largest single process its parent waited for
    output: str
    at_peak: dict[str, float] = {}  # GiB per command name at the peak (TreeMemorySampler)
    peak_step: str = "start-up"  # the Dagster step running at the peak (step_at)


def timed(command: list[str], env: dict[str, str]) -> Run:
    """Wall seconds, peak memory and output of a command."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    with TreeMemorySampler(process.pid) as memory:
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(
            f"{' '.join(command[:4])} failed after {seconds:.0f} s, peak {memory.peak / GIB:.2f}"
            f" GiB:\n{output[-3000:]}"
        )
    at_peak = {name: size / GIB for name, size in memory.at_peak.items()}
    output = ANSI.sub("", output)
    peak_step = step_at(output, memory.peak_time)
    return Run(seconds, memory.peak / GIB, usage.ru_maxrss / 2**20, output, at_peak, peak_step)


def step_at(output: str, when: float) -> str:
    """The Dagster step running at `when` (seconds since the epoch): the last to start by then,
    from Dagster's lines in the run's output (steps run one at a time); `start-up` before any.
    Dagster logs to the second: a step logged in the peak's second counts as started."""
    running = "start-up"
    for stamp, step in STEP_START.findall(output):
        if dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S %z").timestamp() > when:
            break
        running = step
    return running


def memory_at_peak(run: Run) -> str:
    """What each process (by command name) held at the run's peak, and the step then running:
    `dagster 9.12, dbt 2.30 in step relanalytics_dbt`."""
    held = ", ".join(f"{name} {size:.2f}" for name, size in run.at_peak.items())
    return f"{held} in step {run.peak_step}"


def step_seconds(output: str) -> dict[str, float]:
    """Seconds of each step, from the lines Dagster logs when a step finishes."""
    return {
        step: int(minutes or 0) * 60 + float(value) / (1000 if unit == "ms" else 1)
        for step, minutes, value, unit in STEP.findall(output)
    }


def model_seconds(output: str, nodes: re.Pattern = MODEL) -> dict[str, float]:
    """Seconds of each dbt model (`schema.name`), or of each test with TEST, from dbt's lines in
    the run's output."""
    return {node: float(seconds) for node, seconds in nodes.findall(output)}


def materialize(home: Path, landing: Path, as_of: dt.date, engine: str = "duckdb") -> Run:
    """Every asset as of `as_of` on `engine`, as the README runs it."""
    # A temporary Dagster instance (no DAGSTER_HOME): nothing of the run outlives the benchmark.
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {"RELANALYTICS_HOME": str(home), "RELANALYTICS_LANDING_DIR": str(landing),
            "RELANALYTICS_AS_OF": as_of.isoformat(), "RELANALYTICS_ENGINE": engine,
            "RELANALYTICS_PUBLISH_DIR": str(home / PUBLISHED.parent)}  # fmt: skip
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "asset", "materialize", "-m", "relanalytics_pipeline.definitions"]
    return timed([*command, "--select", "*", "--partition", as_of.isoformat()], env)


def run_yardstick(folder: Path, landing: Path, engines: list[str]) -> None:
    """In the benchmark's child process: compute the yardstick from `landing`, then print
    its seconds, peak memory and spill, and the rows differing from each engine's published
    marts, as JSON."""
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
        yardstick.compute(connection, landing, AS_OF, org_domains)
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    differing = {
        engine: yardstick.rows_differing(connection, folder / engine / PUBLISHED, schema="main")
        for engine in engines
    }
    connection.close()
    print(
        json.dumps({"seconds": seconds, "peak": peak, "spill": spill.peak, "differing": differing})
    )


def keep_publication(home: Path) -> None:
    """Remove a run's data folder but its publication, which the yardstick compares."""
    for path in home.iterdir():
        if path.name != PUBLISHED.parts[0]:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def bench(
    activities: int, folder: Path, engines: list[str], with_yardstick: bool, crm: Path | None
) -> None:
    """One size: the CRM generated into `folder` (or `crm`, generated before), then each engine's
    full refresh and the yardstick."""
    landing = crm or folder / "landing"
    if crm:
        generated = f"generated before, in {crm}"
    else:
        relanalytics = Path(sys.executable).with_name("relanalytics")
        seconds = timed(
            [str(relanalytics), "generate", "--activities", str(activities), "--out", str(landing),
             "--seed", "1", "--as-of", AS_OF.isoformat()], dict(os.environ),
        ).seconds  # fmt: skip
        generated = f"generated in {seconds:.0f} s"
    runs, spills = {}, {}
    for engine in engines:
        home = folder / engine
        home.mkdir()
        with SpillSampler(home) as spills[engine]:
            runs[engine] = materialize(home, landing, AS_OF, engine)
        if not (home / PUBLISHED).exists():
            # Dagster skips the steps after one whose outputs are missing, and the run succeeds.
            skipped = [line for line in runs[engine].output.splitlines() if "STEP_SKIPPED" in line]
            sys.exit(f"The full refresh on {engine} published nothing:\n" + "\n".join(skipped))
        keep_publication(home)
        # A long benchmark's later runs may fail: what is measured so far is printed now.
        run = runs[engine]
        print(f"full refresh on {engine}: {run.seconds:.1f} s, peak {run.peak:.2f} GiB"
              f" ({memory_at_peak(run)}), spill {spills[engine].peak / GIB:.2f} GiB,"
              f" steps {step_seconds(run.output)}", flush=True)  # fmt: skip
    yardstick = None
    if with_yardstick:
        report = timed(
            [sys.executable, __file__, "--yardstick-of", str(folder), "--crm", str(landing)]
            + [f"--engine={engine}" for engine in engines],
            dict(os.environ),
        )
        yardstick = json.loads(report.output.strip().splitlines()[-1])

    first = engines[0]
    print(f"\n{activities:,} activities as of {AS_OF} ({generated})")
    print(f"{'':<{NAMES}}{'seconds':>9}{'x yardstick':>13}{'x ' + first:>10}{'peak GiB':>10}"
          f"{'wait4 GiB':>11}{'spill GiB':>11}{'disk GiB':>10}")  # fmt: skip
    rows = [(f"full refresh on {engine}", runs[engine].seconds, runs[engine].peak,
             runs[engine].largest, spills[engine].peak, spills[engine].disk) for engine in engines]  # fmt: skip
    if yardstick:
        rows.append(("yardstick (one DuckDB connection)", yardstick["seconds"], yardstick["peak"],
                     yardstick["peak"], yardstick["spill"], yardstick["spill"]))  # fmt: skip
    for name, seconds, peak, largest, spill, disk in rows:
        versus_yardstick = f"{seconds / yardstick['seconds']:>13.2f}" if yardstick else f"{'':>13}"
        print(f"{name:<{NAMES}}{seconds:>9.1f}{versus_yardstick}{seconds / runs[first].seconds:>10.2f}"
              f"{peak:>10.2f}{largest:>11.2f}{spill / GIB:>11.2f}{disk / GIB:>10.2f}")  # fmt: skip

    steps = {engine: step_seconds(runs[engine].output) for engine in engines}
    models = {engine: model_seconds(runs[engine].output) for engine in engines}
    slowest = {m for engine in engines
               for m in sorted(models[engine], key=models[engine].get)[-SLOWEST_MODELS:]}  # fmt: skip
    print(f"\n{'seconds':<{NAMES}}" + "".join(f"{engine:>10}" for engine in engines))
    every_step = {step: None for engine in engines for step in steps[engine]}
    lines = [(f"  step {step}", [steps[e].get(step) for e in engines]) for step in every_step]
    tests = {engine: model_seconds(runs[engine].output, TEST) for engine in engines}
    lines += [(f"    dbt's {len(nodes[first])} {kind} in all", [sum(nodes[e].values()) for e in engines])
              for kind, nodes in (("models", models), ("tests", tests))]  # fmt: skip
    lines += [(f"    dbt {m}", [models[e].get(m) for e in engines])
              for m in sorted(slowest, key=lambda m: -max(models[e].get(m, 0) for e in engines))]  # fmt: skip
    for name, values in lines:
        print(f"{name:<{NAMES}}" + "".join(f"{v:>10.1f}" if v is not None else f"{'-':>10}" for v in values))  # fmt: skip
    if yardstick:
        for engine in engines:
            print(f"rows differing from the yardstick per mart, {engine}:", yardstick["differing"][engine])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activities", type=int, action="append", help="repeat for several sizes")
    parser.add_argument(
        "--engine", action="append", choices=("duckdb", "spark"),
        help="RELANALYTICS_ENGINE of a full refresh (repeat: one after the other); duckdb if none",
    )  # fmt: skip
    parser.add_argument(
        "--no-yardstick", action="store_true", help="leave out the yardstick and the comparison"
    )
    parser.add_argument(
        "--work-dir", type=Path, help="where the CRM and the runs go (a disk with room)"
    )
    parser.add_argument(
        "--crm", type=Path,
        help="a CRM generated before (`relanalytics generate --activities N --seed 1 --as-of "
        f"{AS_OF}`), used instead of generating one: one --activities, N",
    )  # fmt: skip
    parser.add_argument("--yardstick-of", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    engines = args.engine or ["duckdb"]
    if args.yardstick_of:
        run_yardstick(args.yardstick_of, args.crm, engines)
        return
    sizes = args.activities or [1_000_000]
    if args.crm and len(sizes) > 1:
        parser.error("--crm is one CRM: give its size as a single --activities")
    for activities in sizes:
        with tempfile.TemporaryDirectory(dir=args.work_dir) as folder:
            bench(activities, Path(folder), engines, not args.no_yardstick, args.crm)


if __name__ == "__main__":
    main()

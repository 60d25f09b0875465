"""Benchmark: the nightly run for one new day against a full refresh, side by side in one run.

    python benchmarks/bench_nightly.py --activities 1000000 [--activities 10000000] [--check]

For each size: generate a synthetic CRM whose history ends on D + 1 and hold back what was
modified on D + 1 (activities, their parties, records), as a CRM's daily export would deliver it
the next morning. Then, as real Dagster runs (`dagster asset materialize --select '*'`, Dagster's
start-up included):
1. the full refresh: every asset as of D from an empty warehouse;
2. the night: D + 1's files land in `<landing>/<entity>/<D+1>/` and the partition D + 1 runs
   on that warehouse.
Wall time and peak memory (of the run's whole process tree) are per run; the dbt models' own
times come from dbt's log lines in the run's output. With --check, a third run builds everything
as of D + 1 from an empty warehouse and every mart of the night is compared with it (EXCEPT ALL
both ways).
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench_pipeline import (
    ROOT,
    materialize,
    memory_at_peak,
    model_seconds,
    step_seconds,
    timed,
)

sys.path.insert(0, str(ROOT / "tests"))
from support.nightly import NIGHT, D, split_off_night, tables_differing  # noqa: E402


def land_night(night_files: Path, landing: Path) -> None:
    for path in night_files.glob("*.parquet"):
        target = landing / path.stem / NIGHT.isoformat() / "part-0000.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)


def part_seconds(names: list[str], models: dict[str, float], steps: dict[str, float]) -> float:
    """The seconds of the dbt models (`schema.name`) and steps named `names`."""
    in_models = sum(s for m, s in models.items() if m.rpartition(".")[2] in names)
    return in_models + sum(s for step, s in steps.items() if step in names)


def bench(activities: int, folder: Path, check: bool, part: list[str]) -> None:
    generated, landing, night_files = folder / "generated", folder / "landing", folder / "night"
    relanalytics = Path(sys.executable).with_name("relanalytics")
    timed(
        [str(relanalytics), "generate", "--activities", str(activities), "--out", str(generated),
         "--seed", "1", "--as-of", NIGHT.isoformat()], dict(os.environ),
    )  # fmt: skip
    night_files.mkdir()
    night_rows = split_off_night(generated, landing, night_files)
    full = materialize(folder / "home", landing, D)
    land_night(night_files, landing)
    night = materialize(folder / "home", landing, NIGHT)

    print(f"\n{activities:,} activities; the night of {NIGHT} brings {night_rows}")
    print(f"{'':<42}{'full refresh':>14}{'nightly':>10}{'ratio':>8}")
    rows = [("whole run, Dagster start-up included", full.seconds, night.seconds)]
    full_steps, night_steps = step_seconds(full.output), step_seconds(night.output)
    every_step = full_steps | night_steps
    rows += [(f"  step {s}", full_steps.get(s, 0.0), night_steps.get(s, 0.0)) for s in every_step]
    full_models, night_models = model_seconds(full.output), model_seconds(night.output)
    # The slowest models of each run: a night's are not always the full refresh's.
    slowest = sorted(
        {m for run in (full_models, night_models) for m in sorted(run, key=run.get)[-8:]},
        key=lambda m: (-full_models.get(m, 0.0), m),
    )
    rows += [(f"    dbt {m}", full_models.get(m, 0.0), night_models.get(m, 0.0)) for m in slowest]
    if part:
        rows.append(
            ("  the part: " + ", ".join(part), part_seconds(part, full_models, full_steps),
             part_seconds(part, night_models, night_steps))
        )  # fmt: skip
    for name, full_seconds, night_seconds in rows:
        ratio = f"{night_seconds / full_seconds:>8.2f}" if full_seconds else ""
        print(f"{name:<42}{full_seconds:>14.1f}{night_seconds:>10.1f}{ratio}")
    print(f"{'peak GiB':<42}{full.peak:>14.2f}{night.peak:>10.2f}")
    for run, measured in (("full refresh", full), ("night", night)):
        print(f"at the {run}'s peak, GiB per process: {memory_at_peak(measured)}")
    if part:
        for run, whole, seconds in (("full refresh", full.seconds, rows[-1][1]),
                                    ("night", night.seconds, rows[-1][2])):  # fmt: skip
            print(f"the part's share of the {run}: {seconds / whole:.1%}")
    if check:
        materialize(folder / "reference", landing, NIGHT)
        differing = tables_differing(
            folder / "home" / "warehouse.duckdb", folder / "reference" / "warehouse.duckdb"
        )
        print(f"rows differing from a full refresh as of {NIGHT}, per mart: {differing}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activities", type=int, action="append", help="repeat for several sizes")
    parser.add_argument(
        "--check", action="store_true", help="compare the night's marts with a full run"
    )
    parser.add_argument(
        "--part", action="append", default=[],
        help="a dbt model or step to total apart (repeat): its seconds and share of each run",
    )  # fmt: skip
    args = parser.parse_args()
    for activities in args.activities or [1_000_000]:
        with tempfile.TemporaryDirectory() as folder:
            bench(activities, Path(folder), args.check, args.part)


if __name__ == "__main__":
    main()

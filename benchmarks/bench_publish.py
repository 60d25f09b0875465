"""Benchmark: the publication for BI tools beside the dbt build, side by side in one run.

    python benchmarks/bench_publish.py --activities 1000000 [--postgres-url postgresql://...]

Generates a synthetic CRM, materializes every asset with `dagster asset materialize --select '*'`
(the publication included: DuckDB file and Parquet, and PostgreSQL when a URL is given), then
reports the step times of dbt and of the publication, their ratio, and what was published (rows
per mart, sizes). The machines here are shared and noisy: compare the ratio, not seconds across
runs.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import duckdb
from bench_pipeline import AS_OF, step_seconds, timed

PUBLISH_STEP = "serve__published_marts"


def bench(activities: int, folder: Path, postgres_url: str | None) -> None:
    bin_dir = Path(sys.executable).parent
    landing, home = folder / "landing", folder / "home"
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {"RELANALYTICS_HOME": str(home), "RELANALYTICS_LANDING_DIR": str(landing),
            "RELANALYTICS_AS_OF": AS_OF.isoformat()}  # fmt: skip
    env.pop("RELANALYTICS_PUBLISH_POSTGRES_URL", None)
    if postgres_url:
        env["RELANALYTICS_PUBLISH_POSTGRES_URL"] = postgres_url
    timed(
        [str(bin_dir / "relanalytics"), "generate", "--activities", str(activities), "--out",
         str(landing), "--seed", "1", "--as-of", AS_OF.isoformat()], env,
    )  # fmt: skip
    seconds, peak, _, output = timed(
        [str(bin_dir / "dagster"), "asset", "materialize", "-m", "relanalytics_pipeline.definitions",
         "--select", "*", "--partition", AS_OF.isoformat()], env,
    )  # fmt: skip
    steps = step_seconds(output)
    dbt = sum(s for step, s in steps.items() if step.startswith("relanalytics_dbt"))
    published = home / "published"
    with duckdb.connect(str(published / "marts.duckdb"), read_only=True) as connection:
        rows = connection.execute("SELECT mart, row_count FROM marts._publication ORDER BY mart")
        rows = rows.fetchall()
    parquet = sum(f.stat().st_size for f in (published / "parquet" / "current").rglob("*.parquet"))
    targets = "DuckDB file, Parquet" + (", PostgreSQL" if postgres_url else "")
    print(f"\n{activities:,} activities; whole pipeline {seconds:.1f} s, peak {peak:.2f} GiB")
    print(f"{'dbt steps (both invocations)':<40}{dbt:>10.1f} s")
    print(f"{'publication (' + targets + ')':<40}{steps[PUBLISH_STEP]:>10.1f} s")
    print(f"{'publication / dbt':<40}{steps[PUBLISH_STEP] / dbt:>10.3f}")
    print(f"published: {sum(r for _, r in rows):,} rows in {len(rows)} marts; "
          f"marts.duckdb {(published / 'marts.duckdb').stat().st_size / 2**20:.0f} MiB, "
          f"Parquet {parquet / 2**20:.0f} MiB")  # fmt: skip
    for mart, count in rows:
        print(f"  {mart:<36}{count:>12,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--postgres-url", help="also publish into this PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bench(args.activities, Path(folder), args.postgres_url)


if __name__ == "__main__":
    main()

"""Warehouses of the dbt layer: landing folders ingested, and dbt run on them in a process of its
own, as the pipeline's dbt step runs it (a fixture warehouse instead of the pipeline's)."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import project_free_environ, write_hand_made_landing

from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.raw_contract import LOAD_ORDER
from relanalytics_pipeline.settings import DBT_PROJECT_DIR
from support.runs import AS_OF

# similar_won_deals and won_deal_benchmarks read the similar-deals model's table (a Python asset).
WITHOUT_THE_MODEL = ("--exclude", "similar_won_deals+")
# The run settings of the hand-made dataset (tests/fixtures/landing).
HAND_MADE_SETTINGS = {"RELANALYTICS_AS_OF": AS_OF, "RELANALYTICS_ORG_DOMAINS": "acme-help.example"}


def ingest(warehouse: Path, landing: Path, run_id: str) -> None:
    """Every entity of `landing` into `warehouse`, in load order."""
    for entity in LOAD_ORDER:
        ingest_entity(warehouse, landing, entity, run_id)


def load_landing(folder: Path, activities: list[dict], parties: str) -> Path:
    """The hand-made dataset with more `activities` (rows) and their `parties` (CSV), ingested
    into `folder`/warehouse.duckdb."""
    landing = write_hand_made_landing(folder / "landing")
    (landing / "activities" / "2026-04-01.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in activities)
    )
    (landing / "activity_parties" / "2026-04-01.csv").write_text(parties)
    warehouse = folder / "warehouse.duckdb"
    ingest(warehouse, landing, "run-1")
    return warehouse


def dbt(
    warehouse: Path, command: str, *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`dbt <command> <args>` on `warehouse` with the settings `environ` (none of this shell's);
    its target folder beside the warehouse."""
    env = project_free_environ(RELANALYTICS_WAREHOUSE=str(warehouse), **(environ or {}))
    target = warehouse.parent / "dbt-target"
    executable = str(Path(sys.executable).with_name("dbt"))
    command = [executable, command, "--target-path", str(target), *args]
    return subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)


def run_results(warehouse: Path) -> dict[str, dict]:
    """The results of the latest dbt command on `warehouse`, by unique id."""
    results = json.loads((warehouse.parent / "dbt-target" / "run_results.json").read_text())
    return {result["unique_id"]: result for result in results["results"]}


def build(
    warehouse: Path, *args: str, environ: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    """`dbt build` of everything but the similar-deals marts and the unit tests, with the
    hand-made dataset's settings and `environ`; and its results."""
    result = dbt(
        warehouse, "build", *WITHOUT_THE_MODEL, "--exclude-resource-type", "unit_test", *args,
        environ=HAND_MADE_SETTINGS | (environ or {}),
    )  # fmt: skip
    return result, run_results(warehouse)

"""A broken mart is stopped by its blocking great-expectations check in a real run.

The marts are built once in process from the hand-made landing; then `dagster job execute` (the
multiprocess executor, one process per step, as in production) runs the mart's check and an asset
downstream of the mart, first on the clean mart, then after the mart has been broken by hand.
"""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from test_end_to_end import AS_OF, environment

from relanalytics_pipeline.lib.instance import ensure_dagster_home
from relanalytics_pipeline.settings import PROJECT_ROOT

PUBLISHING_DEFS = Path(__file__).parent / "fixtures" / "quality" / "publishing_defs.py"
KPIS = dg.AssetKey(["marts", "relationship_kpis"])
PUBLISHED = dg.AssetKey("kpis_published")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from conftest import write_hand_made_landing

    tmp_path = tmp_path_factory.mktemp("blocking")
    environ = environment(tmp_path, write_hand_made_landing(tmp_path / "landing"))
    environ["DAGSTER_HOME"] = str(ensure_dagster_home(tmp_path / "home" / "dagster"))
    saved = dict(os.environ)
    os.environ.update(environ)
    try:
        from relanalytics_pipeline.definitions import defs

        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize(
                defs.assets, resources=defs.resources, instance=instance, partition_key=AS_OF
            )
            assert result.success
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return tmp_path / "home" / "warehouse.duckdb", environ


def publish(environ: dict[str, str]) -> tuple[dg.DagsterRun, dict, bool]:
    """Run the job with the CLI; return the run, the check's evaluation and whether the
    downstream asset materialized in it."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "job", "execute", "-f", str(PUBLISHING_DEFS), "-j", "publish_kpis"]
    result = subprocess.run(command, env=environ, cwd=PROJECT_ROOT, capture_output=True, text=True)
    with dg.DagsterInstance.from_config(environ["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs(limit=1)
        assert runs, result.stdout[-3000:] + result.stderr[-3000:]
        run = runs[0]
        records = instance.get_records_for_run(run.run_id).records
    events = [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event]
    (check,) = [
        e.event_specific_data
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    published = any(
        e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION and e.asset_key == PUBLISHED
        for e in events
    )
    return run, check, published


def test_a_clean_mart_is_published(built):
    _, environ = built
    run, check, published = publish(environ)
    assert (check.asset_key, check.check_name, check.passed) == (KPIS, "great_expectations", True)
    assert check.metadata["rows_validated"].value == 16  # 8 records x 2 periods
    assert published and run.status == dg.DagsterRunStatus.SUCCESS


def test_a_broken_mart_is_stopped_by_its_blocking_check(built):
    warehouse, environ = built
    with duckdb.connect(str(warehouse)) as connection:
        # A response rate above 1, and a record listed twice for the same period.
        connection.execute(
            "UPDATE marts.relationship_kpis SET customer_response_rate = 1.5 "
            "WHERE record_id = 'o1' AND period = 'all'"
        )
        connection.execute(
            "INSERT INTO marts.relationship_kpis SELECT * FROM marts.relationship_kpis "
            "WHERE record_id = 'c2' AND period = 'trailing'"
        )
    run, check, published = publish(environ)
    assert not published
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    metadata = {name: value.value for name, value in check.metadata.items()}
    assert (metadata["rows_validated"], metadata["failed_expectations"]) == (17, 2)
    assert metadata["unexpected_rows"] == 1 + 2  # the rate, and both rows of the duplicated key
    assert "customer_response_rate" in metadata["failures"]
    samples = metadata["offending_rows_sample (up to 5 per expectation)"]
    (rate,) = [rows for name, rows in samples.items() if "customer_response_rate" in name]
    assert [(r["record_id"], r["period"], r["customer_response_rate"]) for r in rate] == [
        ("o1", "all", 1.5)
    ]
    (duplicated,) = [rows for name, rows in samples.items() if "unique" in name]
    assert [(r["record_id"], r["period"]) for r in duplicated] == [("c2", "trailing")] * 2

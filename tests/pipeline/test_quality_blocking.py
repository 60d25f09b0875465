"""A broken mart is stopped by its blocking great-expectations check in a real run, and BI
readers of the publication see one publication at a time while a run publishes.

The marts are built (and published) once in process from the hand-made landing; then `dagster
job execute` (the code location's executor, as in production) runs the mart's
check and the publication downstream of every mart: first on clean marts, two of them changed by
hand, with BI readers in processes of their own reading the publication all along; then after the
checked mart has been broken by hand.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from support.runs import AS_OF, environment

from relanalytics_pipeline.cli.instance import ensure_dagster_home
from relanalytics_pipeline.settings import PROJECT_ROOT

FIXTURES = Path(__file__).parents[1] / "fixtures"
PUBLISHING_DEFS = FIXTURES / "quality" / "publishing_defs.py"
BI_READER = FIXTURES / "serve" / "bi_reader.py"
KPIS = dg.AssetKey(["marts", "relationship_kpis"])
PUBLISHED = dg.AssetKey(["serve", "published_marts"])


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


def published_record(folder: Path) -> dict[str, tuple[str, int]]:
    with duckdb.connect(str(folder / "marts.duckdb"), read_only=True) as connection:
        rows = connection.execute("SELECT mart, version, row_count FROM marts._publication")
        return {mart: (version, count) for mart, version, count in rows.fetchall()}


def test_a_clean_mart_is_published_while_bi_tools_read(built, tmp_path):
    warehouse, environ = built
    folder = Path(environ["RELANALYTICS_HOME"]) / "published"
    before = published_record(folder)  # the in-process build published once already
    # Two marts change (their checks are not part of this job): a1 leaves relationship_activity_daily
    # (4 days with activity, see test_end_to_end), c2 leaves record_summary (1 row).
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("DELETE FROM marts.relationship_activity_daily WHERE record_id = 'a1'")
        connection.execute("DELETE FROM marts.record_summary WHERE record_id = 'c2'")
    stop = tmp_path / "stop"
    readers = {}
    for mode in ("hold", "poll"):
        out = tmp_path / f"{mode}.jsonl"
        command = [sys.executable, str(BI_READER), mode, str(folder), str(out), str(stop)]
        readers[mode] = (subprocess.Popen(command, stderr=subprocess.PIPE, text=True), out)
    while not all(out.exists() and out.read_text() for _, out in readers.values()):
        time.sleep(0.05)  # both hold the file open before the run starts
    run, check, published = publish(environ)
    stop.touch()
    seen = {}
    for mode, (process, out) in readers.items():
        assert process.wait(timeout=60) == 0, process.stderr.read()
        seen[mode] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (check.asset_key, check.check_name, check.passed) == (KPIS, "great_expectations", True)
    assert check.metadata["rows_validated"].value == 16  # 8 records x 2 periods
    assert published and run.status == dg.DagsterRunStatus.SUCCESS

    after = published_record(folder)
    (old,), (new,) = {v for v, _ in before.values()}, {v for v, _ in after.values()}
    changed = {"relationship_activity_daily": 4, "record_summary": 1}
    assert {m: after[m][1] for m in after} == {m: before[m][1] - changed.get(m, 0) for m in before}
    # Every read saw one publication whole: one version, and each mart with the rows it records.
    for observation in seen["hold"] + seen["poll"]:
        assert (
            len(observation["versions"]) == 1 and observation["counted"] == observation["recorded"]
        )
    # The reader that kept its connection saw the old publication all along, undisturbed.
    assert {o["versions"][0] for o in seen["hold"]} == {old} and len(seen["hold"]) > 1
    # The one that reopens saw the old, then the new, never going back, in each target.
    for target in ("duckdb", "parquet"):
        versions = [o["versions"][0] for o in seen["poll"] if o["target"] == target]
        assert versions[0] == old and versions[-1] == new, target
        assert versions == sorted(versions), target


def test_a_broken_mart_is_stopped_by_its_blocking_check(built):
    warehouse, environ = built
    with duckdb.connect(str(warehouse)) as connection:
        # What the contract refuses never gets in: a response rate above 1 (a check constraint).
        with pytest.raises(duckdb.ConstraintException, match="customer_response_rate"):
            connection.execute(
                "UPDATE marts.relationship_kpis SET customer_response_rate = 1.5 "
                "WHERE record_id = 'o1' AND period = 'all'"
            )
        # What the suite checks: a negative count, and a trailing period of no day.
        connection.execute(
            "UPDATE marts.relationship_kpis SET meetings = -1 "
            "WHERE record_id = 'o1' AND period = 'all'"
        )
        connection.execute(
            "UPDATE marts.relationship_kpis SET period_days = 0 "
            "WHERE record_id = 'c2' AND period = 'trailing'"
        )
    folder = Path(environ["RELANALYTICS_HOME"]) / "published"
    before = published_record(folder)
    run, check, published = publish(environ)
    assert not published and published_record(folder) == before
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    metadata = {name: value.value for name, value in check.metadata.items()}
    assert (metadata["rows_validated"], metadata["failed_expectations"]) == (16, 2)
    assert metadata["unexpected_rows"] == 1 + 1
    assert "meetings" in metadata["failures"]
    samples = metadata["offending_rows_sample (up to 5 per expectation)"]
    (meetings,) = [rows for name, rows in samples.items() if "meetings" in name]
    assert [(r["record_id"], r["period"], r["meetings"]) for r in meetings] == [("o1", "all", -1)]
    (period,) = [rows for name, rows in samples.items() if "period_days" in name]
    # The record is the contact c2: a contact's id stays out of Dagster's storage.
    assert [(r["record_type"], r["record_id"], r["period_days"]) for r in period] == [
        ("contact", None, 0)
    ]

"""Nights as partitions: their windows, the landing days, the sensor and the clean-up of dead runs."""

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import dagster as dg
import duckdb
import pytest
from conftest import sensor_tick

from relanalytics_pipeline.cli.instance import ensure_dagster_home
from relanalytics_pipeline.definitions import defs
from relanalytics_pipeline.defs.automation.housekeeping import _alive, free_dead_runs
from relanalytics_pipeline.defs.ingest.landing import list_landing_files
from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.defs.partitions import Window, window_for_run
from relanalytics_pipeline.defs.run_settings import settings_for_run
from relanalytics_pipeline.defs.serve.publish import RECORD
from relanalytics_pipeline.defs.transform.assets import dbt_build_command, dbt_vars
from relanalytics_pipeline.settings import PROJECT_ROOT
from relanalytics_pipeline.warehouse import WAREHOUSE_POOL

D = dt.date(2026, 3, 31)


def test_a_run_window_comes_from_its_partition_or_range():
    assert window_for_run({}) is None
    one = window_for_run({"dagster/partition": "2026-03-31"})
    assert one == Window(dt.date(2026, 3, 31), dt.date(2026, 4, 1)) and one.as_of == D
    backfill = window_for_run({
        "dagster/asset_partition_range_start": "2026-03-01",
        "dagster/asset_partition_range_end": "2026-03-31",
    })  # fmt: skip
    assert backfill == Window(dt.date(2026, 3, 1), dt.date(2026, 4, 1)) and backfill.as_of == D
    environ = {"RELANALYTICS_AS_OF": "2026-01-01"}
    assert settings_for_run({"dagster/asset_partition_range_end": "2026-03-31",
                             "dagster/asset_partition_range_start": "2026-03-01"},
                            environ).as_of == D  # fmt: skip


def test_dbt_gets_the_window_and_as_of_its_last_day():
    environ = {"RELANALYTICS_AS_OF": "2026-01-01"}
    tags = {"dagster/asset_partition_range_start": "2026-03-30",
            "dagster/asset_partition_range_end": "2026-03-31"}  # fmt: skip
    settings = settings_for_run(tags, environ)
    assert dbt_vars(settings, tags) == {
        "as_of_date": "2026-03-31", "org_domains": "", "privacy_rules": "",
        "window_start": "2026-03-30", "window_end": "2026-04-01",
    }  # fmt: skip
    # Without partitions (a plain `dbt build` has none either): no window, everything.
    unpartitioned = dbt_vars(settings_for_run({}, environ), {})
    assert (unpartitioned["window_start"], unpartitioned["window_end"]) == (None, None)
    assert unpartitioned["as_of_date"] == "2026-01-01"
    with pytest.raises(dg.Failure, match="window_end"):
        dbt_vars(settings, tags, {"window_end": "2026-05-01"})


def test_dbt_gets_the_run_vars_from_the_environment_and_only_overrides_as_vars():
    """--vars that change every night would make dbt parse the whole project every night."""
    tags = {"dagster/partition": "2026-03-31"}
    settings = settings_for_run(tags, {"RELANALYTICS_ORG_DOMAINS": "acme.example"})
    args, environ = dbt_build_command(settings, dbt_vars(settings, tags), {})
    assert args == ["build", "--target", "duckdb", "--exclude-resource-type", "unit_test"]
    assert json.loads(environ["RELANALYTICS_RUN_VARS"]) == {
        "as_of_date": "2026-03-31", "org_domains": "acme.example", "privacy_rules": "",
        "window_start": "2026-03-31", "window_end": "2026-04-01",
    }  # fmt: skip
    assert environ["RELANALYTICS_AS_OF"] == "2026-03-31"
    overrides = {"period_days": 30}
    args, environ = dbt_build_command(settings, dbt_vars(settings, tags, overrides), overrides)
    assert args[-2:] == ["--vars", '{"period_days": 30}']
    assert json.loads(environ["RELANALYTICS_RUN_VARS"])["as_of_date"] == "2026-03-31"


def _touch(path: Path, text: str = "user_id,full_name,email,modified_at\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_night_sees_the_files_landed_by_its_end(tmp_path):
    users = tmp_path / "users"
    flat = _touch(users / "users.csv")
    day1 = _touch(users / "2026-03-30" / "part-1.csv")
    day2 = _touch(users / "2026-03-31" / "part-1.csv")
    later = _touch(users / "2026-04-01" / "part-1.csv")
    stray = _touch(users / "extra" / "x.csv")
    _touch(users / "2026-03-31" / "_SUCCESS")
    assert list_landing_files(users, through=dt.date(2026, 3, 30)) == [day1, stray, flat]
    assert list_landing_files(users, through=D) == [day1, day2, stray, flat]
    assert list_landing_files(users) == [day1, day2, later, stray, flat]


def test_a_file_in_a_folder_that_names_no_day_is_quarantined(tmp_path):
    landing = tmp_path / "landing"
    header = "user_id,full_name,email,modified_at\n"
    _touch(landing / "users" / "2026-03-31" / "a.csv", header + "u1,Ann,ann@x.example,2026-03-01\n")
    _touch(landing / "users" / "2026-3-31" / "b.csv", header + "u2,Bob,bob@x.example,2026-03-01\n")
    warehouse = tmp_path / "warehouse.duckdb"
    report = ingest_entity(warehouse, landing, "users", run_id="r1", through=D)
    by_file = {f.source_file: f for f in report.files}
    assert by_file["users/2026-03-31/a.csv"].rows_loaded == 1
    wrong = by_file["users/2026-3-31/b.csv"]
    assert wrong.status == "quarantined"
    assert "'2026-3-31', which is not a landing day" in wrong.reason


def _run(landing: Path, warehouse: Path, through: dt.date = D) -> None:
    """What the sensor's run does to the warehouse: load what landed by its day."""
    for entity in ("users", "activities"):
        ingest_entity(warehouse, landing, entity, run_id="r", through=through)


def test_the_sensor_starts_one_run_for_the_days_of_new_files(sensor_env):
    landing, warehouse, instance = sensor_env
    result = sensor_tick(instance)
    assert not result.run_requests and "holds every file" in result.skip_message

    _touch(landing / "users" / "users.csv")
    _touch(landing / "activities" / "2026-03-29" / "a.csv")
    _touch(landing / "activities" / "2026-03-30" / "a.csv")
    (request,) = sensor_tick(instance).run_requests
    # A range from the earliest landing day to the latest (a flat file lands on the as-of day).
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-29"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-03-31"
    _run(landing, warehouse)
    assert not sensor_tick(instance).run_requests  # nothing new since

    # A file for a day not over yet waits; a changed file starts its day's run.
    _touch(landing / "activities" / "2026-04-01" / "a.csv")
    result = sensor_tick(instance)
    assert not result.run_requests and "1 wait for their day to end" in result.skip_message
    _touch(landing / "activities" / "2026-03-30" / "a.csv", "activity_id\n")
    (request,) = sensor_tick(instance).run_requests
    assert request.partition_key == "2026-03-30"


def _dead_pid() -> int:
    process = subprocess.Popen(["sleep", "60"])
    process.kill()
    process.wait()
    return process.pid


def test_a_process_id_is_alive_only_for_the_process_that_recorded_it():
    assert _alive(os.getpid(), time.time())
    assert not _alive(_dead_pid(), time.time())
    # A live process that started after the id was recorded reuses it: the recorder is gone.
    assert not _alive(os.getpid(), time.time() - 10**6)


def _started_run(instance, pid: int) -> dg.DagsterRun:
    from dagster._core.events import EngineEventData

    run = instance.create_run_for_job(
        defs.resolve_job_def("everything"), status=dg.DagsterRunStatus.STARTED
    )
    instance.report_engine_event("process", run, EngineEventData.in_process(pid))
    instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, run.run_id, "crm_landing")
    return run


def test_a_dead_run_is_failed_and_its_pool_slot_freed(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 2)
        dead = _started_run(instance, _dead_pid())
        alive = _started_run(instance, os.getpid())

        assert free_dead_runs(instance, dg.get_dagster_logger()) == [dead.run_id]

        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
        info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
        assert {slot.run_id for slot in info.claimed_slots} == {alive.run_id}


# --- real runs: two nights, one backfill over both, and a run killed half-way ----------------

NIGHT_1, NIGHT_2 = "2026-03-31", "2026-04-01"


def _second_night_files(landing: Path) -> None:
    """What lands on 2026-04-01: e6 deleted, a call c9 scheduled for o2 with its parties."""
    _touch(landing / "activities" / NIGHT_2 / "changes.jsonl", "".join(
        json.dumps(record) + "\n" for record in (
            {"activity_id": "e6", "activity_type": "email", "status": "completed",
             "modified_at": "2026-04-01T08:00:00Z", "is_deleted": True},
            {"activity_id": "c9", "activity_type": "phone_call", "status": "open",
             "direction": "outgoing", "owner_id": "u2", "regarding_type": "opportunity",
             "regarding_id": "o2", "scheduled_start": "2026-04-03T10:00:00Z",
             "modified_at": "2026-04-01T12:00:00Z"},
        )
    ))  # fmt: skip
    _touch(
        landing / "activity_parties" / NIGHT_2 / "changes.csv",
        "activity_id,role,party_type,party_id,address\nc9,from,user,u2,\nc9,to,contact,c3,\n",
    )


def _environ(home: Path, landing: Path) -> dict[str, str]:
    from support.runs import environment

    environ = environment(home.parent, landing)
    environ["RELANALYTICS_HOME"] = str(home)
    environ["DAGSTER_HOME"] = str(ensure_dagster_home(home / "dagster"))
    return environ


def _marts(home: Path) -> dict[str, list[str]]:
    from conftest import query

    warehouse = home / "warehouse.duckdb"
    tables = [t for (t,) in query(warehouse, "SELECT table_name FROM information_schema.tables "
                                             "WHERE table_schema = 'marts' ORDER BY 1")]  # fmt: skip
    return {t: sorted(map(repr, query(warehouse, f"SELECT * FROM marts.{t}"))) for t in tables}


def _dagster_cli(environ: dict[str, str], *partition: str) -> subprocess.Popen:
    """`dagster asset materialize` of everything, in a process group of its own."""
    command = [
        str(Path(sys.executable).with_name("dagster")), "asset", "materialize",
        "-m", "relanalytics_pipeline.definitions", "--select", "*", *partition,
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=environ, cwd=PROJECT_ROOT, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-4000:]


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory):
    """The hand-made CRM run night by night (in process), its marts after each night."""
    from conftest import write_hand_made_landing

    tmp_path = tmp_path_factory.mktemp("nights")
    landing = write_hand_made_landing(tmp_path / "landing")
    _second_night_files(landing)
    home = tmp_path / "nightly"
    marts = {}
    with mock.patch.dict(os.environ, _environ(home, landing)):
        for night in (NIGHT_1, NIGHT_2):
            result = dg.materialize(
                defs.assets, resources=defs.resources, selection="*", partition_key=night
            )
            assert result.success
            marts[night] = _marts(home)
            if night == NIGHT_1:  # what BI tools read after the first night, kept for later
                shutil.copytree(home / "published", tmp_path / "published-1", symlinks=True)
    return tmp_path, landing, marts


def test_each_night_sees_only_what_had_landed(two_nights):
    _, _, marts = two_nights
    first, second = marts[NIGHT_1], marts[NIGHT_2]
    assert first.keys() == second.keys() and all(first.values())
    # e6 (an email of o1) counts on the first night and is gone on the second.
    o1 = "'opportunity', 'o1'"
    assert [r for r in first["relationship_kpis"] if o1 in r] != [
        r for r in second["relationship_kpis"] if o1 in r
    ]


def _published(home: Path) -> tuple[set, dict[str, list[str]]]:
    """The published DuckDB file's record (run, as-of day) and its marts' rows."""
    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as connection:
        record = set(connection.execute(f"SELECT run_id, as_of_date FROM {RECORD}").fetchall())
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            f"AND table_name <> '{RECORD}' ORDER BY 1"
        ).fetchall()
        rows = {
            t: sorted(map(repr, connection.execute(f"SELECT * FROM main.{t}").fetchall()))
            for (t,) in tables
        }
    return record, rows


def test_a_killed_backfill_then_its_rerun_equal_the_two_nights(two_nights):
    """A backfill of both nights as one run, killed with SIGKILL in its dbt step, leaves what BI
    tools read as it was, and a run marked STARTED holding the warehouse pool's slot; the rerun
    frees it, and its marts, working and published, are those of the two nights run one after
    the other."""
    tmp_path, landing, marts = two_nights
    home = tmp_path / "backfill"
    environ = _environ(home, landing)
    # What BI tools read before the backfill: the first night's publication.
    shutil.copytree(tmp_path / "published-1", home / "published", symlinks=True)
    before = _published(home)
    assert {as_of for _, as_of in before[0]} == {dt.date.fromisoformat(NIGHT_1)}
    assert before[1] == marts[NIGHT_1]
    both = ("--partition-range", f"{NIGHT_1}...{NIGHT_2}")
    killed = _dagster_cli(environ, *both)
    with dg.DagsterInstance.from_config(environ["DAGSTER_HOME"]) as instance:
        run = _wait_for_step(instance, "relanalytics_dbt", killed)
        time.sleep(2)  # dbt is writing the warehouse by now
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        held = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots
        assert [slot.run_id for slot in held] == [run.run_id]
        assert _published(home) == before

        _finish(_dagster_cli(environ, *both))

        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        (rerun,) = instance.get_runs(limit=1)
    assert _marts(home) == marts[NIGHT_2]
    record, published = _published(home)
    assert record == {(rerun.run_id, dt.date.fromisoformat(NIGHT_2))}
    assert published == marts[NIGHT_2]


def _wait_for_step(instance, step: str, process: subprocess.Popen) -> dg.DagsterRun:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0][-4000:]
        for run in instance.get_runs(limit=1):
            started = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
            if any(entry.step_key == step for entry in started):
                return run
        time.sleep(0.5)
    raise AssertionError(f"step {step} did not start within 300 s")

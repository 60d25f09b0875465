"""The warehouse reflects the landing folder as it is now: whatever order files arrived, changed,
shrank or went in, the same rows as a fresh load; nothing outside the folder is read, nothing in it
is passed over in silence, a file still being written waits; the sensor starts runs only for what
the warehouse lacks."""

import datetime as dt
import logging
import os
import random
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import query, sensor_tick

from relanalytics_pipeline.cli.generator import generate_dataset
from relanalytics_pipeline.defs.ingest.assets import file_metadata, unexpected_in_landing
from relanalytics_pipeline.defs.ingest.exports import dataverse
from relanalytics_pipeline.defs.ingest.exports.mapping import ExportSettings, ingest_export
from relanalytics_pipeline.defs.ingest.landing import read_landing_file
from relanalytics_pipeline.defs.ingest.load import ingest_entity, ingest_files
from relanalytics_pipeline.raw_contract import LOAD_ORDER

HEADER = "activity_id,activity_type,status,subject,modified_at\n"
LINEAGE = ("_run_id", "_loaded_at")
D = dt.date(2026, 3, 31)


def activity(number: int, subject: str = "hello", modified: str = "2026-03-01T10:00:00Z") -> str:
    return f"a{number},email,completed,{subject},{modified}\n"


def write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(lines))


def load(landing: Path, warehouse: Path, now: dt.datetime | None = None):
    return ingest_entity(warehouse, landing, "activities", run_id="r", now=now)


def state(warehouse: Path) -> tuple[list, list]:
    """crm.activities and its rejections, without what differs between loads (run, time)."""
    rows = query(
        warehouse,
        "SELECT * EXCLUDE (_run_id, _loaded_at) FROM crm.activities ORDER BY ALL",
    )
    rejected = query(
        warehouse,
        "SELECT entity, source_file, row_number, reason, raw_record FROM quarantine.rejected_rows "
        "ORDER BY ALL",
    )
    return rows, rejected


def fresh_state(landing: Path, tmp_path: Path) -> tuple[list, list]:
    """The state of a warehouse that loads the landing folder for the first time. Emptied rather
    than made anew: creating a DuckDB file and its tables took 0.3-0.5 s here, a load 0.03 s."""
    fresh = tmp_path / "fresh.duckdb"
    if fresh.exists():
        with duckdb.connect(str(fresh)) as connection:
            for (table,) in connection.execute(
                "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
                "WHERE schema_name IN ('crm', 'ingest', 'quarantine')"
            ).fetchall():
                connection.execute(f"DELETE FROM {table}")
    load(landing, fresh)
    return state(fresh)


def test_rows_of_a_shrunk_later_copy_come_back_from_the_earlier_file(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    rows = [activity(n) for n in range(1, 121)]
    write(landing / "activities" / "a.csv", rows)
    write(landing / "activities" / "zz-copy.csv", rows[:100])
    report = load(landing, warehouse)
    assert report.total("rows_duplicate") == 100
    assert query(
        warehouse, "SELECT _source_file, COUNT(*) FROM crm.activities GROUP BY 1 ORDER BY 1"
    ) == [("activities/a.csv", 20), ("activities/zz-copy.csv", 100)]

    # The copy shrinks to its first row: the 99 others are a.csv's again, loaded anew.
    write(landing / "activities" / "zz-copy.csv", rows[:1])
    second = dt.datetime(2026, 4, 2, 3, 0)
    load(landing, warehouse, now=second)
    assert query(
        warehouse,
        "SELECT _source_file, _loaded_at = ?, COUNT(*) FROM crm.activities GROUP BY 1, 2 "
        "ORDER BY 1, 2",
        [second],
    ) == [("activities/a.csv", False, 20), ("activities/a.csv", True, 99),
          ("activities/zz-copy.csv", True, 1)]  # fmt: skip
    assert state(warehouse) == fresh_state(landing, tmp_path)
    # The incremental models learn of the 100 records whose rows the reload removed.
    assert query(
        warehouse, "SELECT COUNT(DISTINCT record_id) FROM ingest.removed_rows WHERE removed_at = ?",
        [second],
    ) == [(100,)]  # fmt: skip

    # Gone altogether: a.csv's row takes the last version's place too; gone as well: nothing.
    (landing / "activities" / "zz-copy.csv").unlink()
    report = load(landing, warehouse)
    assert [(f.source_file, f.status) for f in report.files] == [
        ("activities/zz-copy.csv", "removed"),
        ("activities/a.csv", "unchanged"),
    ]
    assert query(warehouse, "SELECT DISTINCT _source_file FROM crm.activities") == [
        ("activities/a.csv",)
    ]
    assert state(warehouse) == fresh_state(landing, tmp_path)
    (landing / "activities" / "a.csv").unlink()
    load(landing, warehouse)
    assert state(warehouse) == ([], [])
    assert query(warehouse, "SELECT COUNT(*) FROM ingest.files") == [(0,)]


def test_any_sequence_of_changes_leaves_what_a_fresh_load_gives(tmp_path):
    """Files share a dozen records in two versions each, with differing content (conflicts) and
    now and then a bad row; after each step the warehouse must equal a fresh load's."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    names = ["a.csv", "m.csv", "zz.csv", "2026-03-30/p.csv", "2026-03-31/p.csv"]
    rng = random.Random(20261205)

    def random_rows() -> list[str]:
        rows = []
        for _ in range(rng.randint(1, 8)):
            if rng.random() < 0.1:
                rows.append(f"a{rng.randint(1, 12)},fax,completed,bad,2026-03-01\n")
            else:
                rows.append(
                    activity(
                        rng.randint(1, 12),
                        subject=rng.choice(["x", "y", "z"]),
                        modified=rng.choice(["2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z"]),
                    )
                )
        return rows

    operations = []
    for _ in range(20):
        name = rng.choice(names)
        path = landing / "activities" / name
        if not path.exists():
            operation = "add"
            write(path, random_rows())
        else:
            operation = rng.choice(["change", "shrink", "delete"])
            if operation == "change":
                write(path, random_rows())
            elif operation == "shrink":
                lines = path.read_text().splitlines(keepends=True)[1:]
                write(path, lines[: rng.randint(0, len(lines) - 1)])
            else:
                path.unlink()
        operations.append((operation, name))
        load(landing, warehouse)
        assert state(warehouse) == fresh_state(landing, tmp_path), operations
    # The sequence did what it is for: every kind of step, winners' files among them.
    assert {operation for operation, _ in operations} == {"add", "change", "shrink", "delete"}


def test_a_misspelled_entity_folder_and_a_stray_file_are_reported(tmp_path):
    landing = tmp_path / "landing"
    write(landing / "activity" / "a.csv", [activity(1)])
    write(landing / "activities" / "a.csv", [activity(2)])
    (landing / "dataverse" / "email").mkdir(parents=True)  # a CRM export: known
    (landing / "notes.txt").write_text("todo")
    (landing / ".DS_Store").write_text("")  # hidden: a file no one meant to load
    (landing / "archive").symlink_to(tmp_path)  # a link, to a folder outside
    unexpected = unexpected_in_landing(logging.getLogger("test"), landing)
    folders = ", ".join(
        sorted(
            ["users", "accounts", "contacts", "leads", "opportunities", "activities",
             "activity_parties", "dataverse", "salesforce"]
        )
    )  # fmt: skip
    assert [(f.source_file, f.status, f.reason) for f in unexpected] == [
        ("activity", "ignored",
         f"folder is not an entity or CRM export folder (expected one of {folders})"),
        ("archive", "ignored", f"symbolic link to {tmp_path}: links are not followed"),
        ("notes.txt", "ignored",
         f"file is not an entity or CRM export folder (expected one of {folders})"),
    ]  # fmt: skip
    metadata = file_metadata([load(landing, tmp_path / "w.duckdb")], unexpected)
    assert (metadata["files_loaded"], metadata["files_ignored"]) == (1, 3)
    assert "| activity |  | ignored |" in metadata["files"].value


def test_symbolic_links_are_never_followed_and_are_reported(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    outside = tmp_path / "elsewhere"
    write(outside / "good.csv", [activity(9)])
    write(outside / "2026-03-30" / "day.csv", [activity(8)])
    write(landing / "activities" / "a.csv", [activity(1)])
    folder = landing / "activities"
    (folder / "passwd.csv").symlink_to("/etc/passwd")
    (folder / "good.csv").symlink_to(outside / "good.csv")
    (folder / "2026-03-30").symlink_to(outside / "2026-03-30")
    (folder / "again.csv").symlink_to(folder / "a.csv")  # inside, yet the same rows twice
    os.mkfifo(folder / "pipe.csv")  # reading it would wait for a writer forever
    page = landing / "dataverse" / "email" / "p1.json"
    page.parent.mkdir(parents=True)
    page.symlink_to("/etc/passwd")

    report = load(landing, warehouse)
    assert [(f.source_file, f.status, f.reason) for f in report.files] == [
        ("activities/2026-03-30", "ignored",
         f"symbolic link to {outside / '2026-03-30'}: links are not followed"),
        ("activities/again.csv", "ignored",
         f"symbolic link to {folder / 'a.csv'}: links are not followed"),
        ("activities/good.csv", "ignored",
         f"symbolic link to {outside / 'good.csv'}: links are not followed"),
        ("activities/passwd.csv", "ignored", "symbolic link to /etc/passwd: links are not followed"),
        ("activities/pipe.csv", "ignored", "not a regular file or folder"),
        ("activities/a.csv", "loaded", None),
    ]  # fmt: skip
    assert query(warehouse, "SELECT activity_id FROM crm.activities") == [("a1",)]
    assert query(warehouse, "SELECT source_file FROM ingest.files") == [("activities/a.csv",)]
    assert query(warehouse, "SELECT COUNT(*) FROM quarantine.rejected_rows") == [(0,)]

    settings = ExportSettings({"dataverse": dataverse.DEFAULT_MAPS})
    email = next(t for t in dataverse.TABLES if t.name == "email")
    export = ingest_export(warehouse, landing, email, dataverse.read_file, settings, "r")
    assert [(f.source_file, f.status) for f in export.files] == [
        ("dataverse/email/p1.json", "ignored")
    ]
    assert query(warehouse, "SELECT COUNT(*) FROM quarantine.rejected_rows") == [(0,)]

    # A file once loaded that becomes a link is gone: its rows go, the link is reported.
    (folder / "a.csv").rename(outside / "a.csv")
    (folder / "a.csv").symlink_to(outside / "a.csv")
    statuses = [(f.source_file, f.status) for f in load(landing, warehouse).files]
    assert ("activities/a.csv", "ignored") in statuses
    assert ("activities/a.csv", "removed") in statuses
    assert query(warehouse, "SELECT COUNT(*) FROM crm.activities") == [(0,)]


def test_a_file_growing_while_it_is_read_waits_for_a_later_run(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    path = landing / "activities" / "growing.csv"
    write(path, [activity(n) for n in range(1, 551)])
    write(landing / "activities" / "done.csv", [activity(5000)])

    def read_while_a_writer_appends(file: Path):
        raw = read_landing_file(file)
        if file == path:
            with file.open("a") as handle:  # the writer's next rows land meanwhile
                handle.writelines(activity(n) for n in range(551, 2001))
        return raw

    report = ingest_files(
        warehouse, "activities", landing, "activities", read_while_a_writer_appends, "r1"
    )
    assert [(f.source_file, f.status, f.rows_loaded) for f in report.files] == [
        ("activities/done.csv", "loaded", 1),
        ("activities/growing.csv", "waiting", 0),
    ]
    assert report.files[1].reason.startswith("file changed while it was read")
    assert file_metadata([report])["files_waiting"] == 1
    assert query(warehouse, "SELECT COUNT(*) FROM crm.activities") == [(1,)]
    assert query(warehouse, "SELECT COUNT(*) FROM ingest.files") == [(1,)]

    # Complete by the next run: all 2,000 rows.
    report = load(landing, warehouse)
    assert {f.source_file: f.rows_loaded for f in report.files} == {
        "activities/done.csv": 0,
        "activities/growing.csv": 2000,
    }
    assert query(warehouse, "SELECT COUNT(*) FROM crm.activities") == [(2001,)]


def test_a_parquet_file_rewritten_or_gone_before_its_rows_are_read_waits(tmp_path):
    """The load reads a Parquet file's rows after its footer, when DuckDB opens the file: one a
    writer rewrites in place meanwhile, or one gone meanwhile, waits for a later run, and nothing
    of it loads or is quarantined."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    folder = landing / "activities"
    folder.mkdir(parents=True)

    def activities(*numbers: int) -> pa.Table:
        rows = [activity(n).strip().split(",") for n in numbers]
        return pa.table({c: [r[i] for r in rows] for i, c in enumerate(HEADER.strip().split(","))})

    pq.write_table(activities(1, 2), folder / "rewritten.parquet")
    pq.write_table(activities(3), folder / "gone.parquet")
    pq.write_table(activities(4), folder / "kept.parquet")

    def read_while_a_writer_works(file: Path):
        raw = read_landing_file(file, parquet_in_file=True)
        if file.name == "rewritten.parquet":
            pq.write_table(activities(1, 2, 5, 6), file)  # the same file, written again
        elif file.name == "gone.parquet":
            file.unlink()
        return raw

    report = ingest_files(
        warehouse, "activities", landing, "activities", read_while_a_writer_works, "r1"
    )
    assert [(f.source_file, f.status, f.rows_loaded) for f in report.files] == [
        ("activities/gone.parquet", "waiting", 0),
        ("activities/kept.parquet", "loaded", 1),
        ("activities/rewritten.parquet", "waiting", 0),
    ]
    assert query(warehouse, "SELECT activity_id FROM crm.activities") == [("a4",)]
    assert query(warehouse, "SELECT COUNT(*) FROM quarantine.rejected_rows") == [(0,)]

    # The next run loads the rewritten file as it is now.
    report = load(landing, warehouse)
    assert {f.source_file: (f.status, f.rows_loaded) for f in report.files} == {
        "activities/kept.parquet": ("unchanged", 0),
        "activities/rewritten.parquet": ("loaded", 4),
    }


# --- the sensor ---------------------------------------------------------------------------------


def test_the_sensor_starts_no_run_for_files_the_warehouse_holds(sensor_env):
    landing, warehouse, instance = sensor_env
    write(landing / "activities" / "2026-03-30" / "a.csv", [activity(1)])
    write(landing / "activities" / "b.csv", [activity(2)])
    (landing / "notes").mkdir()
    (landing / "notes" / "x.csv").write_text("not for the warehouse")  # ignored: never a run
    (request,) = sensor_tick(instance).run_requests  # nothing loaded yet
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-30"

    ingest_entity(warehouse, landing, "activities", run_id="demo", through=D)
    result = sensor_tick(instance)
    assert not result.run_requests
    assert "holds every file" in result.skip_message

    # Touched but unchanged: a run finds nothing to load, records the new time, and rests.
    os.utime(landing / "activities" / "b.csv", ns=(1, 1_000_000_000))
    (request,) = sensor_tick(instance).run_requests
    assert request.partition_key == D.isoformat()
    ingest_entity(warehouse, landing, "activities", run_id="r2", through=D)
    assert not sensor_tick(instance).run_requests

    # A file gone from the landing folder: a run takes its rows out.
    (landing / "activities" / "2026-03-30" / "a.csv").unlink()
    (request,) = sensor_tick(instance).run_requests
    assert request.partition_key == D.isoformat()
    ingest_entity(warehouse, landing, "activities", run_id="r3", through=D)
    assert not sensor_tick(instance).run_requests


def test_after_the_demo_a_new_instance_starts_no_run(sensor_env):
    """`scripts/demo.sh` loads the sample it generates; `relanalytics dev` then starts a Dagster
    instance whose sensor has never ticked."""
    landing, warehouse, instance = sensor_env
    generate_dataset(landing, 200, seed=1, as_of=D)
    for entity in LOAD_ORDER:
        ingest_entity(warehouse, landing, entity, run_id="demo", through=D)
    result = sensor_tick(instance)
    assert not result.run_requests
    assert result.skip_message.startswith("The warehouse holds every file of")


def test_the_sensor_waits_while_a_run_holds_the_warehouse(sensor_env):
    landing, warehouse, instance = sensor_env
    write(landing / "activities" / "b.csv", [activity(2)])
    ingest_entity(warehouse, landing, "activities", run_id="r1", through=D)
    write(landing / "activities" / "c.csv", [activity(3)])
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); sys.stdin.read()", str(warehouse)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "ready\n"
        result = sensor_tick(instance)
        assert not result.run_requests and "is in use by a run" in result.skip_message
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    (request,) = sensor_tick(instance).run_requests
    assert request.partition_key == D.isoformat()


def test_each_ingest_step_opens_the_warehouse_once_for_all_its_loads(
    landing, tmp_path, monkeypatch
):
    """The export steps (21 tables, none in the hand-made landing) and crm_landing (seven
    entities) each load through one connection, then crm_landing's checks read through one more:
    four openings of the warehouse, not one per table and entity (29). Every file still loads."""
    import dagster as dg

    from relanalytics_pipeline import warehouse
    from relanalytics_pipeline.defs.ingest.assets import crm_landing
    from relanalytics_pipeline.defs.ingest.exports.assets import EXPORT_ASSETS
    from relanalytics_pipeline.defs.run_settings import RunSettings

    opened = []
    real_open = warehouse._open_waiting

    def counting_open(path, read_only, wait_seconds):
        opened.append("read" if read_only else "write")
        return real_open(path, read_only, wait_seconds)

    monkeypatch.setattr(warehouse, "_open_waiting", counting_open)
    monkeypatch.setenv("RELANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELANALYTICS_LANDING_DIR", str(landing))
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-03-31")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [*EXPORT_ASSETS, crm_landing],
            resources={"settings": RunSettings()},
            instance=instance,
            partition_key="2026-03-31",
        )
    assert result.success
    assert opened == ["write", "write", "write", "read"]
    loaded = {
        m.asset_key.to_user_string(): m.metadata["rows_loaded"].value
        for m in result.asset_materializations_for_node("crm_landing")
    }
    # The hand-made landing's versions, as test_end_to_end counts them.
    assert loaded["crm/activities"] == 20 and loaded["crm/contacts"] == 4

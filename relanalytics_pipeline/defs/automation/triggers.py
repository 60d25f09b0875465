"""When runs start: every night for the day that ended, and whenever new files land.

Both start the same partitioned job; its runs are idempotent (a file already loaded unchanged is
skipped, the marts are recomputed as of the run's day), so a night run twice, or a sensor run
beside the schedule's, changes nothing.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path

import dagster as dg

from relanalytics_pipeline.defs.automation.housekeeping import free_dead_runs
from relanalytics_pipeline.defs.ingest.assets import landing_folders
from relanalytics_pipeline.defs.ingest.landing import file_stamp, landing_day, scan_landing_folder
from relanalytics_pipeline.defs.partitions import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    nightly_partitions,
)
from relanalytics_pipeline.settings import Settings
from relanalytics_pipeline.warehouse import WarehouseLockedError, connect, table_exists

everything_job = dg.define_asset_job(
    "everything",
    selection=dg.AssetSelection.all(),
    partitions_def=nightly_partitions,
    description="Ingest, transform, learn, report and every check: the whole pipeline, for one "
    "night (a partition) or a range of them as one run (a backfill).",
)


@dg.schedule(
    job=everything_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    # Schedules are stopped by default; this one is the product's heartbeat.
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night at 02:00 UTC, the partition of the day that just ended.",
)
def nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    free_dead_runs(context.instance, context.log)
    day = context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    return dg.RunRequest(run_key=day.isoformat(), partition_key=day.isoformat())


def landing_inventory(landing: Path) -> dict[str, tuple[int, int]]:
    """Every file the ingest would read (path inside the landing folder) with its size and
    modification time: the same listing as the ingest's, so that nothing the ingest ignores
    starts a run."""
    inventory = {}
    for folder in landing_folders():
        for path in scan_landing_folder(landing / folder).files:
            try:
                inventory[path.relative_to(landing).as_posix()] = file_stamp(path)
            except FileNotFoundError:  # gone since it was listed
                continue
    return inventory


def loaded_files(warehouse: Path) -> dict[str, tuple | None] | None:
    """Each file the warehouse has loaded (its path inside the landing folder) with the size and
    modification time it had then (None when unknown), or None when a run holds the warehouse.

    Read-only and brief: DuckDB refuses a writer while any other process has the file open, and
    the pipeline's writers wait for such a reader (warehouse.py)."""
    if not warehouse.exists():
        return {}
    try:
        # Never wait for the lock: a running pipeline holds it for minutes; the next tick looks.
        with connect(warehouse, read_only=True, wait_seconds=0) as connection:
            if not table_exists(connection, "ingest.files"):
                return {}
            columns = {
                name
                for (name,) in connection.execute(
                    "SELECT column_name FROM duckdb_columns() "
                    "WHERE schema_name = 'ingest' AND table_name = 'files'"
                ).fetchall()
            }
            stamp = (
                "file_size, file_mtime_ns"
                if {"file_size", "file_mtime_ns"} <= columns
                else "NULL, NULL"  # loaded before the columns existed: one run records them
            )
            rows = connection.execute(f"SELECT source_file, {stamp} FROM ingest.files").fetchall()
    except WarehouseLockedError:  # held by a running pipeline
        return None
    loaded: dict[str, tuple | None] = {}
    for source_file, size, mtime_ns in rows:
        # An export file feeding two entities has a row for each: both must agree.
        stamp_of = (size, mtime_ns) if size is not None else None
        loaded[source_file] = stamp_of if loaded.get(source_file, stamp_of) == stamp_of else None
    return loaded


def _day_of(relative: str, default: dt.date) -> dt.date:
    """The landing day of a file: its day subfolder's (`<entity>/2026-06-30/x.csv`), else the
    default (the last complete day) for a file straight in an entity's folder."""
    days = [landing_day(part) for part in relative.split("/")[:-1]]
    return next((day for day in days if day), default)


@dg.sensor(
    job=everything_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a run when the landing folder holds files the warehouse has not loaded as "
    "they are (new, changed or gone): the partition of their landing day (a range of days as one "
    "run when several landed).",
)
def landing_files(context: dg.SensorEvaluationContext):
    # A tick is no run (no tags, no run to fail): it reads the environment as a command does.
    settings = Settings.from_env()
    last_partition = dt.date.fromisoformat(nightly_partitions.get_last_partition_key())
    last_day = min(settings.as_of, last_partition)
    loaded = loaded_files(settings.warehouse)
    if loaded is None:
        return dg.SkipReason(
            f"The warehouse {settings.warehouse} is in use by a run; looking again at the next tick"
        )
    current = landing_inventory(settings.effective_landing_dir)
    # What the warehouse does not hold as it is in the landing folder: new or changed files, and
    # files gone since they were loaded (their rows must leave; they count for the last day).
    changed = {path: stamp for path, stamp in current.items() if loaded.get(path) != stamp}
    gone = {path: stamp for path, stamp in loaded.items() if path not in current}
    days = {path: _day_of(path, last_day) for path in changed}
    days |= {path: last_day for path in gone}
    # A day still under way is not a partition yet: its files wait for the night after it.
    ready = {path for path, day in days.items() if day <= last_day}
    if not ready:
        return dg.SkipReason(
            f"The warehouse holds every file of {settings.effective_landing_dir}"
            + (f" ({len(days)} wait for their day to end)" if days else "")
        )
    free_dead_runs(context.instance, context.log)
    first, last = min(days[p] for p in ready), max(days[p] for p in ready)
    state = sorted((p, current.get(p), loaded.get(p)) for p in ready)
    run_key = hashlib.sha256(json.dumps(state).encode()).hexdigest()
    if first == last:
        return dg.RunRequest(run_key=run_key, partition_key=last.isoformat())
    return dg.RunRequest(
        run_key=run_key,
        tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
    )

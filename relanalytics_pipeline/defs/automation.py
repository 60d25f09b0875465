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

from relanalytics_pipeline.defs.housekeeping import free_dead_runs
from relanalytics_pipeline.defs.partitions import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    nightly_partitions,
)
from relanalytics_pipeline.lib.landing import is_hidden, landing_day
from relanalytics_pipeline.settings import Settings

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


def landing_inventory(landing: Path) -> dict[str, str]:
    """Every landing file (path inside the landing folder) with its size and modification time."""
    if not landing.is_dir():
        return {}
    inventory = {}
    for path in landing.rglob("*"):
        relative = path.relative_to(landing)
        if path.is_file() and not is_hidden(relative):
            stat = path.stat()
            inventory[relative.as_posix()] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return inventory


def _day_of(relative: str, default: dt.date) -> dt.date:
    """The landing day of a file: its day subfolder's (`<entity>/2026-06-30/x.csv`), else the
    default (the last complete day) for a file straight in an entity's folder."""
    days = [landing_day(part) for part in relative.split("/")[:-1]]
    return next((day for day in days if day), default)


@dg.sensor(
    job=everything_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a run when files land in the landing folder, or change there: the "
    "partition of their landing day (a range of days as one run when several landed).",
)
def landing_files(context: dg.SensorEvaluationContext):
    settings = Settings.from_env()
    last_partition = dt.date.fromisoformat(nightly_partitions.get_last_partition_key())
    last_day = min(settings.as_of, last_partition)
    seen = json.loads(context.cursor) if context.cursor else {}
    current = landing_inventory(settings.effective_landing_dir)
    changed = {path: stamp for path, stamp in current.items() if seen.get(path) != stamp}
    days = {path: _day_of(path, last_day) for path in changed}
    # A day still under way is not a partition yet: its files wait for the night after it.
    ready = {path for path, day in days.items() if day <= last_day}
    if not ready:
        return dg.SkipReason(
            f"No new or changed files in {settings.effective_landing_dir}"
            + (f" ({len(changed)} wait for their day to end)" if changed else "")
        )
    free_dead_runs(context.instance, context.log)
    first, last = min(days[p] for p in ready), max(days[p] for p in ready)
    run_key = hashlib.sha256(json.dumps(sorted((p, current[p]) for p in ready)).encode())
    if first == last:
        request = dg.RunRequest(run_key=run_key.hexdigest(), partition_key=last.isoformat())
    else:
        request = dg.RunRequest(
            run_key=run_key.hexdigest(),
            tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
        )
    context.update_cursor(json.dumps({**seen, **{p: current[p] for p in ready}}))
    return request

"""The nightly run: everything, as of the day that just ended."""

import datetime as dt

import dagster as dg

from relanalytics_pipeline.settings import AS_OF_TAG

everything_job = dg.define_asset_job(
    "everything",
    selection=dg.AssetSelection.all(),
    description="Ingest, transform and every check: the whole pipeline.",
)


@dg.schedule(
    job=everything_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    # Schedules are stopped by default; this one is the product's heartbeat.
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night at 02:00 UTC, everything as of the day that just ended.",
)
def nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    as_of = context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    return dg.RunRequest(run_key=as_of.isoformat(), tags={AS_OF_TAG: as_of.isoformat()})

"""The code location: assets from each domain, the nightly schedule and the landing sensor, and
the executor policy."""

import dagster as dg

from relanalytics_pipeline.defs.automation.housekeeping import in_process_freeing_dead_runs
from relanalytics_pipeline.defs.automation.triggers import everything_job, landing_files, nightly
from relanalytics_pipeline.defs.ingest.assets import crm_landing
from relanalytics_pipeline.defs.ingest.exports.assets import EXPORT_ASSETS
from relanalytics_pipeline.defs.learn.assets import similar_deals_assets
from relanalytics_pipeline.defs.learn.resources import MODEL_IO_MANAGER, ModelStore
from relanalytics_pipeline.defs.privacy.assets import privacy_exclusions
from relanalytics_pipeline.defs.privacy.jobs import erase_person_job
from relanalytics_pipeline.defs.quality.checks import marts_checks
from relanalytics_pipeline.defs.reports.assets import (
    deal_tracking_chart,
    deal_warning_outcomes,
    health_score_diagnostic,
)
from relanalytics_pipeline.defs.run_settings import RunSettings
from relanalytics_pipeline.defs.serve.assets import published_marts
from relanalytics_pipeline.defs.transform.assets import relanalytics_dbt
from relanalytics_pipeline.defs.transform.resources import dbt_project, dbt_resource

# Every step of a run in the run's own process, one after the other. The steps take turns on the
# warehouse anyway (one writer: the pool `duckdb_warehouse`, which the in-process executor honours
# too), so a process per step only added its start-up: each would load the definitions and their
# imports again. Before the first step it frees what killed runs still hold
# (defs/automation/housekeeping.py).
executor = in_process_freeing_dead_runs

# The run's settings, read and checked once as it starts. Partial, as Dagster shares a partial
# resource by its key with the resources that nest it (the model store): a plain one would be
# set up once more for each of them.
settings = RunSettings.configure_at_launch()

defs = dg.Definitions(
    assets=[
        crm_landing,
        *EXPORT_ASSETS,
        privacy_exclusions,
        relanalytics_dbt,
        similar_deals_assets,
        deal_tracking_chart,
        health_score_diagnostic,
        deal_warning_outcomes,
        published_marts,
    ],
    asset_checks=marts_checks(),
    jobs=[everything_job, erase_person_job],
    schedules=[nightly],
    sensors=[landing_files],
    resources={
        "dbt": dbt_resource(dbt_project),
        "settings": settings,
        MODEL_IO_MANAGER: ModelStore(settings=settings),
    },
    executor=executor,
)

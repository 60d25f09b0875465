"""The code location: assets from each domain, the nightly schedule and the landing sensor, and
the executor policy."""

import dagster as dg

from relanalytics_pipeline.defs.automation import everything_job, landing_files, nightly
from relanalytics_pipeline.defs.housekeeping import multiprocess_freeing_dead_runs
from relanalytics_pipeline.defs.ingest.assets import crm_landing
from relanalytics_pipeline.defs.ingest.exports import EXPORT_ASSETS
from relanalytics_pipeline.defs.learn.assets import similar_deals_assets
from relanalytics_pipeline.defs.learn.resources import MODEL_IO_MANAGER, ModelStore
from relanalytics_pipeline.defs.quality.checks import marts_checks
from relanalytics_pipeline.defs.reports.assets import deal_tracking_chart, health_score_diagnostic
from relanalytics_pipeline.defs.serve.assets import published_marts
from relanalytics_pipeline.defs.transform.assets import relanalytics_dbt
from relanalytics_pipeline.defs.transform.resources import dbt_project, dbt_resource
from relanalytics_pipeline.lib.warehouse import WAREHOUSE_TAG

# The multiprocess executor, limited to one warehouse writer at a time within a run. The pool does
# the same across runs, but only on an instance with pool limits (the project's own DAGSTER_HOME);
# this keeps `dagster asset materialize` on a temporary instance safe as well. Before any step, it
# frees the pool slots that killed runs still hold (defs/housekeeping.py).
((tag_key, tag_value),) = WAREHOUSE_TAG.items()
executor = multiprocess_freeing_dead_runs.configured(
    {"tag_concurrency_limits": [{"key": tag_key, "value": tag_value, "limit": 1}]}
)

defs = dg.Definitions(
    assets=[
        crm_landing,
        *EXPORT_ASSETS,
        relanalytics_dbt,
        similar_deals_assets,
        deal_tracking_chart,
        health_score_diagnostic,
        published_marts,
    ],
    asset_checks=marts_checks(),
    jobs=[everything_job],
    schedules=[nightly],
    sensors=[landing_files],
    resources={"dbt": dbt_resource(dbt_project), MODEL_IO_MANAGER: ModelStore()},
    executor=executor,
)

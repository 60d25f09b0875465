"""Reports drawn from the marts: the deal-tracking chart, the health score's diagnostic and the
deal warnings' outcomes.

All read the warehouse, and DuckDB lets nobody open the file while another process writes it:
they join the warehouse pool like the writers and hold the connection only while they read.
With the Spark engine they read the same SQL through a Spark session, the few rows they need
handed to pandas (relanalytics_pipeline/spark.py, warehouse_connection).
"""

import base64

import dagster as dg
from pydantic import Field

from relanalytics_pipeline.defs.partitions import ONE_RUN_PER_RANGE
from relanalytics_pipeline.defs.reports.deal_chart import draw_deal_tracking
from relanalytics_pipeline.defs.reports.health_diagnostic import closed_deal_health, diagnose
from relanalytics_pipeline.defs.reports.warning_outcomes import warning_outcomes
from relanalytics_pipeline.settings import Settings
from relanalytics_pipeline.spark import warehouse_connection
from relanalytics_pipeline.warehouse import WAREHOUSE_POOL


@dg.asset(
    key=["reports", "deal_tracking_chart"],
    deps=[["marts", "deal_tracking"]],
    group_name="reports",
    kinds={"python", "duckdb", "matplotlib", "bokeh"},
    backfill_policy=ONE_RUN_PER_RANGE,
    pool=WAREHOUSE_POOL,
)
def deal_tracking_chart(settings: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    """The deal-tracking bubble chart of `marts.deal_tracking`: estimated close date against
    relationship health, bubble area by estimated revenue, colour by stage, deals without a score
    grey at zero. A PNG (shown here) and an interactive HTML page (hover for details, click to
    open the opportunity in the CRM) under `$RELANALYTICS_HOME/reports/`."""
    with warehouse_connection(settings, read_only=True) as connection:
        deals = connection.execute(
            "select * from marts.deal_tracking order by estimated_close_date, opportunity_id"
        ).df()
    files = draw_deal_tracking(deals, settings.as_of, settings.home / "reports")
    image = base64.b64encode(files.png.read_bytes()).decode("ascii")
    return dg.MaterializeResult(
        metadata={
            "chart": dg.MetadataValue.md(f"![deal tracking](data:image/png;base64,{image})"),
            "png": dg.MetadataValue.path(str(files.png)),
            "html": dg.MetadataValue.path(str(files.html)),
            "deals": len(deals),
            "deals_without_score": int(deals["health_score"].isna().sum()),
            "as_of_date": settings.as_of.isoformat(),
        }
    )


class DiagnosticConfig(dg.Config):
    days_before_close: int = Field(
        default=30,
        ge=1,
        description="How many days before its actual close a deal's health is taken.",
    )


@dg.asset(
    key=["reports", "health_score_diagnostic"],
    deps=[["marts", "relationship_health_history"], ["staging", "stg_crm__opportunities"]],
    group_name="reports",
    kinds={"python", "duckdb", "scikit-learn"},
    backfill_policy=ONE_RUN_PER_RANGE,
    pool=WAREHOUSE_POOL,
)
def health_score_diagnostic(
    context: dg.AssetExecutionContext,
    config: DiagnosticConfig,
    settings: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    """Does the health score mean anything on this data? For closed opportunities whose day
    `days_before_close` before closing lies within the health history: the win rate by status
    and the AUC of the score against won / lost (0.5: no better than chance)."""
    with warehouse_connection(settings, read_only=True) as connection:
        deals = closed_deal_health(connection, config.days_before_close)
    result = diagnose(deals, config.days_before_close)
    if result.auc is None:
        context.log.warning("No AUC: the scored closed deals are not both won and lost ones.")
    return dg.MaterializeResult(
        metadata={
            "days_before_close": result.days_before_close,
            "deals_closed": result.deals_closed,
            "deals_in_history": result.deals_in_history,
            "deals_scored": result.deals_scored,
            "auc": dg.MetadataValue.float(result.auc) if result.auc is not None else "n/a",
            "win_rate_by_status": dg.MetadataValue.md(result.markdown()),
        }
    )


@dg.asset(
    key=["reports", "deal_warning_outcomes"],
    deps=[["intermediate", "int_closed_deal_warnings"]],
    group_name="reports",
    kinds={"python", "duckdb"},
    backfill_policy=ONE_RUN_PER_RANGE,
    pool=WAREHOUSE_POOL,
)
def deal_warning_outcomes(settings: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    """Does a deal warning mean anything on this data? For the deals won or lost by D whose day
    `deal_warning_outcome_days_before_close` (a dbt var, default 30) before closing lies within
    the health history: which of deal_warnings' warnings held that day
    (`intermediate.int_closed_deal_warnings`), and the win rate with and without each."""
    with warehouse_connection(settings, read_only=True) as connection:
        result = warning_outcomes(connection)
    days = result.days_before_close
    return dg.MaterializeResult(
        metadata={
            "days_before_close": "n/a" if days is None else days,
            "deals_in_history": result.deals_in_history,
            "win_rate_with_and_without": dg.MetadataValue.md(result.markdown()),
        }
    )

"""Ingest: CRM exports (Dynamics 365 / Dataverse, Salesforce) from the landing folder.

One asset per export table, keyed `dataverse/<table>` or `salesforce/<object>`, upstream of the
`crm/<entity>` assets it feeds: the lineage shows where every canonical row came from. Each
source is one step (one process importing the definitions, one warehouse writer at a time). Rows
reach `crm.<entity>` through the canonical ingest, so quarantine, fingerprints and versioned
upserts are the canonical ones, with `_source_file` such as `dataverse/email/page-0002.json`.
"""

from collections import defaultdict

import dagster as dg

from relanalytics_pipeline.defs.ingest.assets import file_metadata, log_quarantined
from relanalytics_pipeline.defs.partitions import (
    ONE_RUN_PER_RANGE,
    as_of_for_run,
    nightly_partitions,
)
from relanalytics_pipeline.lib import dataverse, salesforce
from relanalytics_pipeline.lib.exports import (
    ExportSettings,
    ExportTable,
    ingest_export,
    load_maps,
)
from relanalytics_pipeline.lib.ingest import EntityReport
from relanalytics_pipeline.lib.landing import ensure_landing
from relanalytics_pipeline.lib.warehouse import WAREHOUSE_POOL, WAREHOUSE_TAG
from relanalytics_pipeline.settings import Settings


def export_settings(settings: Settings) -> ExportSettings:
    defaults = {
        dataverse.SOURCE: dataverse.DEFAULT_MAPS,
        salesforce.SOURCE: salesforce.DEFAULT_MAPS,
    }
    return ExportSettings(
        load_maps(defaults, settings.export_maps),
        {
            dataverse.SOURCE: settings.dataverse_url or "",
            salesforce.SOURCE: settings.salesforce_url or "",
        },
    )


def _specs(tables: tuple[ExportTable, ...]) -> list[dg.AssetSpec]:
    entities: dict[str, list[str]] = defaultdict(list)
    descriptions: dict[str, str] = defaultdict(str)
    for table in tables:
        entities[table.name].append(table.entity)
        descriptions[table.name] += f" {table.description} Feeds `crm.{table.entity}`."
    source = tables[0].source
    return [
        dg.AssetSpec(
            key=[source, name],
            description=(
                f"The {source} export's `{name}` files (`<landing>/{source}/{name}/`)."
                f"{descriptions[name]} Rows that cannot be mapped go to "
                "`quarantine.rejected_rows` with their reason; unchanged files are skipped."
            ),
            group_name="ingest",
            kinds={"python", "duckdb"},
            skippable=True,
        )
        for name in entities
    ]


def _load(context: dg.AssetExecutionContext, tables, read, depends_on: dict[str, str]):
    settings = Settings.from_env()
    as_of = as_of_for_run(context.run.tags, settings)
    landing = ensure_landing(settings, as_of, context.log)
    mapping = export_settings(settings)
    reports: dict[str, list[EntityReport]] = defaultdict(list)
    for table in tables:
        key = dg.AssetKey([table.source, table.name])
        if key not in context.selected_asset_keys:
            continue
        report = ingest_export(
            settings.warehouse, landing, table, read, mapping, context.run.run_id,
            depends_on.get(table.name, ""), through=as_of,
        )  # fmt: skip
        log_quarantined(context.log, report)
        reports[table.name].append(report)
    for name, entity_reports in reports.items():
        yield dg.MaterializeResult(
            asset_key=[tables[0].source, name], metadata=file_metadata(entity_reports)
        )


@dg.multi_asset(
    name="dataverse_export",
    specs=_specs(dataverse.TABLES),
    can_subset=True,
    # Landing days, like the canonical files' (defs/ingest/assets.py).
    partitions_def=nightly_partitions,
    backfill_policy=ONE_RUN_PER_RANGE,
    pool=WAREHOUSE_POOL,
    op_tags=WAREHOUSE_TAG,
)
def dataverse_export(context: dg.AssetExecutionContext):
    """Map new and changed Dataverse export files (Web API pages or CSV) to canonical rows and
    load them into `crm.<entity>`."""
    yield from _load(context, dataverse.TABLES, dataverse.read_file, {})


@dg.multi_asset(
    name="salesforce_export",
    specs=_specs(salesforce.tables()),
    can_subset=True,
    # Landing days, like the canonical files' (defs/ingest/assets.py).
    partitions_def=nightly_partitions,
    backfill_policy=ONE_RUN_PER_RANGE,
    pool=WAREHOUSE_POOL,
    op_tags=WAREHOUSE_TAG,
)
def salesforce_export(context: dg.AssetExecutionContext):
    """Map new and changed Salesforce export files (Bulk API / Data Loader CSV) to canonical rows
    and load them into `crm.<entity>`. An email Task that an EmailMessage carries counts once."""
    settings = Settings.from_env()
    as_of = as_of_for_run(context.run.tags, settings)
    landing = ensure_landing(settings, as_of, context.log)
    email_tasks, digest = salesforce.email_task_ids(landing, through=as_of)
    # A Task file is read again whenever the EmailMessages it is checked against change.
    yield from _load(
        context, salesforce.tables(email_tasks), salesforce.read_file, {"Task": digest}
    )


EXPORT_ASSETS = (dataverse_export, salesforce_export)

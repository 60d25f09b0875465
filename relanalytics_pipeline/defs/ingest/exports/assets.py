"""Ingest: CRM exports (Dynamics 365 / Dataverse, Salesforce) from the landing folder.

One asset per export table, keyed `dataverse/<table>` or `salesforce/<object>`, upstream of the
`crm/<entity>` assets it feeds: the lineage shows where every canonical row came from. Each
source is one step (one warehouse writer at a time). Rows
reach `crm.<entity>` through the canonical ingest, so quarantine, fingerprints and versioned
upserts are the canonical ones, with `_source_file` such as `dataverse/email/page-0002.json`.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from relanalytics_pipeline.defs.ingest.assets import (
    file_metadata,
    log_quarantined,
    unexpected_reports,
)
from relanalytics_pipeline.defs.ingest.exports import dataverse, salesforce
from relanalytics_pipeline.defs.ingest.exports.mapping import (
    ExportSettings,
    ExportTable,
    ingest_export,
    load_maps,
)
from relanalytics_pipeline.defs.ingest.landing import landing_folder, unexpected_entries
from relanalytics_pipeline.defs.ingest.load import EntityReport, ingest_connection
from relanalytics_pipeline.defs.partitions import ONE_RUN_PER_RANGE, nightly_partitions
from relanalytics_pipeline.defs.privacy.people import Suppression
from relanalytics_pipeline.settings import Settings
from relanalytics_pipeline.warehouse import WAREHOUSE_POOL


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


# What a source reads on a night: its tables, and per table what else the reading depends on
# (part of the files' fingerprints), from the landing folder and the as-of day.
TablesFor = Callable[[Path, dt.date], tuple[tuple[ExportTable, ...], dict[str, str]]]


def _load(context: dg.AssetExecutionContext, settings: Settings, tables_for: TablesFor, read):
    landing = landing_folder(settings)
    tables, depends_on = tables_for(landing, settings.as_of)
    mapping = export_settings(settings)
    suppression = Suppression.of(settings.home)
    source = tables[0].source
    unexpected = unexpected_reports(
        context.log,
        unexpected_entries(landing / source, {t.name for t in tables}, f"a {source} table folder"),
        landing,
    )
    reports: dict[str, list[EntityReport]] = defaultdict(list)
    with ingest_connection(settings.warehouse) as connection:
        for table in tables:
            key = dg.AssetKey([table.source, table.name])
            if key not in context.selected_asset_keys:
                continue
            report = ingest_export(
                connection, landing, table, read, mapping, context.run.run_id,
                depends_on.get(table.name, ""), through=settings.as_of, suppression=suppression,
            )  # fmt: skip
            log_quarantined(context.log, report)
            reports[table.name].append(report)
    for name, entity_reports in reports.items():
        yield dg.MaterializeResult(
            asset_key=[source, name], metadata=file_metadata(entity_reports, unexpected)
        )


def _export_assets(name: str, tables: tuple[ExportTable, ...]):
    """One CRM's export assets as one step: daily by landing day like `crm_landing`, in the
    warehouse pool."""
    return dg.multi_asset(
        name=name,
        specs=_specs(tables),
        can_subset=True,
        partitions_def=nightly_partitions,
        backfill_policy=ONE_RUN_PER_RANGE,
        pool=WAREHOUSE_POOL,
    )


@_export_assets("dataverse_export", dataverse.TABLES)
def dataverse_export(context: dg.AssetExecutionContext, settings: dg.ResourceParam[Settings]):
    """Map new and changed Dataverse export files (Web API pages or CSV) to canonical rows and
    load them into `crm.<entity>`."""
    yield from _load(
        context, settings, lambda landing, as_of: (dataverse.TABLES, {}), dataverse.read_file
    )


def _salesforce_tables(landing: Path, as_of: dt.date):
    email_tasks, digest = salesforce.email_task_ids(landing, through=as_of)
    # A Task file is read again whenever the EmailMessages it is checked against change.
    return salesforce.tables(email_tasks), {"Task": digest}


@_export_assets("salesforce_export", salesforce.tables())
def salesforce_export(context: dg.AssetExecutionContext, settings: dg.ResourceParam[Settings]):
    """Map new and changed Salesforce export files (Bulk API / Data Loader CSV) to canonical rows
    and load them into `crm.<entity>`. An email Task that an EmailMessage carries counts once."""
    yield from _load(context, settings, _salesforce_tables, salesforce.read_file)


EXPORT_ASSETS = (dataverse_export, salesforce_export)

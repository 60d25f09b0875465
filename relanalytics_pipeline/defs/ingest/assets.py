"""Ingest: the landing folder's canonical files into the warehouse's `crm` schema.

One asset per canonical entity, keyed `crm/<entity>` so that each is the dbt source
`source('crm', '<entity>')` with no glue code. They are computed by one step: the seven loads
share the single DuckDB writer anyway, in the load order the raw contract's references need.
"""

from pathlib import Path

import dagster as dg

from relanalytics_pipeline.defs.ingest.exports import dataverse, salesforce
from relanalytics_pipeline.defs.ingest.exports.mapping import SOURCES
from relanalytics_pipeline.defs.ingest.landing import Ignored, landing_folder, unexpected_entries
from relanalytics_pipeline.defs.ingest.load import (
    EntityReport,
    FileReport,
    ingest_connection,
    ingest_entity,
)
from relanalytics_pipeline.defs.ingest.to_spark import READ_BY_DBT, REMOVED_ROWS, hand_over
from relanalytics_pipeline.defs.partitions import nightly_partitions
from relanalytics_pipeline.defs.privacy.people import Suppression
from relanalytics_pipeline.defs.quality.checks import ingest_check_results, ingest_check_specs
from relanalytics_pipeline.raw_contract import ENTITIES, LOAD_ORDER
from relanalytics_pipeline.settings import Settings
from relanalytics_pipeline.warehouse import WAREHOUSE_POOL

COUNTS = (
    "rows_read",
    "rows_loaded",
    "rows_duplicate",
    "rows_conflicting",
    "rows_quarantined",
    "rows_skipped",
    "rows_suppressed",
    "rows_anonymised",
)


def _export_keys_feeding(entity: str) -> list[dg.AssetKey]:
    """The export assets (defs/ingest/exports/assets.py) that load rows into `crm.<entity>`."""
    tables = (*dataverse.TABLES, *salesforce.tables())
    return list(
        dict.fromkeys(dg.AssetKey([t.source, t.name]) for t in tables if t.entity == entity)
    )


def landing_folders() -> list[str]:
    """The folders of the landing folder that the ingest reads: each entity's and each CRM export
    table's (`dataverse/email`)."""
    tables = (*dataverse.TABLES, *salesforce.tables())
    return [*ENTITIES, *dict.fromkeys(f"{t.source}/{t.name}" for t in tables)]


def _spec(entity_name: str) -> dg.AssetSpec:
    entity = ENTITIES[entity_name]
    return dg.AssetSpec(
        key=["crm", entity.name],
        description=(
            f"{entity.description} Loaded from `<landing>/{entity.name}/*.(csv|parquet|jsonl)`: "
            "one row per version (key, modified_at); rows and files that cannot be loaded go to "
            "`quarantine.rejected_rows` with their reason; unchanged files are skipped."
        ),
        group_name="ingest",
        kinds={"python", "duckdb"},
        # Parties are checked against the activities they belong to. The exports load first, so
        # the lineage shows every source of the entity's rows.
        deps=[
            *([["crm", "activities"]] if entity.name == "activity_parties" else []),
            *_export_keys_feeding(entity.name),
        ],
        skippable=True,
    )


def log_quarantined(log, report: EntityReport) -> None:
    """A warning for each file that lost rows, or was lost whole, to the quarantine, or was not
    read (still being written, a link, ...), and for each file with columns that load nowhere."""
    for f in report.files:
        if f.unknown_columns:
            log.warning(
                f"{f.source_file}: column(s) not in the {report.entity} contract, not loaded: "
                + ", ".join(f.unknown_columns)
            )
        if f.status == "quarantined":
            log.warning(f"{f.source_file}: whole file quarantined: {f.reason}")
        elif f.status in ("waiting", "ignored"):
            log.warning(f"{f.source_file}: {f.status}: {f.reason}")
        elif f.status == "removed":
            log.info(f"{f.source_file}: gone from the landing folder, its rows removed")
        elif f.rows_quarantined:
            log.warning(
                f"{f.source_file}: {f.rows_quarantined} row(s) quarantined "
                "(see quarantine.rejected_rows)"
            )


def unexpected_reports(log, ignored: list[Ignored], landing: Path) -> list[FileReport]:
    """What lies in the landing folder where no asset reads it, as ignored files (logged)."""
    reports = [
        FileReport(i.path.relative_to(landing).as_posix(), "ignored", reason=i.reason)
        for i in ignored
    ]
    for f in reports:
        log.warning(f"{f.source_file}: ignored: {f.reason}")
    return reports


def unexpected_in_landing(log, landing: Path) -> list[FileReport]:
    """The entries of the landing folder that are no entity's or CRM export's folder."""
    known = [*ENTITIES, *SOURCES]
    return unexpected_reports(
        log, unexpected_entries(landing, known, "an entity or CRM export folder"), landing
    )


def file_metadata(reports: list[EntityReport], unexpected: list[FileReport] = ()) -> dict:
    """Counts over the reports' files and a table of the new or changed ones, and of those not
    read (`unexpected`: entries of the landing folder outside every entity's and export's folder).
    An export file that feeds two entities (a Salesforce Task: calls and their parties) has a row
    for each."""
    files = [(r.entity, f) for r in reports for f in r.files if f.status != "unchanged"]
    files += [("", f) for f in unexpected]
    unknown = {f.source_file: f.unknown_columns for _, f in files if f.unknown_columns}
    lines = [
        "| file | entity | status | read | loaded | duplicate | conflicting | quarantined "
        "| skipped | suppressed | reason |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {f.source_file} | {entity} | {f.status} | {f.rows_read} | {f.rows_loaded} "
        f"| {f.rows_duplicate} | {f.rows_conflicting} | {f.rows_quarantined} | {f.rows_skipped} "
        f"| {f.rows_suppressed} "
        f"| {f.reason or ''} |"
        for entity, f in files
    ]
    return {
        **{name: dg.MetadataValue.int(sum(r.total(name) for r in reports)) for name in COUNTS},
        "files_loaded": sum(r.count("loaded") for r in reports),
        "files_unchanged": sum(r.count("unchanged") for r in reports),
        "files_quarantined": sum(r.count("quarantined") for r in reports),
        # Not loaded this run: still being written (loaded by a later run), or never read.
        "files_waiting": sum(r.count("waiting") for r in reports),
        "files_ignored": sum(r.count("ignored") for r in reports) + len(unexpected),
        # Gone from the landing folder: their rows left the warehouse.
        "files_removed": sum(r.count("removed") for r in reports),
        # Of the first entity's table: the one the file's own records feed.
        "versions_in_table": reports[0].versions_in_table,
        "files": dg.MetadataValue.md("\n".join(lines) if files else "No new or changed files."),
        # Per new or changed file, its columns outside the contract (see unknown_columns).
        "unknown_columns": dg.MetadataValue.json(unknown),
    }


@dg.multi_asset(
    name="crm_landing",
    specs=[_spec(name) for name in LOAD_ORDER],
    check_specs=ingest_check_specs(),
    can_subset=True,
    partitions_def=nightly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
)
def crm_landing(context: dg.AssetExecutionContext, settings: dg.ResourceParam[Settings]):
    """Load new and changed landing files of the selected entities into `crm.<entity>` (and take
    out the rows of files gone), then check the rows this run loaded against their
    great-expectations suites. What it does not read (links, unknown folders, files still being
    written) is reported in the metadata.

    With RELANALYTICS_ENGINE=spark, the loaded tables are then handed over to the Spark
    warehouse (defs/ingest/to_spark.py) and checked there.

    Partitioned by landing day: the partition D loads the files that had landed by the end of D,
    those directly in `<entity>/` and those in day subfolders up to `<entity>/D/`; files already
    loaded unchanged are skipped, so a range (a backfill) or a rerun loads each file once.
    """
    landing = landing_folder(settings)
    unexpected = unexpected_in_landing(context.log, landing)
    suppression = Suppression.of(settings.home)
    reports = {}
    # Closed before the checks, which open the warehouse read-only.
    with ingest_connection(settings.warehouse) as connection:
        for entity_name in LOAD_ORDER:
            key = dg.AssetKey(["crm", entity_name])
            if key not in context.selected_asset_keys:
                continue
            report = ingest_entity(
                connection,
                landing,
                entity_name,
                run_id=context.run.run_id,
                through=settings.as_of,
                suppression=suppression,
            )
            reports[entity_name] = report
            log_quarantined(context.log, report)
            yield dg.MaterializeResult(asset_key=key, metadata=file_metadata([report], unexpected))
    if settings.engine != "spark":
        yield from ingest_check_results(context, settings, reports)
        return
    from relanalytics_pipeline.spark import spark_session

    with spark_session(settings) as session:
        handed = hand_over(
            settings, session, [*(f"crm.{e}" for e in reports), REMOVED_ROWS], READ_BY_DBT
        )
        context.log.info(f"handed over to Spark: {handed}")
        yield from ingest_check_results(context, settings, reports, session)

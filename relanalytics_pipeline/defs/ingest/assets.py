"""Ingest: the landing folder's canonical files into the warehouse's `crm` schema.

One asset per canonical entity, keyed `crm/<entity>` so that each is the dbt source
`source('crm', '<entity>')` with no glue code. They are computed by one step: the seven loads
share the single DuckDB writer anyway, and one process instead of seven saves the ~5 s that every
Dagster step spends importing the definitions.
"""

import dagster as dg

from relanalytics_pipeline.defs.partitions import as_of_for_run, nightly_partitions
from relanalytics_pipeline.defs.quality.checks import ingest_check_results, ingest_check_specs
from relanalytics_pipeline.lib.canonical import ENTITIES, LOAD_ORDER
from relanalytics_pipeline.lib.ingest import EntityReport, ingest_entity
from relanalytics_pipeline.lib.landing import ensure_landing
from relanalytics_pipeline.lib.warehouse import WAREHOUSE_POOL, WAREHOUSE_TAG
from relanalytics_pipeline.settings import Settings

COUNTS = (
    "rows_read",
    "rows_loaded",
    "rows_duplicate",
    "rows_conflicting",
    "rows_quarantined",
)


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
        # Parties are checked against the activities they belong to.
        deps=[["crm", "activities"]] if entity.name == "activity_parties" else [],
        skippable=True,
    )


def _metadata(report: EntityReport) -> dict:
    files = [f for f in report.files if f.status != "unchanged"]
    lines = ["| file | status | read | loaded | duplicate | conflicting | quarantined | reason |"]
    lines.append("|---|---|---|---|---|---|---|---|")
    lines += [
        f"| {f.source_file} | {f.status} | {f.rows_read} | {f.rows_loaded} | {f.rows_duplicate} "
        f"| {f.rows_conflicting} | {f.rows_quarantined} | {f.reason or ''} |"
        for f in files
    ]
    return {
        **{name: dg.MetadataValue.int(report.total(name)) for name in COUNTS},
        "files_loaded": report.count("loaded"),
        "files_unchanged": report.count("unchanged"),
        "files_quarantined": report.count("quarantined"),
        "versions_in_table": report.versions_in_table,
        "files": dg.MetadataValue.md("\n".join(lines) if files else "No new or changed files."),
    }


@dg.multi_asset(
    name="crm_landing",
    specs=[_spec(name) for name in LOAD_ORDER],
    check_specs=ingest_check_specs(),
    can_subset=True,
    partitions_def=nightly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    op_tags=WAREHOUSE_TAG,
)
def crm_landing(context: dg.AssetExecutionContext):
    """Load new and changed landing files of the selected entities into `crm.<entity>`, then check
    the rows this run loaded against their great-expectations suites.

    Partitioned by landing day: the partition D loads the files that had landed by the end of D,
    those directly in `<entity>/` and those in day subfolders up to `<entity>/D/`; files already
    loaded unchanged are skipped, so a range (a backfill) or a rerun loads each file once.
    """
    settings = Settings.from_env()
    as_of = as_of_for_run(context.run.tags, settings)
    landing = ensure_landing(settings, as_of, context.log)
    for entity_name in LOAD_ORDER:
        key = dg.AssetKey(["crm", entity_name])
        if key not in context.selected_asset_keys:
            continue
        report = ingest_entity(
            settings.warehouse, landing, entity_name, run_id=context.run.run_id, through=as_of
        )
        for f in report.files:
            if f.status == "quarantined":
                context.log.warning(f"{f.source_file}: whole file quarantined: {f.reason}")
            elif f.rows_quarantined:
                context.log.warning(
                    f"{f.source_file}: {f.rows_quarantined} row(s) quarantined "
                    "(see quarantine.rejected_rows)"
                )
        yield dg.MaterializeResult(asset_key=key, metadata=_metadata(report))
    yield from ingest_check_results(context, settings, as_of)

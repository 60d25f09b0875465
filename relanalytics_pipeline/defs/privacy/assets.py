"""`privacy/excluded_activities` and `privacy/excluded_people`: what the exclusion rules match,
written before every dbt build (defs/privacy/rules.py), with counts per rule and never a value."""

import dagster as dg

from relanalytics_pipeline.defs.ingest.load import ensure_warehouse
from relanalytics_pipeline.defs.partitions import nightly_partitions
from relanalytics_pipeline.defs.privacy.rules import (
    SCHEMA,
    RulesError,
    digest,
    read_rules,
    write_exclusions,
)
from relanalytics_pipeline.raw_contract import LOAD_ORDER
from relanalytics_pipeline.settings import Settings
from relanalytics_pipeline.warehouse import WAREHOUSE_POOL, connect

TABLES = {
    "excluded_activities": "Activities an exclusion rule matches (by subject, a party's address "
    "or domain, an opted-out user among owner and parties), by any version: the staging models "
    "leave them out, with their parties.",
    "excluded_people": "Contacts, leads and users an exclusion rule matches (address, domain, "
    "opted-out user): the staging models leave them out.",
}


@dg.multi_asset(
    name="privacy_exclusions",
    specs=[
        dg.AssetSpec(
            ["privacy", table],
            deps=[["crm", entity] for entity in LOAD_ORDER],
            group_name="privacy",
            kinds={"duckdb"},
            description=description,
        )
        for table, description in TABLES.items()
    ],
    partitions_def=nightly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
)
def privacy_exclusions(settings: dg.ResourceParam[Settings]):
    """Find what the rules of RELANALYTICS_PRIVACY_RULES match in the crm tables now
    (docs/privacy.md). Its metadata counts the activities and people each rule matched, named
    `kind[n]`. With RELANALYTICS_ENGINE=spark, the tables are handed over to Spark, where dbt
    reads them (defs/ingest/to_spark.py)."""
    try:
        rules = read_rules(settings.privacy_rules)
    except RulesError as error:  # the file changed since the run started
        raise dg.Failure(f"RELANALYTICS_PRIVACY_RULES: {error}") from None
    with connect(settings.warehouse) as connection:
        ensure_warehouse(connection)
        by_rule = write_exclusions(connection, rules)
        (activities,) = connection.execute(
            "SELECT count(DISTINCT activity_id) FROM privacy.excluded_activities"
        ).fetchone()
        (people,) = connection.execute(
            "SELECT count(*) FROM (SELECT DISTINCT record_type, record_id "
            "FROM privacy.excluded_people)"
        ).fetchone()
    if settings.engine == "spark":
        from relanalytics_pipeline.defs.ingest.to_spark import hand_over
        from relanalytics_pipeline.spark import spark_session

        with spark_session(settings) as session:
            hand_over(settings, session, [f"{SCHEMA}.{table}" for table in TABLES])
    common = {
        "rules": len(rules),
        "rules_digest": digest(rules) or "no rules",
        "excluded_by_rule": dg.MetadataValue.json(by_rule),
    }
    yield dg.MaterializeResult(
        asset_key=["privacy", "excluded_activities"],
        metadata={"activities_excluded": activities, **common},
    )
    yield dg.MaterializeResult(
        asset_key=["privacy", "excluded_people"], metadata={"people_excluded": people, **common}
    )

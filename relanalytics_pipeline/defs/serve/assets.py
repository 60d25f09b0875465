"""Serving BI tools: the marts published where BI tools read them (defs/serve/publish/).

Downstream of every mart, so it runs after their blocking great-expectations checks: a mart that
fails its check fails its check step, and nothing is published in that run.
"""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import Field

from relanalytics_pipeline.defs.partitions import ONE_RUN_PER_RANGE
from relanalytics_pipeline.defs.serve import publish
from relanalytics_pipeline.defs.transform.assets import relanalytics_dbt
from relanalytics_pipeline.defs.transform.resources import model_reads_after_dbt, models_meta
from relanalytics_pipeline.settings import ENV_PUBLISH_POSTGRES_URL, Settings
from relanalytics_pipeline.warehouse import WAREHOUSE_POOL

# Every model dbt builds into the schema `marts` is a BI mart (the KPIs, health and deal
# tracking, similar deals: the BI contract in docs/serving-bi.md).
MART_KEYS = sorted(
    (key for key in relanalytics_dbt.keys if key.path[0] == publish.SCHEMA),
    key=lambda key: key.path,
)
# The tables Python assets write after dbt that marts read (views: the similar-deals marts).
READ_AFTER_DBT = sorted(
    set().union(*(model_reads_after_dbt(k.path[-1]) for k in MART_KEYS)), key=str
)
# The marts whose builds record the rows they wrote (their dbt models' `meta.writes`): the
# published DuckDB file takes only those rows when it holds the rows their latest build kept.
WRITES = models_meta("writes")
DEFAULT_POSTGRES = publish.PostgresTarget(url="")
NO_POSTGRES = f"not published ({ENV_PUBLISH_POSTGRES_URL} unset)"


class PublishConfig(dg.Config):
    postgres_schema: str = Field(
        DEFAULT_POSTGRES.schema,
        description="The PostgreSQL schema BI tools read (replaced whole by each publication).",
    )
    postgres_lock_timeout_seconds: float = Field(
        DEFAULT_POSTGRES.lock_timeout_seconds,
        gt=0,
        description="How long one attempt of the PostgreSQL swap waits for BI queries' locks.",
    )
    postgres_attempts: int = Field(
        DEFAULT_POSTGRES.attempts,
        ge=1,
        description="Attempts of the PostgreSQL swap before the publication fails.",
    )
    postgres_backoff_seconds: float = Field(
        DEFAULT_POSTGRES.backoff_seconds,
        ge=0,
        description="Sleep after the first locked-out attempt, doubling after each next one.",
    )


@dg.asset(
    key=["serve", "published_marts"],
    deps=[*MART_KEYS, *READ_AFTER_DBT],
    group_name="serve",
    kinds={"duckdb", "parquet", "postgresql"},
    backfill_policy=ONE_RUN_PER_RANGE,
    # It reads the warehouse, and DuckDB refuses a writer while another process has the file
    # open: it takes its turn with the warehouse's writers.
    pool=WAREHOUSE_POOL,
)
def published_marts(
    context: dg.AssetExecutionContext, config: PublishConfig, settings: dg.ResourceParam[Settings]
):
    """Every mart, published for BI tools from one snapshot of the warehouse: the DuckDB file
    `$RELANALYTICS_PUBLISH_DIR/marts.duckdb` (storage v1.2.0, swapped in atomically), Parquet
    folders behind the pointer `parquet/current`, and the PostgreSQL schema `marts` when
    RELANALYTICS_PUBLISH_POSTGRES_URL is set (swapped in one transaction). Each target holds the
    record `_publication` (version, run, as-of date, rows per mart)."""
    postgres = None
    if settings.publish_postgres_url:
        postgres = publish.PostgresTarget(
            url=settings.publish_postgres_url,
            schema=config.postgres_schema,
            lock_timeout_seconds=config.postgres_lock_timeout_seconds,
            attempts=config.postgres_attempts,
            backoff_seconds=config.postgres_backoff_seconds,
        )
    folder = settings.effective_publish_dir
    marts = [key.path[-1] for key in MART_KEYS]
    with _warehouse_snapshot(settings, marts, context.run.run_id) as warehouse:
        publication = _publish(context, settings, postgres, warehouse, marts)
    rows = "\n".join(f"| {mart} | {count:,} |" for mart, count in publication.rows.items())
    return dg.MaterializeResult(
        metadata={
            "version": publication.version,
            "as_of_date": publication.as_of_date.isoformat(),
            "duckdb_file": dg.MetadataValue.path(str(folder / publish.DUCKDB_FILE)),
            "parquet": dg.MetadataValue.path(str(folder / publish.PARQUET_DIR / publish.POINTER)),
            "postgres_schema": config.postgres_schema if postgres else NO_POSTGRES,
            "rows": dg.MetadataValue.md(f"| mart | rows |\n| --- | ---: |\n{rows}"),
            # Updated in a copy of the previous file: only the rows their latest build wrote.
            "duckdb_updated_in_place": ", ".join(sorted(publication.updated)) or "none",
        }
    )


@contextmanager
def _warehouse_snapshot(settings: Settings, marts: list[str], run_id: str) -> Iterator[Path]:
    """The DuckDB database the publication reads: the warehouse itself, or with the Spark engine
    a snapshot of Spark's marts (defs/serve/publish/from_spark.py), removed afterwards."""
    if settings.engine != "spark":
        yield settings.warehouse
        return
    from relanalytics_pipeline.defs.serve.publish.from_spark import snapshot
    from relanalytics_pipeline.spark import spark_session

    folder = settings.spark_scratch / f"publication-{run_id}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        tables = [f"{publish.SCHEMA}.{mart}" for mart in marts] + list(WRITES.values())
        with spark_session(settings) as session:
            database = snapshot(session, tables, folder)
        yield database
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _publish(context, settings: Settings, postgres, warehouse: Path, marts: list[str]):
    folder = settings.effective_publish_dir
    try:
        return publish.publish(
            warehouse,
            marts,
            folder,
            run_id=context.run.run_id,
            as_of_date=settings.as_of,
            postgres=postgres,
            writes=WRITES,
            file_mode=settings.publish_file_mode,
        )
    except publish.PublicationError as error:
        raise dg.Failure(str(error)) from error

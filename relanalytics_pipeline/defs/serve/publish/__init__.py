"""Publication of the BI marts where BI tools read them, never the working warehouse.

One publication copies every mart once, from one read-only snapshot of the warehouse, into up to
three targets, one module each, and swaps each in atomically, so a reader sees either the previous
publication or this one, whole:

- duckdb_file.py: the DuckDB file `marts.duckdb`, staged first; the other targets copy from it;
- parquet.py: Parquet versions behind the atomic pointer `parquet/current`;
- postgresql.py: the PostgreSQL schema, when a URL is given.

Every target carries the same record, `_publication` (publication.py; a table beside the marts, a
JSON file in the Parquet version folder): version, run id, as-of date, publication time and rows
per mart, so a reader can check that it sees one consistent publication.

The file targets are swapped only after PostgreSQL's swap succeeded (or when there is none): a
publication either lands in every target or in none.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from relanalytics_pipeline.defs.serve.publish import duckdb_file, parquet, postgresql
from relanalytics_pipeline.defs.serve.publish.duckdb_file import DUCKDB_FILE
from relanalytics_pipeline.defs.serve.publish.parquet import PARQUET_DIR, POINTER
from relanalytics_pipeline.defs.serve.publish.postgresql import PostgresTarget
from relanalytics_pipeline.defs.serve.publish.publication import (
    RECORD,
    SCHEMA,
    Publication,
    PublicationError,
    new_version,
)
from relanalytics_pipeline.permissions import folder_mode, restrict
from relanalytics_pipeline.settings import DEFAULT_PUBLISH_FILE_MODE
from relanalytics_pipeline.warehouse import connect

__all__ = [
    "DUCKDB_FILE",
    "PARQUET_DIR",
    "POINTER",
    "RECORD",
    "SCHEMA",
    "PostgresTarget",
    "Publication",
    "PublicationError",
    "publish",
]

# Work in progress: the DuckDB file and PostgreSQL's CSV files before they are published.
STAGING_DIR = ".staging"
SPILL_DIR = "spill"


def publish(
    warehouse: Path,
    marts: list[str],
    folder: Path,
    run_id: str,
    as_of_date: dt.date,
    postgres: PostgresTarget | None = None,
    writes: dict[str, str] | None = None,
    file_mode: int = DEFAULT_PUBLISH_FILE_MODE,
) -> Publication:
    """Publish the warehouse's `marts` to `folder` (DuckDB file and Parquet) and to PostgreSQL.
    `writes` names, for the marts whose builds record the rows they wrote, the warehouse table
    (`schema.table`) that records them (warehouse.py, `rows_written`). The published files
    get `file_mode`, their folders the matching folder mode (permissions.py), before they
    are swapped in.

    Reads the warehouse read-only, once; the caller must hold the warehouse's writer slot (DuckDB
    refuses a writer while anyone else has the file open). Raises PublicationError, leaving every
    target as it was, when a mart is missing or PostgreSQL stays locked.
    """
    published_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    version = new_version(published_at, run_id)
    # What a publication killed half-way left behind is never read: start afresh.
    staging = folder / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    staged_parquet = parquet.version_folder(folder, version)
    staged_parquet.parent.mkdir(parents=True, exist_ok=True)
    # The folders first, so that nothing written inside them is ever readable by others.
    for private in (staging, folder / PARQUET_DIR, staged_parquet.parent):
        os.chmod(private, folder_mode(file_mode))
    staged_file = staging / DUCKDB_FILE
    try:
        with connect(Path(":memory:")) as connection:
            # A mart's rows have no order: writing them in any order lets DuckDB write the
            # Parquet files on every core.
            connection.execute("SET preserve_insertion_order = false")
            # What does not fit its memory spills into the staging folder, removed below (an
            # in-memory database would spill into the process's working folder).
            connection.execute("SET temp_directory = ?", [str(staging / SPILL_DIR)])
            rows, builds, updated = duckdb_file.stage(
                connection, warehouse, marts, staged_file, folder / DUCKDB_FILE, writes or {},
                update=as_of_date.isoweekday() != duckdb_file.COPIED_WHOLE_ON,
            )  # fmt: skip
            publication = Publication(
                version, run_id, as_of_date, published_at, rows, builds, updated
            )
            duckdb_file.add_record(connection, publication)
            parquet.stage(connection, marts, staged_parquet, publication)
            if postgres is not None:
                postgresql.publish(connection, [*marts, RECORD], postgres, staging)
            connection.execute("DETACH published")
        restrict(staged_file, file_mode)
        restrict(staged_parquet, file_mode)
        os.replace(staged_file, folder / DUCKDB_FILE)
    except BaseException:
        shutil.rmtree(staged_parquet, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    parquet.point_to(folder / PARQUET_DIR, version)
    return publication

"""PostgreSQL for BI tools, when a URL is given: a fresh staging schema loaded with COPY from the
staged DuckDB file, then swapped in one transaction that waits on BI queries' locks at most
`lock_timeout`, retried with back-off."""

from __future__ import annotations

import logging
import re
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from relanalytics_pipeline.conninfo import redact
from relanalytics_pipeline.defs.serve.publish.publication import SCHEMA, PublicationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostgresTarget:
    """Where and how to publish into PostgreSQL. The swap waits at most `lock_timeout_seconds`
    for each attempt's locks and tries `attempts` times, sleeping `backoff_seconds`, then twice
    that, and so on, in between."""

    url: str = field(repr=False)  # it may hold a password
    schema: str = SCHEMA
    lock_timeout_seconds: float = 5.0
    attempts: int = 5
    backoff_seconds: float = 1.0


_POSTGRES_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric(39, 0)",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20, 0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval",
    "UUID": "uuid",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def postgres_type(duckdb_type: str) -> str:
    """The PostgreSQL type holding exactly the values of a DuckDB column type."""
    if decimal := _DECIMAL.fullmatch(duckdb_type):
        return f"numeric({decimal[1]}, {decimal[2]})"
    if duckdb_type in _POSTGRES_TYPES:
        return _POSTGRES_TYPES[duckdb_type]
    if duckdb_type.endswith("[]") and not duckdb_type.endswith("[][]"):
        # One-dimensional lists only: they travel as PostgreSQL array literals (see _select).
        return postgres_type(duckdb_type[:-2]) + "[]"
    raise PublicationError(
        f"No PostgreSQL type for the DuckDB type {duckdb_type}: map it in "
        "defs/serve/publish/postgresql.py before publishing such a column."
    )


def _select(column: str, duckdb_type: str) -> str:
    """The column as COPY's CSV must spell it for PostgreSQL: lists as array literals
    (`{"a","b"}`, NULL elements unquoted), everything else as DuckDB writes it."""
    quoted = f'"{column}"'
    if not duckdb_type.endswith("[]"):
        return quoted
    element = (
        "CASE WHEN e IS NULL THEN 'NULL' ELSE '\"' || "
        "replace(replace(e::varchar, '\\', '\\\\'), '\"', '\\\"') || '\"' END"
    )
    return (
        f"CASE WHEN {quoted} IS NULL THEN NULL ELSE "
        f"'{{' || array_to_string(list_transform({quoted}, lambda e: {element}), ',') || '}}' END "
        f"AS {quoted}"
    )


def publish(
    connection: duckdb.DuckDBPyConnection, tables: list[str], target: PostgresTarget, scratch: Path
) -> None:
    """Load every table into a fresh staging schema, then swap it in."""
    import psycopg

    staging = f"{target.schema}__staging"
    try:
        postgres = psycopg.connect(target.url, application_name="relanalytics-publish")
    except psycopg.Error as error:
        # libpq's message may echo the URL, password included: masked, and the original error
        # not chained, since Dagster stores the whole chain in the run's history.
        reason = redact(str(error).strip(), target.url)
        raise PublicationError(
            f"PostgreSQL: cannot connect ({reason}). Nothing was published."
        ) from None
    with postgres:
        _load_staging(connection, postgres, tables, staging, scratch)
        try:
            _swap(postgres, staging, target)
        except BaseException:
            with suppress(psycopg.Error):
                postgres.rollback()
                postgres.execute(_sql("DROP SCHEMA IF EXISTS {} CASCADE", staging))
                postgres.commit()
            raise


def _sql(template: str, *names: str):
    from psycopg import sql

    return sql.SQL(template).format(*(sql.Identifier(name) for name in names))


def _load_staging(connection, postgres, tables: list[str], staging: str, scratch: Path) -> None:
    from psycopg import sql

    columns = connection.execute(
        "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
        "WHERE database_name = 'published' AND schema_name = 'main' "
        "ORDER BY table_name, column_index",
    ).fetchall()
    comments = dict(
        connection.execute(
            "SELECT table_name, comment FROM duckdb_tables() "
            "WHERE database_name = 'published' AND schema_name = 'main'",
        ).fetchall()
    )
    with postgres.transaction():
        postgres.execute(_sql("DROP SCHEMA IF EXISTS {} CASCADE", staging))
        postgres.execute(_sql("CREATE SCHEMA {}", staging))
        for table in tables:
            described = [(c, t, note) for name, c, t, note in columns if name == table]
            definition = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(postgres_type(t)))
                for c, t, _ in described
            )
            postgres.execute(
                sql.SQL("CREATE TABLE {}.{} ({})").format(
                    sql.Identifier(staging), sql.Identifier(table), definition
                )
            )
            csv = scratch / f"{table}.csv"
            selected = ", ".join(_select(c, t) for c, t, _ in described)
            connection.execute(
                f"COPY (SELECT {selected} FROM published.main.{table}) TO ? "
                "(FORMAT csv, HEADER false)",
                [str(csv)],
            )
            copy_sql = sql.SQL("COPY {}.{} FROM STDIN (FORMAT csv)").format(
                sql.Identifier(staging), sql.Identifier(table)
            )
            with postgres.cursor().copy(copy_sql) as copy, csv.open("rb") as file:
                while chunk := file.read(1 << 20):
                    copy.write(chunk)
            csv.unlink()
            if comments.get(table):
                postgres.execute(
                    sql.SQL("COMMENT ON TABLE {}.{} IS {}").format(
                        sql.Identifier(staging), sql.Identifier(table), sql.Literal(comments[table])
                    )
                )
            for column, _, note in described:
                if note:
                    postgres.execute(
                        sql.SQL("COMMENT ON COLUMN {}.{}.{} IS {}").format(
                            sql.Identifier(staging),
                            sql.Identifier(table),
                            sql.Identifier(column),
                            sql.Literal(note),
                        )
                    )


def _swap(postgres, staging: str, target: PostgresTarget) -> None:
    """In one transaction: lock the published tables (waiting at most lock_timeout for BI
    queries to let go), drop the published schema and rename the staging schema in its place.
    Locked out, roll back, sleep and try again; after the last attempt raise PublicationError."""
    from psycopg import errors, sql

    timeout_ms = max(1, round(target.lock_timeout_seconds * 1000))
    for attempt in range(1, target.attempts + 1):
        try:
            with postgres.transaction():
                postgres.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(f"{timeout_ms}ms"))
                published = [
                    name
                    for (name,) in postgres.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = %s", [target.schema]
                    ).fetchall()
                ]
                if published:
                    postgres.execute(
                        sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                            sql.SQL(", ").join(
                                sql.Identifier(target.schema, name) for name in published
                            )
                        )
                    )
                postgres.execute(_sql("DROP SCHEMA IF EXISTS {} CASCADE", target.schema))
                postgres.execute(_sql("ALTER SCHEMA {} RENAME TO {}", staging, target.schema))
            return
        except (errors.LockNotAvailable, errors.DeadlockDetected) as error:
            last = error
            logger.warning(
                "PostgreSQL swap attempt %d of %d locked out: %s",
                attempt,
                target.attempts,
                str(error).strip(),
            )
            if attempt < target.attempts:
                time.sleep(target.backoff_seconds * 2 ** (attempt - 1))
    holders = _lock_holders(postgres, target.schema)
    raise PublicationError(
        f"PostgreSQL: gave up swapping schema {target.schema!r} after {target.attempts} attempts "
        f"of {target.lock_timeout_seconds:g} s: a query kept a lock on its tables "
        f"({'; '.join(holders) or 'holder already gone'}). Last error: {str(last).strip()}. "
        "Nothing was published: the schema, the DuckDB file and the Parquet pointer are as before."
    ) from last


def _lock_holders(postgres, schema: str) -> list[str]:
    """Who holds locks on the published tables, for the error message."""
    rows = postgres.execute(
        "SELECT DISTINCT a.pid, a.usename, a.application_name, a.state, left(a.query, 120) "
        "FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE n.nspname = %s AND l.granted AND a.pid <> pg_backend_pid()",
        [schema],
    ).fetchall()
    postgres.rollback()
    return [
        f"pid {pid} user {user} application {app or '-'} {state}: {query!r}"
        for pid, user, app, state, query in rows
    ]

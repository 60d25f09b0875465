"""Erasure of a person from every copy the pipeline keeps.

An erasure runs in three parts, so that each copy is rewritten by the code that made it:

1. `erase_from_warehouse`: the person's hashes join the suppression list (first: a later ingest
   leaves them out even if the erasure stops half-way); their rows leave the raw versions
   (`crm.*`, `ingest.outranked_*`) and the quarantine, and their parties become an anonymous
   outside party (people.py: the activities keep their other people); the records whose rows
   changed are logged in `ingest.removed_rows`, as a reload logs them, so dbt recomputes them.
   The published DuckDB file is removed, so that the next publication writes it afresh instead
   of updating a copy.
2. A run of every asset for the latest day: dbt rebuilds the marts and the history, the model is
   refitted, the marts are published again (DuckDB file, Parquet, PostgreSQL).
3. `finish_erasure`: the Parquet versions other than the current one, and the model pickles the
   run did not write, are removed (with the Spark engine, Spark's copy of `ingest.removed_rows`
   is replaced); the warehouse file is copied into a fresh file, because DuckDB keeps deleted
   rows' bytes in freed blocks of the old one. On Spark, the run of part 2 hands the raw tables
   over again and rebuilds every dbt table whole, and each of its Spark sessions first removes
   what killed runs left in the Spark warehouse folder (relanalytics_pipeline/spark.py,
   remove_leftovers).

The erasure log (`$RELANALYTICS_HOME/privacy/erasure-log.jsonl`) records when, which hash and how
many rows per table; never an identifier.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from relanalytics_pipeline.defs.ingest.landing import UnreadableFile, read_landing_file
from relanalytics_pipeline.defs.ingest.load import ensure_warehouse
from relanalytics_pipeline.defs.privacy.people import (
    ANONYMISED_ENTITY,
    PERSON_COLUMNS,
    anonymise,
    hash_of,
    load_matching,
    look_for,
    matches,
    person_hashes,
    privacy_dir,
    salt,
    suppress,
    suppressed,
)
from relanalytics_pipeline.defs.serve import publish
from relanalytics_pipeline.raw_contract import ENTITIES
from relanalytics_pipeline.settings import PROJECT_ROOT, Settings
from relanalytics_pipeline.warehouse import connect, q, table_exists

ERASURE_LOG = "erasure-log.jsonl"
_ROUNDS = 4  # identifiers reached through records: address -> contact -> its other addresses


@dataclass
class Erasure:
    hash: str  # of the identifier asked for
    erased_at: dt.datetime
    rows: dict[str, int] = field(default_factory=dict)  # per table, rows removed
    identifiers: int = 0  # identifiers found for the person (their hashes are suppressed)
    # The landing files that still hold the person, for the landing folder's owner to purge.
    landing_files: list[str] = field(default_factory=list)


class ErasureError(RuntimeError):
    """The run rebuilding the copies failed: the erasure is to be run again to finish."""


def erase_person(
    settings: Settings,
    person_hash: str,
    environ: Mapping[str, str],
    say: Callable[[str], None],
    known_values: Iterable[str] = (),
) -> Erasure:
    """The whole erasure (module docstring) of the person with this salted hash, as of
    `settings.as_of`; `environ`: the Dagster commands' environment (with DAGSTER_HOME); `say`
    reports progress (counts and landing file names, never an identifier)."""
    erasure = erase_from_warehouse(settings, [person_hash], known_values)
    say(f"Erasing {person_hash} (the person's salted hash; the erasure log keeps only this).")
    for table, rows in erasure.rows.items():
        say(f"  {table:<34} {rows:>8,} row(s) removed")
    started = time.time()
    command = [
        str(Path(sys.executable).with_name("dagster")), "asset", "materialize",
        "-m", "relanalytics_pipeline.definitions", "--select", "*",
        "--partition", settings.as_of.isoformat(),
    ]  # fmt: skip
    if subprocess.run(command, env=dict(environ), cwd=PROJECT_ROOT, check=False).returncode:
        raise ErasureError(
            "The run rebuilding the marts failed (its log is above): the person is out of the raw "
            "tables and suppressed from every ingest; erase them again to finish."
        )
    finish_erasure(settings, erasure, started)
    if erasure.landing_files:
        say("These landing files still hold the person (the ingest leaves them out; purge them):")
        for name in erasure.landing_files:
            say(f"  {name}")
    say(f"Erased; logged in {privacy_dir(settings.home) / ERASURE_LOG}")
    return erasure


def hash_for(settings: Settings, person_identifier: str) -> str:
    """The salted hash of an identifier (`email:…`, `contact:…`), as the Dagster job takes it."""
    return hash_of(salt(settings.home), person_identifier)


def _tables(connection: duckdb.DuckDBPyConnection, entity: str) -> list[str]:
    tables = [f"crm.{entity}", f"ingest.outranked_{entity}"]
    return [t for t in tables if table_exists(connection, t)]


def _resolve(connection: duckdb.DuckDBPyConnection, hashes: set[str]) -> set[str]:
    """Every hash of the person: the identifiers of each raw row that names one of theirs (a
    contact found by its address brings its id, and the other addresses of that contact)."""
    for _ in range(_ROUNDS):
        look_for(connection, hashes)
        found = hashes | _of_matched_rows(connection, person_hashes)
        if found == hashes:
            break
        hashes = found
    return hashes


def _values(connection: duckdb.DuckDBPyConnection) -> set[str]:
    """The plain values (addresses, ids) of the matched rows, lowercase: to find the person in
    rows whose columns are not the canonical ones (quarantined export records, landing files).
    Kept in memory only."""
    return _of_matched_rows(
        connection, lambda entity: [f"lower(trim({q(c)}))" for c in PERSON_COLUMNS[entity]]
    )


def _of_matched_rows(
    connection: duckdb.DuckDBPyConnection, expressions: Callable[[str], list[str]]
) -> set[str]:
    """The distinct non-null values of each entity's `expressions` over the rows that name the
    person, in every table holding that entity's rows."""
    values = set()
    for entity in PERSON_COLUMNS:
        for table in _tables(connection, entity):
            for expression in expressions(entity):
                values |= {
                    v
                    for (v,) in connection.execute(
                        f"SELECT DISTINCT {expression} FROM {table} "
                        f"WHERE ({matches(entity)}) AND {expression} IS NOT NULL"
                    ).fetchall()
                }
    return values


def erase_from_warehouse(
    settings: Settings, hashes: Iterable[str], known_values: Iterable[str] = ()
) -> Erasure:
    """Part 1 (module docstring). `hashes`: the person's, the first one the asked-for identifier's;
    `known_values`: identifiers given in plain (from the command line), also looked for in the
    quarantine's raw records and the landing files."""
    hashes = list(hashes)
    erasure = Erasure(hash=hashes[0], erased_at=dt.datetime.now(dt.UTC).replace(tzinfo=None))
    salt_text = salt(settings.home)
    with connect(settings.warehouse) as connection:
        ensure_warehouse(connection)
        load_matching(connection, salt_text, hashes)
        everyone = _resolve(connection, set(hashes))
        suppress(settings.home, everyone)
        erasure.identifiers = len(everyone)
        look_for(connection, everyone)
        values = _values(connection) | {v.split(":", 1)[-1].lower() for v in known_values}
        connection.begin()
        for entity in PERSON_COLUMNS:
            key = q(ENTITIES[entity].key[0])
            for table in _tables(connection, entity):
                # Logged as a reload logs the rows it removes: dbt recomputes their records.
                connection.execute(
                    "INSERT INTO ingest.removed_rows SELECT DISTINCT ?, CAST("
                    f"{key} AS VARCHAR), ? FROM {table} WHERE {matches(entity)}",
                    [entity, erasure.erased_at],
                )
                if entity == ANONYMISED_ENTITY:
                    (erasure.rows[f"{table} (anonymised)"],) = connection.execute(
                        anonymise(table)
                    ).fetchone()
                else:
                    (erasure.rows[table],) = connection.execute(
                        f"DELETE FROM {table} WHERE {matches(entity)}"
                    ).fetchone()
        erasure.rows["quarantine.rejected_rows"] = _erase_quarantined(connection, values)
        connection.commit()
    erasure.landing_files = landing_files_holding(settings, values)
    (settings.effective_publish_dir / publish.DUCKDB_FILE).unlink(missing_ok=True)
    return erasure


def _erase_quarantined(connection: duckdb.DuckDBPyConnection, values: set[str]) -> int:
    """Quarantined rows naming the person: by their canonical columns, or (a CRM export's own
    record, a line that was no JSON) holding one of the person's addresses anywhere. Ids are
    only matched in their own columns: a bare `c2` in another row's text may be anything."""
    by_columns = " OR ".join(
        f"(entity = '{entity}' AND ({matches(entity, json_record='raw_record')}))"
        for entity in PERSON_COLUMNS
    )
    connection.execute("CREATE OR REPLACE TEMP TABLE person_values (value VARCHAR)")
    addresses = sorted(v for v in values if "@" in v)
    connection.execute("INSERT INTO person_values SELECT UNNEST(?)", [addresses])
    (removed,) = connection.execute(
        f"""
        DELETE FROM quarantine.rejected_rows
        WHERE {by_columns} OR EXISTS (
            SELECT 1 FROM person_values WHERE contains(lower(raw_record), value))
        """
    ).fetchone()
    return removed


_ANY_VALUE, _ADDRESSES = "TRUE", "contains(value, '@')"


def landing_files_holding(settings: Settings, values: set[str]) -> list[str]:
    """The landing files with a value equal to one of the person's (ignoring case and blanks), an
    address in any column, an id in a column whose name ends in `id`: the landing folder is the
    customer's, who must purge them (the ingest leaves the person out meanwhile)."""
    landing = settings.effective_landing_dir
    if not values or not landing.is_dir():
        return []
    holding = []
    with duckdb.connect() as connection:
        connection.execute("CREATE TEMP TABLE person_values (value VARCHAR)")
        connection.execute("INSERT INTO person_values SELECT UNNEST(?)", [sorted(values)])
        files = (p for p in landing.rglob("*") if p.is_file() and not p.is_symlink())
        for path in sorted(p for p in files if not p.name.startswith((".", "_"))):
            try:
                table = read_landing_file(path).table
            except (UnreadableFile, OSError):
                continue
            connection.register("landing_file", table)
            columns = [
                f"lower(trim(CAST({q(name)} AS VARCHAR))) IN (SELECT value FROM person_values "
                f"WHERE {_ANY_VALUE if name.lower().endswith('id') else _ADDRESSES})"
                for name in table.column_names
            ] or ["FALSE"]
            (found,) = connection.execute(
                f"SELECT EXISTS (SELECT 1 FROM landing_file WHERE {' OR '.join(columns)})"
            ).fetchall()
            if found[0]:
                holding.append(path.relative_to(landing).as_posix())
            connection.unregister("landing_file")
    return holding


def finish_erasure(settings: Settings, erasure: Erasure, rebuilt_since: float) -> None:
    """Part 3 (module docstring); `rebuilt_since`: when the rebuilding run started (epoch
    seconds): model pickles older than that are of earlier runs."""
    parquet = settings.effective_publish_dir / publish.PARQUET_DIR
    pointer = parquet / publish.POINTER
    if pointer.is_symlink():
        current = Path(os.readlink(pointer)).name
        for version in (parquet / "versions").iterdir():
            if version.name != current:
                shutil.rmtree(version)
    models = settings.home / "models"
    if models.is_dir():
        for path in models.rglob("*"):
            if path.is_file() and path.stat().st_mtime < rebuilt_since:
                path.unlink()
    # A rendering of the warehouse's rows, made again on demand (`relanalytics data-docs`).
    shutil.rmtree(settings.home / "data-docs", ignore_errors=True)
    # The ids of erased people's own records that erasures logged for dbt: the run rebuilt every
    # model since, so no model needs them any more (the activities' ids stay: they are no one's).
    with connect(settings.warehouse) as connection:
        load_matching(connection, salt(settings.home), suppressed(settings.home))
        connection.execute(
            "DELETE FROM ingest.removed_rows WHERE entity IN ('contacts', 'leads', 'users') AND "
            "sha256(getvariable('privacy_salt') || rtrim(entity, 's') || ':' || record_id) "
            "IN (SELECT hash FROM sought_hashes)"
        )
    if settings.engine == "spark":
        # Spark's copy of that log was handed over by the run, with those ids: replaced.
        from relanalytics_pipeline.defs.ingest.to_spark import REMOVED_ROWS, hand_over
        from relanalytics_pipeline.spark import spark_session

        with spark_session(settings) as session:
            hand_over(settings, session, [REMOVED_ROWS])
    compact(settings.warehouse)
    _log(settings, erasure)


def compact(warehouse: Path) -> None:
    """Copy the warehouse into a fresh file and swap it in: a deleted row's bytes stay in the
    freed blocks of a DuckDB file until they are reused."""
    if not warehouse.exists():
        return
    fresh = warehouse.with_name(f".{warehouse.name}.compacting")
    fresh.unlink(missing_ok=True)
    with connect(Path(":memory:")) as connection:
        connection.execute("ATTACH ? AS old_copy (READ_ONLY)", [str(warehouse)])
        connection.execute("ATTACH ? AS new_copy", [str(fresh)])
        connection.execute("COPY FROM DATABASE old_copy TO new_copy")
        connection.execute("DETACH old_copy")
        connection.execute("DETACH new_copy")
    os.chmod(fresh, warehouse.stat().st_mode & 0o777)
    os.replace(fresh, warehouse)


def _log(settings: Settings, erasure: Erasure) -> None:
    entry = {
        "erased_at": erasure.erased_at.isoformat() + "Z",
        "hash": erasure.hash,
        "identifiers": erasure.identifiers,
        "rows": erasure.rows,
        "landing_files_still_holding": len(erasure.landing_files),
    }
    path = privacy_dir(settings.home) / ERASURE_LOG
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as file:
        file.write(json.dumps(entry) + "\n")

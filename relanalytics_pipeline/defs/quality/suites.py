"""Great Expectations suites (JSON under `expectations/`) validated on pandas (or Spark) DataFrames.

Two layers, one folder each, one file per table, named after it:
- `expectations/crm/<entity>.json` guards the rows one ingest run added to `crm.<entity>` (a
  sample of them on a large load), with what the ingest's row-by-row contract cannot say;
- `expectations/marts/<mart>.json` guards a BI mart as a whole; a history whose dbt model names,
  in `meta.writes`, the table where each build records what it wrote (relationship_health_history)
  is validated on the rows its latest build wrote, when the build whose rows it kept was validated.

great-expectations runs in pandas mode on an ephemeral context: its SQL mode on DuckDB reports
wrong results (upstream issues 10738, 11579). With RELANALYTICS_ENGINE=spark the same suites run
on Spark DataFrames through its Spark datasource (the `*_spark` readers below), their pandas row
conditions rewritten as Spark SQL (`spark_condition`): the rows stay in Spark. Only the columns a
suite names are read, so a wide mart costs what its checked columns cost. The module is imported
by the Dagster checks and the `relanalytics data-docs` command; great_expectations itself is
imported inside the functions that need it (about 6 s).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from relanalytics_pipeline.raw_contract import ENTITIES
from relanalytics_pipeline.settings import PROJECT_ROOT
from relanalytics_pipeline.warehouse import latest_writes, q, rows_written, table_exists

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
LAYERS = ("crm", "marts")
# The most new rows of a crm entity validated in one run: a night's new rows are all validated;
# a first load or a backfill (millions) is validated on a repeatable sample of this many rows,
# enough to see a pattern in a few seconds, since what breaks the raw contract the ingest already
# quarantined row by row. The rules left to the crm suites hold within a row or over a share.
SAMPLE_LIMIT = 100_000
# Offending rows shown per failed expectation: enough to see the pattern, small enough for the UI.
SAMPLE_ROWS = 5
# Where the marts' checks record the latest validated build of each mart with `meta.writes`.
VALIDATED_BUILDS = "quality.validated_builds"
# Columns read with every crm row so that an offending row can be found in its landing file.
LINEAGE = ("_source_file", "_row_number")
_KWARG_COLUMNS = ("column", "column_A", "column_B")
# Expectations whose verdict on a row depends on that row's values alone: rows alike in a suite's
# columns fare alike, so a mart is validated once per distinct combination of them (read_mart's
# `alike_once`), unless an expectation holds only for a share of the rows (`mostly`).
ROW_BY_ROW = frozenset(
    {"expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
     "expect_column_values_to_not_be_in_set", "expect_column_values_to_be_null",
     "expect_column_values_to_not_be_null", "expect_column_values_to_match_regex",
     "expect_column_values_to_not_match_regex", "expect_column_value_lengths_to_be_between",
     "expect_column_value_lengths_to_equal", "expect_column_pair_values_a_to_be_greater_than_b",
     "expect_column_pair_values_to_be_equal"}
)  # fmt: skip
# In a frame of rows read once per distinct combination of a suite's columns: how many rows each
# row stands for.
ROWS_ALIKE = "_rows_alike"
# Columns that name a person or hold what they wrote: left out of the offending rows' samples,
# which Dagster keeps in its run storage, where no erasure reaches (docs/privacy.md). So are
# columns ending in _name, _email or _by (a user's id), and the id of a contact's or lead's record.
PERSONAL_COLUMNS = frozenset(
    {"full_name", "email", "address", "party_id", "contact_id", "user_id", "lead_id", "owner_id",
     "manager_id", "subject", "summary", "message_id", "in_reply_to"}
)  # fmt: skip
_PERSONAL_SUFFIXES = ("_name", "_email", "_by")
_PEOPLE_RECORDS = ("contact", "lead")


@dataclass(frozen=True)
class Suite:
    """One suite file: `expectations/<layer>/<table>.json` guards the table `<layer>.<table>`."""

    path: Path

    @property
    def layer(self) -> str:
        return self.path.parent.name

    @property
    def table(self) -> str:
        return self.path.stem

    @property
    def name(self) -> str:
        return f"{self.layer}.{self.table}"

    @cached_property
    def spec(self) -> dict[str, Any]:
        spec = json.loads(self.path.read_text(encoding="utf-8"))
        if spec.get("name") != self.name:
            raise ValueError(f"{self.path} must be named {self.name!r}, not {spec.get('name')!r}")
        return spec

    @property
    def description(self) -> str:
        return self.spec.get("meta", {}).get("guards", "")

    @property
    def writes(self) -> str | None:
        """The table (`schema.table`) in which each build of the mart records what it wrote: its
        dbt model's `meta.writes`, which the publication reads too."""
        if self.layer != "marts":
            return None
        from relanalytics_pipeline.defs.transform.resources import models_meta

        return models_meta("writes").get(self.table)

    @property
    def key(self) -> list[str]:
        """The columns that say which row is which: read with the suite's columns, so that an
        offending row in a sample says whose it is. An entity's key; a mart's `meta.key`."""
        if self.layer == "crm":
            return list(ENTITIES[self.table].key)
        return self.spec.get("meta", {}).get("key", [])

    @property
    def columns(self) -> list[str]:
        """The table's columns the suite looks at, in order of first mention, those its row
        conditions name included."""
        names: list[str] = []
        for expectation in self.spec["expectations"]:
            kwargs = expectation["kwargs"]
            names += [kwargs[k] for k in _KWARG_COLUMNS if k in kwargs]
            names += kwargs.get("column_list", [])
            names += _condition_columns(kwargs.get("row_condition", ""))
        return list(dict.fromkeys(names))

    @property
    def row_by_row(self) -> bool:
        """Whether each of its expectations judges every row by that row's values alone."""
        return all(
            e["type"] in ROW_BY_ROW and "mostly" not in e["kwargs"]
            for e in self.spec["expectations"]
        )


def _condition_columns(condition: str) -> list[str]:
    """The column names in a pandas row condition (`status=="open"`, `stage.notna()`): its names
    outside quotes that are neither methods nor Python's words."""
    unquoted = re.sub(r"\"[^\"]*\"|'[^']*'", "", condition)
    names = re.findall(r"(?<![.\w])[A-Za-z_]\w*", unquoted)
    return [n for n in names if n not in ("and", "or", "not", "in", "True", "False", "None")]


def suites(layer: str, root: Path = EXPECTATIONS_DIR) -> list[Suite]:
    return [Suite(path) for path in sorted((root / layer).glob("*.json"))]


@dataclass
class Failure:
    expectation: str  # the expectation type and its arguments, as a reviewer reads them
    unexpected_count: int | None  # rows that broke it (None for a table-level expectation)
    sample: list[dict[str, Any]] = field(default_factory=list)  # some offending rows
    observed: Any = None  # what a table-level expectation saw instead


@dataclass
class Outcome:
    suite: str
    rows: int
    expectations: int
    failures: list[Failure]
    sampled_from: int | None = None  # the rows of the table or run, when `rows` are a sample

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def unexpected_rows(self) -> int:
        return sum(f.unexpected_count or 0 for f in self.failures)

    def summary(self) -> str:
        rows = f"{self.rows} rows" + (
            f" (a sample of {self.sampled_from})" if self.sampled_from is not None else ""
        )
        if self.passed:
            return f"{self.suite}: all {self.expectations} expectations met on {rows}"
        lines = [
            f"{self.suite}: {len(self.failures)} of {self.expectations} expectations failed "
            f"on {rows}"
        ]
        for failure in self.failures:
            rows = failure.unexpected_count
            lines.append(f"- {failure.expectation}" + ("" if rows is None else f" ({rows} rows)"))
        return "\n".join(lines)


# --- reading what a suite validates -------------------------------------------------------------


def read_new_rows(
    connection: duckdb.DuckDBPyConnection, suite: Suite, run_id: str, rows: int | None = None
) -> pd.DataFrame:
    """The rows the run `run_id` loaded into `crm.<entity>`, with the columns the suite needs and
    the key (so that an offending row says which record it is); of more than SAMPLE_LIMIT rows
    (`rows`: how many the run loaded, when known), a repeatable sample of SAMPLE_LIMIT."""
    select = ", ".join(q(c) for c in dict.fromkeys((*suite.key, *suite.columns, *LINEAGE)))
    new_rows = f"SELECT {select} FROM crm.{q(suite.table)} WHERE _run_id = ?"
    if rows is None or rows > SAMPLE_LIMIT:
        sample = f"reservoir({SAMPLE_LIMIT} ROWS) REPEATABLE (29)"
        new_rows = f"SELECT * FROM ({new_rows}) USING SAMPLE {sample}"
    return connection.execute(
        f"SELECT * FROM ({new_rows}) ORDER BY _source_file, _row_number", [run_id]
    ).df()


def validate_new_rows(connection: duckdb.DuckDBPyConnection, suite: Suite, run_id: str) -> Outcome:
    """The run's new rows of one entity against its suite: all of them up to SAMPLE_LIMIT, else a
    sample (`Outcome.sampled_from` says of how many). No new rows: nothing to validate, and
    great-expectations is not even imported."""
    (rows,) = connection.execute(
        f"SELECT COUNT(*) FROM crm.{q(suite.table)} WHERE _run_id = ?", [run_id]
    ).fetchone()
    if rows == 0:
        return Outcome(suite.name, 0, len(suite.spec["expectations"]), [])
    outcome = validate({suite: read_new_rows(connection, suite, run_id, rows)}, run_id)[suite.name]
    if rows > SAMPLE_LIMIT:
        outcome.sampled_from = rows
    return outcome


@dataclass(frozen=True)
class Build:
    """The latest dbt build of a mart with `meta.writes`, and whether the build whose rows it kept
    was validated: then only the rows this one wrote are new to the checks."""

    build_id: str
    kept_a_validated_build: bool


def latest_build(connection: duckdb.DuckDBPyConnection, suite: Suite) -> Build | None:
    builds = latest_writes(connection, suite.writes) if suite.writes else None
    if builds is None:
        return None
    build_id, previous = builds
    validated = previous is not None and table_exists(connection, VALIDATED_BUILDS)
    if validated:
        validated = connection.execute(
            f"SELECT count(*) > 0 FROM {VALIDATED_BUILDS} WHERE mart = ? AND build_id = ?",
            [suite.table, previous],
        ).fetchone()[0]
    return Build(build_id, validated)


def record_validated(connection: duckdb.DuckDBPyConnection, suite: Suite, build: Build) -> None:
    """After the mart's rows of `build` passed: the next build may keep them unvalidated."""
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {VALIDATED_BUILDS.split('.')[0]}")
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {VALIDATED_BUILDS} "
        "(mart VARCHAR PRIMARY KEY, build_id VARCHAR NOT NULL, validated_at TIMESTAMP NOT NULL)"
    )
    connection.execute(
        f"INSERT OR REPLACE INTO {VALIDATED_BUILDS} VALUES (?, ?, now()::TIMESTAMP)",
        [suite.table, build.build_id],
    )


def _mart_query(suite: Suite, build: Build | None, quote=q) -> tuple[str, list]:
    """The query of what `read_mart` reads, and its parameters, identifiers quoted by `quote`."""
    columns = ", ".join(f"t.{quote(c)}" for c in dict.fromkeys((*suite.key, *suite.columns)))
    table = f"marts.{quote(suite.table)}"
    days = suite.spec.get("meta", {}).get("newest_days")
    if days is None:
        return f"SELECT {columns} FROM {table} AS t", []
    newest = f"t.as_of_date > (SELECT MAX(as_of_date) FROM {table}) - CAST(? AS INTEGER)"
    if build is None or not build.kept_a_validated_build:
        return f"SELECT {columns} FROM {table} AS t WHERE {newest}", [int(days)]
    return rows_written(table, suite.writes, columns, where=newest), [int(days)]


def read_mart(
    connection: duckdb.DuckDBPyConnection,
    suite: Suite,
    build: Build | None = None,
    alike_once: bool = False,
) -> pd.DataFrame:
    """The mart's columns the suite names, and its key; for a suite with `meta.newest_days` (a
    history whose whole-table invariants are dbt tests), only the rows of its newest `as_of_date`s,
    and of those only the rows `build` wrote when it kept the rows of a validated build.

    With `alike_once`, for a suite that judges rows one by one (`Suite.row_by_row`), the rows
    alike in the suite's columns are read once: one row per distinct combination, with the key of
    one of those rows (the least) and, in ROWS_ALIKE, how many rows it stands for. A mart of
    millions of rows often holds a few thousand combinations; `validate` counts rows, not
    combinations."""
    sql, params = _mart_query(suite, build)
    if alike_once and suite.row_by_row:
        sql = _alike_once_query(suite, sql)
    return connection.execute(sql, params).df()


def _alike_once_query(suite: Suite, rows: str) -> str:
    """The query of `rows` (the suite's columns and key) once per distinct combination of the
    suite's columns, with the key of the least of its rows and their count in ROWS_ALIKE."""
    columns = ", ".join(q(c) for c in suite.columns)
    key_only = [k for k in suite.key if k not in suite.columns]
    key_columns = ", ".join(q(k) for k in key_only)
    picked = {k: f"struct_extract(_least_key, {i}) AS {q(k)}" for i, k in enumerate(key_only, 1)}
    select = ", ".join(picked.get(c, q(c)) for c in dict.fromkeys((*suite.key, *suite.columns)))
    grouped = (
        f"SELECT {columns}, count(*) AS {ROWS_ALIKE}"
        + (f", min(row({key_columns})) AS _least_key" if key_only else "")
        + f" FROM ({rows}) AS r GROUP BY {columns}"
    )
    return f"SELECT {select}, {ROWS_ALIKE} FROM ({grouped}) AS alike"


def latest_frames(connection: duckdb.DuckDBPyConnection) -> dict[Suite, pd.DataFrame]:
    """What the data docs show: each entity's rows of its latest load, and each built mart."""
    tables = "SELECT table_schema, table_name FROM information_schema.tables"
    built = set(connection.execute(tables).fetchall())
    frames = {}
    for suite in suites("crm"):
        if (suite.layer, suite.table) in built:
            (run_id,) = connection.execute(
                f"SELECT arg_max(_run_id, _loaded_at) FROM crm.{q(suite.table)}"
            ).fetchone()
            if run_id is not None:
                frames[suite] = read_new_rows(connection, suite, run_id)
    marts = [s for s in suites("marts") if (s.layer, s.table) in built]
    frames.update({suite: read_mart(connection, suite) for suite in marts})
    return frames


# --- reading on Spark ---------------------------------------------------------------------------


def read_new_rows_spark(session, suite: Suite, run_id: str, rows: int):
    """`read_new_rows` on Spark, as a Spark DataFrame: the run's rows of `crm.<entity>`, of more
    than SAMPLE_LIMIT a repeatable sample (those first by a hash of their place in their file)."""
    from pyspark.sql import functions as F

    from relanalytics_pipeline.spark import wall_time

    columns = list(dict.fromkeys((*suite.key, *suite.columns, *LINEAGE)))
    new_rows = session.table(f"crm.{suite.table}").where(F.col("_run_id") == run_id)
    new_rows = new_rows.select(*columns)
    if rows > SAMPLE_LIMIT:
        new_rows = new_rows.orderBy(F.xxhash64(*LINEAGE, F.lit(29))).limit(SAMPLE_LIMIT)
    return wall_time(new_rows)


def validate_new_rows_spark(session, suite: Suite, run_id: str) -> Outcome:
    """`validate_new_rows` on the Spark warehouse."""
    from pyspark.sql import functions as F

    rows = session.table(f"crm.{suite.table}").where(F.col("_run_id") == run_id).count()
    if rows == 0:
        return Outcome(suite.name, 0, len(suite.spec["expectations"]), [])
    outcome = validate({suite: read_new_rows_spark(session, suite, run_id, rows)}, run_id)
    outcome = outcome[suite.name]
    if rows > SAMPLE_LIMIT:
        outcome.sampled_from = rows
    return outcome


def latest_build_spark(session, suite: Suite) -> Build | None:
    """`latest_build` on the Spark warehouse."""
    if not suite.writes or not session.catalog.tableExists(suite.writes):
        return None
    build_id, previous = session.sql(
        f"SELECT max(build_id), max(previous_build_id) FROM {suite.writes}"
    ).first()
    if build_id is None:
        return None
    validated = previous is not None and session.catalog.tableExists(VALIDATED_BUILDS)
    if validated:
        validated = session.sql(
            f"SELECT count(*) > 0 FROM {VALIDATED_BUILDS} WHERE mart = ? AND build_id = ?",
            args=[suite.table, previous],
        ).first()[0]
    return Build(build_id, validated)


def read_mart_spark(session, suite: Suite, build: Build | None = None):
    """`read_mart` on Spark, as a Spark DataFrame."""
    from relanalytics_pipeline.spark import quote, wall_time

    sql, params = _mart_query(suite, build, quote)
    return wall_time(session.sql(sql, args=params))


def latest_frames_spark(session) -> dict[Suite, Any]:
    """`latest_frames` on the Spark warehouse, as Spark DataFrames."""
    from pyspark.sql import functions as F

    frames = {}
    for suite in suites("crm"):
        table = f"crm.{suite.table}"
        if session.catalog.tableExists(table):
            (run_id,) = session.table(table).agg(F.max_by("_run_id", "_loaded_at")).first()
            if run_id is not None:
                rows = session.table(table).where(F.col("_run_id") == run_id).count()
                frames[suite] = read_new_rows_spark(session, suite, run_id, rows)
    for suite in suites("marts"):
        if session.catalog.tableExists(f"marts.{suite.table}"):
            frames[suite] = read_mart_spark(session, suite)
    return frames


def record_validated_spark(session, suite: Suite, build: Build) -> None:
    """`record_validated` on Spark, whose Parquet tables have no upsert: the few rows (one per
    mart) are read, changed and written back whole."""
    records = pd.DataFrame(columns=["mart", "build_id"])
    if session.catalog.tableExists(VALIDATED_BUILDS):
        records = session.table(VALIDATED_BUILDS).select("mart", "build_id").toPandas()
    records = pd.concat(
        [records[records["mart"] != suite.table], pd.DataFrame([[suite.table, build.build_id]],
         columns=["mart", "build_id"])]
    )  # fmt: skip
    session.sql(f"CREATE DATABASE IF NOT EXISTS {VALIDATED_BUILDS.split('.')[0]}")
    frame = session.createDataFrame(records, "mart string, build_id string")
    frame = frame.selectExpr("*", "CAST(current_timestamp() AS TIMESTAMP) AS validated_at")
    frame.write.mode("overwrite").format("parquet").saveAsTable(VALIDATED_BUILDS)


# --- validating ---------------------------------------------------------------------------------


def _context(docs_dir: Path | None = None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites["local_site"] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        # No usage statistics leave the machine, and no progress bars fill the run logs.
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _describe(config) -> str:
    """The expectation as its suite file writes it (a Spark copy's row condition as written)."""
    kwargs = dict(config.kwargs)
    written = (config.meta or {}).get(WRITTEN_CONDITION)
    if written is not None:
        kwargs.update(row_condition=written, condition_parser="pandas")
    condition = kwargs.get("row_condition")
    if isinstance(condition, dict) and "pass_through_filter" in condition:
        kwargs["row_condition"] = condition["pass_through_filter"]
    arguments = ", ".join(
        f"{k}={v!r}" for k, v in kwargs.items() if k not in ("batch_id", "result_format")
    )
    return f"{config.type}({arguments})"


def _failure(result, frame) -> Failure:
    details = result.result or {}
    if result.exception_info and result.exception_info.get("raised_exception"):
        observed = result.exception_info.get("exception_message")
    else:
        observed = details.get("observed_value")
    indexes = details.get("partial_unexpected_index_list") or []
    unexpected = details.get("unexpected_count")
    if isinstance(frame, pd.DataFrame):
        sample = frame.loc[list(indexes)[:SAMPLE_ROWS]] if len(frame) else frame.head(0)
        if _stands_for_rows_alike(frame) and unexpected is not None:
            # Each offending row of the frame stands for its rows alike (_result_format: all of
            # the offending rows' indexes).
            every = list(details.get("unexpected_index_list") or [])
            unexpected = int(frame.loc[every, ROWS_ALIKE].sum())
        sample = sample.drop(columns=ROWS_ALIKE, errors="ignore")
    else:  # Spark: the offending rows themselves (see _result_format)
        sample = pd.DataFrame(list(indexes)[:SAMPLE_ROWS], columns=frame.columns)
    sample = _without_people(sample)
    return Failure(
        expectation=_describe(result.expectation_config),
        unexpected_count=unexpected,
        # JSON-safe: timestamps and decimals as text, missing values as null.
        sample=json.loads(sample.to_json(orient="records", date_format="iso", default_handler=str)),
        observed=observed,
    )


def _without_people(sample: pd.DataFrame) -> pd.DataFrame:
    """The sample without the columns that name someone (PERSONAL_COLUMNS)."""
    personal = [
        c for c in sample.columns if c in PERSONAL_COLUMNS or c.endswith(_PERSONAL_SUFFIXES)
    ]
    sample = sample.drop(columns=personal)
    if {"record_type", "record_id"} <= set(sample.columns):
        sample = sample.assign(
            record_id=sample["record_id"].where(~sample["record_type"].isin(_PEOPLE_RECORDS))
        )
    return sample


def _is_spark(frame) -> bool:
    return not isinstance(frame, pd.DataFrame)


def _stands_for_rows_alike(frame) -> bool:
    """Whether the pandas `frame` holds rows alike once each (read_mart's `alike_once`)."""
    return isinstance(frame, pd.DataFrame) and ROWS_ALIKE in frame.columns


def _result_format(frame) -> dict[str, Any]:
    """SUMMARY with a few offending rows. A pandas frame's are looked up by their index; a Spark
    DataFrame has none, so great-expectations returns the rows' columns instead. Of a frame of
    rows alike once each, every offending row's index (COMPLETE), to count the rows they stand
    for."""
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS}
    if _stands_for_rows_alike(frame):
        result_format["result_format"] = "COMPLETE"
    if _is_spark(frame):
        result_format["unexpected_index_column_names"] = list(frame.columns)
    return result_format


def _validate_in(context, frames: Mapping[Suite, Any], run_name: str | None):
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    sources = {}
    outcomes = {}
    for suite, frame in frames.items():
        spark = _is_spark(frame)
        if spark not in sources:
            add = context.data_sources.add_spark if spark else context.data_sources.add_pandas
            sources[spark] = add("spark" if spark else "warehouse")
        validated = frame
        if not spark:
            # A fresh index: offending rows are looked up by position in the frame, key included.
            frame = frame.reset_index(drop=True)
            # great-expectations filters and copies every column of the frame for each
            # expectation with a row condition: it gets only the columns the suite names (those
            # the frame has: a missing one fails its expectations as before).
            validated = frame[[c for c in suite.columns if c in frame.columns]]
        batches = (
            sources[spark]
            .add_dataframe_asset(suite.name)
            .add_batch_definition_whole_dataframe("rows")
        )
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(
                name=suite.name, data=batches, suite=context.suites.get(_suite_name(suite, spark))
            )
        )
        result = definition.run(
            batch_parameters={"dataframe": validated},
            result_format=_result_format(frame),
            run_id=RunIdentifier(run_name=run_name) if run_name else None,
        )
        outcomes[suite.name] = Outcome(
            suite=suite.name,
            rows=frame.count() if spark else _rows(frame),
            expectations=len(result.results),
            failures=[_failure(r, frame) for r in result.results if not r.success],
        )
    return outcomes


def _rows(frame: pd.DataFrame) -> int:
    """The rows a pandas frame stands for."""
    return int(frame[ROWS_ALIKE].sum()) if _stands_for_rows_alike(frame) else len(frame)


# In a Spark copy's expectation meta: the row condition its suite file writes.
WRITTEN_CONDITION = "row_condition_in_suite"


def _suite_name(suite: Suite, spark: bool) -> str:
    """The name of the suite's copy for Spark DataFrames beside the pandas one."""
    return f"{suite.name} (spark)" if spark else suite.name


def spark_condition(condition: str) -> str:
    """A suite's pandas row condition as Spark SQL, for great-expectations' `spark` parser:
    `x.isna()` and `x.notna()` become `x IS NULL` and `x IS NOT NULL`; comparisons (`==`, `!=`),
    `and`, `or`, double-quoted strings and boolean columns read the same in both."""
    condition = re.sub(r"(?<![.\w])([A-Za-z_]\w*)\.isna\(\)", r"\1 IS NULL", condition)
    return re.sub(r"(?<![.\w])([A-Za-z_]\w*)\.notna\(\)", r"\1 IS NOT NULL", condition)


def _spark_spec(suite: Suite) -> dict[str, Any]:
    """The suite for Spark DataFrames: its row conditions in Spark SQL."""
    expectations = []
    for expectation in suite.spec["expectations"]:
        kwargs = dict(expectation["kwargs"])
        meta = dict(expectation.get("meta", {}))
        if kwargs.get("condition_parser") == "pandas":
            meta[WRITTEN_CONDITION] = kwargs["row_condition"]
            kwargs["row_condition"] = spark_condition(kwargs["row_condition"])
            kwargs["condition_parser"] = "spark"
        expectations.append({**expectation, "kwargs": kwargs, "meta": meta})
    return {**suite.spec, "name": _suite_name(suite, True), "expectations": expectations}


def _add_suites(context, items: Iterable[Suite], spark: bool = False) -> None:
    from great_expectations.core import ExpectationSuite

    for suite in items:
        context.suites.add(ExpectationSuite(**(_spark_spec(suite) if spark else suite.spec)))


def validate(frames: Mapping[Suite, Any], run_name: str | None = None) -> dict[str, Outcome]:
    """Validate each frame (a pandas or a Spark DataFrame) against its suite."""
    context = _context(None)
    _add_suites(context, [s for s, frame in frames.items() if not _is_spark(frame)])
    _add_suites(context, [s for s, frame in frames.items() if _is_spark(frame)], spark=True)
    return _validate_in(context, frames, run_name)


def build_data_docs(
    docs_dir: Path, frames: Mapping[Suite, Any], run_name: str | None = None
) -> tuple[Path, dict[str, Outcome]]:
    """GE's HTML data docs in `docs_dir`: a page per suite (every suite of every layer) and a page
    per validation of `frames` (pandas or Spark DataFrames), which load nothing from the network.
    A suite validated on Spark has its page as its Spark copy. Returns the index page and the
    outcomes."""
    from relanalytics_pipeline.defs.quality.data_docs import use_local_assets

    context = _context(docs_dir)
    on_spark = {s for s, frame in frames.items() if _is_spark(frame)}
    every_suite = [s for layer in LAYERS for s in suites(layer)]
    _add_suites(context, [s for s in every_suite if s not in on_spark])
    _add_suites(context, [s for s in every_suite if s in on_spark], spark=True)
    outcomes = _validate_in(context, frames, run_name)
    context.build_data_docs()
    use_local_assets(docs_dir)
    return docs_dir / "index.html", outcomes


def failures_table(outcome: Outcome) -> str:
    """Markdown for the Dagster UI: each failed expectation, its unexpected rows and a sample."""
    if outcome.passed:
        return "Every expectation was met."
    lines = ["| expectation | unexpected rows | sample of offending rows |", "|---|---|---|"]
    for f in outcome.failures:
        sample = f.sample or f.observed
        shown = json.dumps(sample, ensure_ascii=False, default=str).replace("|", "\\|")
        count = "table-level" if f.unexpected_count is None else f.unexpected_count
        lines.append(f"| `{f.expectation}` | {count} | {shown[:2000]} |")
    return "\n".join(lines)


# --- freshness ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """How old the newest landed activity is at the end of the as-of day (UTC)."""

    newest: dt.datetime | None  # the latest modified_at in crm.activities, any version
    as_of: dt.date
    max_age_hours: float

    @property
    def reference(self) -> dt.datetime:
        return dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time())

    @property
    def age_hours(self) -> float | None:
        if self.newest is None:
            return None
        return (self.reference - self.newest).total_seconds() / 3600

    @property
    def fresh(self) -> bool:
        return self.age_hours is not None and self.age_hours <= self.max_age_hours

    def sentence(self) -> str:
        if self.newest is None:
            return "No activity has landed yet."
        state = "within" if self.fresh else "older than"
        return (
            f"The newest activity (modified {self.newest:%Y-%m-%d %H:%M} UTC) is "
            f"{self.age_hours:.1f} hours old at the end of {self.as_of}: {state} the "
            f"{self.max_age_hours:g} hours allowed."
        )


def activity_freshness(
    connection: duckdb.DuckDBPyConnection, as_of: dt.date, max_age_hours: float
) -> Freshness:
    (newest,) = connection.execute("SELECT MAX(modified_at) FROM crm.activities").fetchone()
    return Freshness(newest, as_of, max_age_hours)


def activity_freshness_spark(session, as_of: dt.date, max_age_hours: float) -> Freshness:
    """`activity_freshness` on Spark; the time read as UTC wall time (pyspark would turn an
    instant into the machine's local time)."""
    (newest,) = session.sql(
        "SELECT CAST(MAX(modified_at) AS TIMESTAMP_NTZ) FROM crm.activities"
    ).first()
    return Freshness(newest, as_of, max_age_hours)

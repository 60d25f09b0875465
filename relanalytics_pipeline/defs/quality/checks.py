"""Data quality as Dagster asset checks: the great-expectations suites and activity freshness.

- Ingest: each `crm/<entity>` with a suite is checked, inside the ingest step, against the rows
  this run loaded (a sample of them on a large load). The ingest itself enforces the raw contract
  row by row (keys, types, accepted values, plausible dates, references, one row per version);
  the suites hold what it cannot say: a row's columns together. Not blocking: plausibility
  warnings. Inside the step, which holds the warehouse's slot already, rather than steps of their
  own.
- Unknown columns: a warning on `crm/<entity>` when a file this run loaded has columns the
  contract does not know (a misspelt `duraton_minutes` loads as no duration): their values load
  nowhere. Files whose columns are all known pass.
- Freshness: a warning on `crm/activities` when the newest activity is older than
  RELANALYTICS_MAX_ACTIVITY_AGE_HOURS at the end of the as-of day.
- Marts: one step after dbt validates every BI mart that has a suite
  (`expectations/marts/<mart>.json` names the mart). Blocking: a failed mart check fails that
  step, so nothing downstream of it (charts, models, publication) runs on bad data. One step
  for all marts (one great-expectations context, not one per mart) means that one bad mart
  also holds back what depends only on the others. The history is validated on the rows its
  latest build wrote once the build whose rows it kept passed (defs/quality/suites.py): each passing
  check records its build in the warehouse.
- With RELANALYTICS_ENGINE=spark the same checks validate Spark DataFrames of the Spark
  warehouse (defs/quality/suites.py), in the session of the step (relanalytics_pipeline/spark.py).
"""

from collections.abc import Iterator, Mapping

import dagster as dg

from relanalytics_pipeline.defs.ingest.load import EntityReport
from relanalytics_pipeline.defs.quality.suites import (
    SAMPLE_ROWS,
    Build,
    Outcome,
    Suite,
    activity_freshness,
    activity_freshness_spark,
    failures_table,
    latest_build,
    latest_build_spark,
    read_mart,
    read_mart_spark,
    record_validated,
    record_validated_spark,
    suites,
    validate,
    validate_new_rows,
    validate_new_rows_spark,
)
from relanalytics_pipeline.raw_contract import LOAD_ORDER
from relanalytics_pipeline.settings import Settings
from relanalytics_pipeline.warehouse import WAREHOUSE_POOL, connect

SUITE_CHECK = "great_expectations"
FRESHNESS_CHECK = "activities_fresh"
UNKNOWN_COLUMNS_CHECK = "no_unknown_columns"
ACTIVITIES = dg.AssetKey(["crm", "activities"])


def _key(suite: Suite) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(dg.AssetKey([suite.layer, suite.table]), SUITE_CHECK)


def _spec(
    suite: Suite, blocking: bool, after: list[dg.AssetKey] | None = None
) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        SUITE_CHECK,
        asset=[suite.layer, suite.table],
        description=f"{suite.description} Suite: expectations/{suite.layer}/{suite.table}.json.",
        blocking=blocking,
        additional_deps=after,
    )


def suite_result(suite: Suite, outcome: Outcome, **metadata) -> dg.AssetCheckResult:
    """A suite's outcome as the UI shows it: counts, and per failed expectation its unexpected
    rows and a sample of the offending rows."""
    return dg.AssetCheckResult(
        asset_key=_key(suite).asset_key,
        check_name=SUITE_CHECK,
        passed=outcome.passed,
        description=outcome.summary(),
        metadata={
            **metadata,
            "rows_validated": outcome.rows,
            **({"sampled_from": outcome.sampled_from} if outcome.sampled_from is not None else {}),
            "expectations": outcome.expectations,
            "failed_expectations": len(outcome.failures),
            "unexpected_rows": outcome.unexpected_rows,
            "failures": dg.MetadataValue.md(failures_table(outcome)),
            f"offending_rows_sample (up to {SAMPLE_ROWS} per expectation)": dg.MetadataValue.json(
                {f.expectation: f.sample or f.observed for f in outcome.failures}
            ),
        },
    )


# --- ingest ---------------------------------------------------------------------------------


def ingest_check_specs() -> list[dg.AssetCheckSpec]:
    specs = [_spec(suite, blocking=False) for suite in suites("crm")]
    specs.append(
        dg.AssetCheckSpec(
            FRESHNESS_CHECK,
            asset=ACTIVITIES,
            description=(
                "Warns when the newest activity (latest modified_at) is older than "
                "RELANALYTICS_MAX_ACTIVITY_AGE_HOURS (default 72) at the end of the as-of day."
            ),
        )
    )
    specs += [
        dg.AssetCheckSpec(
            UNKNOWN_COLUMNS_CHECK,
            asset=["crm", entity],
            description=(
                "Warns when a file this run loaded has columns outside the raw contract (their "
                "values load nowhere), naming any that nearly spells a contract column."
            ),
        )
        for entity in LOAD_ORDER
    ]
    return specs


def unknown_columns_result(report: EntityReport) -> dg.AssetCheckResult:
    """Whether the entity's files loaded this run had only contract columns."""
    unknown = {f.source_file: f.unknown_columns for f in report.files if f.unknown_columns}
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(["crm", report.entity]),
        check_name=UNKNOWN_COLUMNS_CHECK,
        passed=not unknown,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "; ".join(f"{file}: {', '.join(columns)}" for file, columns in unknown.items())
            if unknown
            else "Every column of the files loaded this run is in the contract."
        ),
        metadata={
            "files_with_unknown_columns": len(unknown),
            "unknown_columns": dg.MetadataValue.json(unknown),
        },
    )


def ingest_check_results(
    context: dg.AssetExecutionContext,
    settings: Settings,
    reports: Mapping[str, EntityReport],
    session=None,
) -> Iterator[dg.AssetCheckResult]:
    """The selected ingest checks, on the rows and files this run loaded (`reports`, per entity).
    Call after the loads; with the Spark engine, after the hand-off, in its `session`."""
    selected = context.selected_asset_check_keys
    for entity, report in reports.items():
        if dg.AssetCheckKey(dg.AssetKey(["crm", entity]), UNKNOWN_COLUMNS_CHECK) in selected:
            yield unknown_columns_result(report)
    wanted = [s for s in suites("crm") if _key(s) in selected]
    fresh_wanted = dg.AssetCheckKey(ACTIVITIES, FRESHNESS_CHECK) in selected
    run_id = context.run.run_id
    as_of, max_age = settings.as_of, settings.max_activity_age_hours
    freshness = None
    if session is not None:
        for suite in wanted:
            outcome = validate_new_rows_spark(session, suite, run_id)
            yield suite_result(suite, outcome, run_id=run_id)
        if fresh_wanted:
            freshness = activity_freshness_spark(session, as_of, max_age)
    else:
        with connect(settings.warehouse, read_only=True) as connection:
            for suite in wanted:
                outcome = validate_new_rows(connection, suite, run_id)
                yield suite_result(suite, outcome, run_id=run_id)
            if fresh_wanted:
                freshness = activity_freshness(connection, as_of, max_age)
    if freshness is not None:
        yield dg.AssetCheckResult(
            asset_key=ACTIVITIES,
            check_name=FRESHNESS_CHECK,
            passed=freshness.fresh,
            severity=dg.AssetCheckSeverity.WARN,
            description=freshness.sentence(),
            metadata={
                "newest_modified_at": str(freshness.newest),
                "age_hours": freshness.age_hours,
                "max_age_hours": freshness.max_age_hours,
                "as_of": freshness.as_of.isoformat(),
            },
        )


# --- marts ----------------------------------------------------------------------------------


def _read_after_dbt(suite: Suite) -> list[dg.AssetKey]:
    """The tables a Python asset writes after dbt that the mart reads (the similar-deals marts,
    views over `learn.won_deal_neighbours`): its check waits for them. The manifest is read once,
    when the definitions load."""
    from relanalytics_pipeline.defs.transform.resources import model_reads_after_dbt

    return sorted(model_reads_after_dbt(suite.table), key=str)


def _marts_check(name: str, checked: list[Suite]) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=name,
        specs=[_spec(suite, blocking=True, after=_read_after_dbt(suite)) for suite in checked],
        can_subset=True,
        # It reads the marts and records the builds it validated; DuckDB refuses a writer while
        # another process holds even a read-only connection: it takes its turn with the writers.
        pool=WAREHOUSE_POOL,
    )
    def marts_check(context: dg.AssetCheckExecutionContext, settings: dg.ResourceParam[Settings]):
        """Validate each selected BI mart against `expectations/marts/<mart>.json` (blocking)."""
        wanted = [s for s in checked if _key(s) in context.selected_asset_check_keys]
        if settings.engine == "spark":
            from relanalytics_pipeline.spark import spark_session

            with spark_session(settings) as session:
                builds = {suite: latest_build_spark(session, suite) for suite in wanted}
                frames = {s: read_mart_spark(session, s, builds[s]) for s in wanted}
                outcomes = validate(frames, run_name=context.run.run_id)
                for suite in _validated(wanted, builds, outcomes):
                    record_validated_spark(session, suite, builds[suite])
        else:
            warehouse = settings.warehouse
            with connect(warehouse, read_only=True) as connection:
                builds = {suite: latest_build(connection, suite) for suite in wanted}
                frames = {
                    suite: read_mart(connection, suite, builds[suite], alike_once=True)
                    for suite in wanted
                }
            outcomes = validate(frames, run_name=context.run.run_id)
            validated = _validated(wanted, builds, outcomes)
            if validated:
                with connect(warehouse) as connection:
                    for suite in validated:
                        record_validated(connection, suite, builds[suite])
        for suite in wanted:
            outcome = outcomes[suite.name]
            if not outcome.passed:
                context.log.error(outcome.summary())
            build = builds[suite]
            yield suite_result(
                suite,
                outcome,
                **({"validated_rows": _rows_validated(build)} if suite.writes else {}),
            )

    return marts_check


def _validated(
    wanted: list[Suite], builds: Mapping[Suite, Build | None], outcomes: Mapping[str, Outcome]
) -> list[Suite]:
    """The suites of a mart with `meta.writes` whose latest build passed."""
    return [s for s in wanted if builds[s] is not None and outcomes[s.name].passed]


def _rows_validated(build: Build | None) -> str:
    if build is not None and build.kept_a_validated_build:
        return f"those dbt build {build.build_id} wrote (it kept the rows of a validated build)"
    return "all of the newest days (the rows kept by the build were not validated)"


def marts_checks() -> list[dg.AssetChecksDefinition]:
    """One check step for every mart, after dbt and after the similar-deals model whose table
    the similar-deals marts (views) read."""
    return [_marts_check("marts_great_expectations", suites("marts"))]

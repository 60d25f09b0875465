"""The cases the great-expectations suites are held to on both engines: on DuckDB and pandas
(tests/pipeline/test_quality.py) and on Spark (tests/spark/test_spark_quality.py)."""

from pathlib import Path

import pytest

from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.defs.quality import suites as quality
from relanalytics_pipeline.defs.quality.checks import FRESHNESS_CHECK, SUITE_CHECK
from relanalytics_pipeline.defs.quality.suites import suites

SUITES = {s.name: s for layer in ("crm", "marts") for s in suites(layer)}

# Two activity files the ingest loads as the contract allows. The second one's rows disagree
# with each other's columns, and it lands again under another name: a second run loads it again.
FIRST_FILE = [
    "e1,email,completed,2026-03-01T10:00:00Z,,,2026-03-01T10:00:00Z",
    "m1,appointment,open,,2026-04-02T10:00:00Z,2026-04-02T11:00:00Z,2026-03-02T10:00:00Z",
]
SECOND_FILE = [
    "e2,email,completed,,,,2026-03-03T10:00:00Z",  # completed, but when?
    "m2,appointment,open,2026-03-03T09:00:00Z,,,2026-03-03T10:00:00Z",  # open, yet happened
    # It ends an hour before it starts.
    "m3,appointment,completed,2026-03-03T09:00:00Z,2026-03-03T09:00:00Z,2026-03-03T08:00:00Z,"
    "2026-03-03T10:00:00Z",
    "t1,task,completed,2026-03-03T09:00:00Z,,,2026-03-03T10:00:00Z",
]
# What crm.activities finds in the second run's rows: each offending row, with where it came
# from (its landing file and row).
SECOND_RUN_FAILURES = {
    "expect_column_values_to_not_be_null": [("e2", "activities/3.csv", 1)],  # completed
    "expect_column_values_to_be_null": [("m2", "activities/3.csv", 2)],  # open
    "expect_column_pair_values_a_to_be_greater_than_b": [("m3", "activities/3.csv", 3)],
}


def activities_csv(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "activity_id,activity_type,status,occurred_at,scheduled_start,scheduled_end,modified_at\n"
    )
    path.write_text(header + "".join(r + "\n" for r in rows))


def ingest_two_runs(warehouse: Path, landing: Path):
    """FIRST_FILE and SECOND_FILE ingested by run-1, then SECOND_FILE again, renamed, by run-2.
    Returns run-1's report."""
    activities_csv(landing / "activities" / "1.csv", FIRST_FILE)
    activities_csv(landing / "activities" / "2.csv", SECOND_FILE)
    first = ingest_entity(warehouse, landing, "activities", run_id="run-1")
    (landing / "activities" / "2.csv").rename(landing / "activities" / "3.csv")
    ingest_entity(warehouse, landing, "activities", run_id="run-2")
    return first


def failures_by_kind(outcome) -> dict[str, list[tuple]]:
    """Per failed expectation (its name), the sampled rows' ids and where each came from."""
    return {
        f.expectation.split("(")[0]: [
            (r["activity_id"], r["_source_file"], r["_row_number"]) for r in f.sample
        ]
        for f in outcome.failures
    }


def hold_the_second_run(validate_run, monkeypatch):
    """The engine's `validate_run(suite, run_id)` on the runs of ingest_two_runs: the suite sees
    the second run's rows only, finds SECOND_RUN_FAILURES; beyond SAMPLE_LIMIT new rows (a first
    load) it validates a sample of SAMPLE_LIMIT rows; a run that loaded nothing passes. Returns
    the outcome of the second run, whole."""
    suite = SUITES["crm.activities"]
    outcome = validate_run(suite, "run-2")
    assert (outcome.rows, outcome.sampled_from, outcome.unexpected_rows) == (4, None, 3)
    assert failures_by_kind(outcome) == SECOND_RUN_FAILURES
    monkeypatch.setattr(quality, "SAMPLE_LIMIT", 2)
    sampled = validate_run(suite, "run-2")
    assert (sampled.rows, sampled.sampled_from) == (2, 4)
    assert "on 2 rows (a sample of 4)" in sampled.summary()
    nothing = validate_run(suite, "run-3")
    assert (nothing.rows, nothing.passed) == (0, True)
    return outcome


def check_evaluations(result) -> dict:
    """A Dagster run's check evaluations by (asset, check)."""
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def hold_the_hand_made_ingest_checks(checks: dict) -> None:
    """The ingest's checks (check_evaluations) of a first run over the hand-made landing folder as
    of 2026-03-31 with RELANALYTICS_MAX_ACTIVITY_AGE_HOURS=1: every crm suite passes on the 20
    activity versions it loaded; the newest activity, e7, was modified 2026-04-01 00:30: -0.5
    hours old at the end of the as-of day, fresh."""
    assert all(checks[(f"crm/{s.table}", SUITE_CHECK)].passed for s in suites("crm"))
    metadata = checks[("crm/activities", SUITE_CHECK)].metadata
    assert (metadata["rows_validated"].value, metadata["unexpected_rows"].value) == (20, 0)
    fresh = checks[("crm/activities", FRESHNESS_CHECK)]
    assert fresh.passed and fresh.metadata["age_hours"].value == pytest.approx(-0.5)

"""The great-expectations suites and the freshness check, on clean and defective data.

great-expectations really runs (pandas mode); the warehouse is a real DuckDB file.
"""

import datetime as dt
import json
import logging
import socket

import dagster as dg
import pandas as pd
import pytest
from conftest import query
from support.quality_cases import (
    SUITES,
    check_evaluations,
    hold_the_hand_made_ingest_checks,
    hold_the_second_run,
    ingest_two_runs,
)

from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.defs.quality import suites as quality
from relanalytics_pipeline.defs.quality.checks import (
    FRESHNESS_CHECK,
    SUITE_CHECK,
    UNKNOWN_COLUMNS_CHECK,
)
from relanalytics_pipeline.defs.quality.suites import (
    ROWS_ALIKE,
    Freshness,
    Suite,
    read_mart,
    suites,
    validate,
)
from relanalytics_pipeline.defs.run_settings import RunSettings
from relanalytics_pipeline.raw_contract import ENTITIES
from relanalytics_pipeline.warehouse import connect


@pytest.fixture(scope="module")
def graph():
    from relanalytics_pipeline.definitions import defs

    return defs.resolve_asset_graph()


def test_every_suite_names_an_asset_and_every_mart_is_guarded(graph):
    from relanalytics_pipeline.defs.transform.resources import manifest

    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {f"{s.layer}/{s.table}" for s in SUITES.values()} <= assets
    assert {s.table for s in suites("crm")} <= set(ENTITIES)
    # A mart without a suite has all its rules in dbt: an enforced contract and its tests.
    marts = {a.split("/")[1] for a in assets if a.startswith("marts/")}
    unsuited = marts - {s.table for s in suites("marts")}
    nodes = manifest()["nodes"].values()
    contracted = {n["name"] for n in nodes if n.get("contract", {}).get("enforced")}
    assert unsuited == {"relationship_activity_daily"} and unsuited <= contracted
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert {(f"{s.layer}/{s.table}", SUITE_CHECK) for s in SUITES.values()} <= checks
    assert ("crm/activities", FRESHNESS_CHECK) in checks


def test_mart_checks_block_and_ingest_checks_do_not(graph):
    specs = {
        (spec.asset_key.to_user_string(), spec.name): spec
        for assets_def in graph.assets_defs
        for spec in assets_def.check_specs
    }
    for suite in SUITES.values():
        spec = specs[(f"{suite.layer}/{suite.table}", SUITE_CHECK)]
        assert spec.blocking == (suite.layer == "marts"), suite.name
        assert suite.description and suite.description in spec.description


def test_a_suite_must_carry_its_file_name(tmp_path):
    (tmp_path / "marts").mkdir()
    path = tmp_path / "marts" / "deal_tracking.json"
    path.write_text('{"name": "marts.relationship_kpis", "expectations": []}')
    with pytest.raises(ValueError, match="must be named 'marts.deal_tracking'"):
        _ = Suite(path).spec


def test_crm_suites_leave_the_raw_contract_to_the_ingest():
    """What the ingest quarantines row by row (keys, accepted values, plausible dates and ranges,
    one row per version) is not checked again: the crm suites hold only rules over a row's columns
    together (test_quality_owners.py shows the ingest catching each contract rule)."""
    for suite in suites("crm"):
        entity = ENTITIES[suite.table]
        for expectation in suite.spec["expectations"]:
            kind, kwargs = expectation["type"], expectation["kwargs"]
            assert kind != "expect_compound_columns_to_be_unique", suite.name
            if "row_condition" in kwargs or "column" not in kwargs:
                continue
            column = entity.column(kwargs["column"])
            assert not column.not_null and column.kind != "enum", (suite.name, column)
            assert column.accepted_range is None, (suite.name, column)


KPI_ROW = {
    "record_type": "opportunity", "record_id": "o1", "period": "all", "as_of_date": dt.date(2026, 3, 31),
    "period_days": None, "emails_sent": 2, "emails_received": 1, "meetings": 0, "calls_outgoing": 0,
    "calls_incoming": 0, "past_activities": 4, "customer_initiated": 1, "team_initiated": 2,
    "upcoming_activities": 2, "customer_response_rate": 0.0, "customer_response_hours": None,
    "customer_response_hours_median": None, "team_response_hours": 23.0,
    "team_response_hours_median": 23.0, "team_time_minutes": 42.5, "customer_time_minutes": 15.0,
    "email_send_ratio": 2.0, "customer_email_send_ratio": 0.5,
}  # fmt: skip


def test_a_clean_mart_passes_and_a_broken_one_fails_with_counts_and_samples(monkeypatch, capfd):
    suite = SUITES["marts.relationship_kpis"]
    clean = pd.DataFrame(
        [KPI_ROW, {**KPI_ROW, "period": "trailing", "period_days": 90, "past_activities": 3}]
    )
    connections = []

    def refuse(sock, address):
        connections.append(address)
        raise OSError("no network in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    (outcome,) = validate({suite: clean}).values()
    # No network call was even tried, and no progress bar reached the logs.
    assert connections == []
    assert "Calculating Metrics" not in capfd.readouterr().err
    assert (outcome.passed, outcome.rows, outcome.unexpected_rows) == (True, 2, 0)
    assert outcome.expectations == len(suite.spec["expectations"])

    broken = pd.DataFrame(
        [
            KPI_ROW,
            {**KPI_ROW, "record_id": "o2", "meetings": -1},  # a negative count
            {**KPI_ROW, "record_id": "o3", "period": "trailing", "period_days": 0,
             "team_response_hours_median": -2.0},  # two faults
            # A response rate above 1 and a record twice: dbt's tests, not this suite's.
            {**KPI_ROW, "customer_response_rate": 1.5},
        ]
    )  # fmt: skip
    (outcome,) = validate({suite: broken}).values()
    failed = {
        f.expectation.split("(")[0] + ":" + f.expectation.split("'")[1]: f for f in outcome.failures
    }
    assert {name: f.unexpected_count for name, f in failed.items()} == {
        "expect_column_values_to_be_between:meetings": 1,
        "expect_column_values_to_be_between:period_days": 1,
        "expect_column_values_to_be_between:team_response_hours_median": 1,
    }
    sample = failed["expect_column_values_to_be_between:meetings"].sample
    assert [(row["record_id"], row["meetings"]) for row in sample] == [("o2", -1)]
    sample = failed["expect_column_values_to_be_between:period_days"].sample
    assert [(row["record_id"], row["period_days"]) for row in sample] == [("o3", 0)]
    assert outcome.unexpected_rows == 3
    assert "3 of" in outcome.summary() and "on 4 rows" in outcome.summary()


def test_great_expectations_gets_only_the_suites_columns(monkeypatch):
    """great-expectations copies every column of the frame for each expectation with a row
    condition: the key (a mart's meta.key; text, the dearest to copy) stays out of what it
    validates, and still names the offending rows."""
    import great_expectations as gx

    suite = SUITES["marts.relationship_kpis"]
    validated = []
    run = gx.ValidationDefinition.run

    def recording(self, *args, batch_parameters, **kwargs):
        validated.append(list(batch_parameters["dataframe"].columns))
        return run(self, *args, batch_parameters=batch_parameters, **kwargs)

    monkeypatch.setattr(gx.ValidationDefinition, "run", recording)
    broken = pd.DataFrame([KPI_ROW, {**KPI_ROW, "record_id": "o2", "meetings": -1}])
    (outcome,) = validate({suite: broken}).values()
    assert validated == [suite.columns]
    assert set(suite.key) - set(suite.columns) == {"record_type", "record_id", "period"}
    (failure,) = outcome.failures
    assert [(row["record_id"], row["meetings"]) for row in failure.sample] == [("o2", -1)]


def test_ingest_suites_see_only_the_rows_of_their_run(tmp_path, monkeypatch):
    """Rows the ingest loads, as the contract allows them, whose columns disagree with each other:
    the suite warns about those of its run, with where each came from."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    first = ingest_two_runs(warehouse, landing)
    assert first.total("rows_loaded") == 6 and first.total("rows_quarantined") == 0
    assert query(warehouse, "SELECT count(*) FROM crm.activities WHERE _run_id = 'run-1'") == [(2,)]

    def validate_run(suite, run_id):
        with connect(warehouse, read_only=True) as connection:
            return quality.validate_new_rows(connection, suite, run_id)

    hold_the_second_run(validate_run, monkeypatch)


@pytest.mark.parametrize(
    ("newest", "max_age", "fresh", "age"),
    [
        (dt.datetime(2026, 3, 31, 12), 72, True, 12.0),
        (dt.datetime(2026, 3, 28, 23, 59), 72, False, 72 + 1 / 60),
        (dt.datetime(2026, 3, 29, 0, 0), 72, True, 72.0),
        (None, 72, False, None),
    ],
)
def test_freshness_against_the_end_of_the_as_of_day(newest, max_age, fresh, age):
    freshness = Freshness(newest, dt.date(2026, 3, 31), max_age)
    assert freshness.fresh is fresh
    assert freshness.age_hours == pytest.approx(age) if age else freshness.age_hours is None


def test_ingest_checks_and_freshness_in_a_dagster_run(landing, tmp_path, monkeypatch):
    """crm_landing yields its checks: suites on this run's rows, freshness warns on both sides."""
    from relanalytics_pipeline.defs.ingest.assets import crm_landing

    monkeypatch.setenv("RELANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELANALYTICS_LANDING_DIR", str(landing))
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-03-31")
    # The newest activity of the hand-made data, e7, was modified 2026-04-01 00:30: -0.5 hours
    # old at the end of 2026-03-31. A later as-of date ages it.
    results = {}
    for as_of, max_age in (("2026-03-31", "1"), ("2026-04-05", "72")):
        monkeypatch.setenv("RELANALYTICS_AS_OF", as_of)
        monkeypatch.setenv("RELANALYTICS_MAX_ACTIVITY_AGE_HOURS", max_age)
        with dg.DagsterInstance.ephemeral() as instance:
            results[as_of] = dg.materialize(
                [crm_landing],
                resources={"settings": RunSettings()},
                instance=instance,
                partition_key=as_of,
            )
    hold_the_hand_made_ingest_checks(check_evaluations(results["2026-03-31"]))
    # Second run: every file unchanged, so no new rows; as of 5 days later it is 119.5 hours old.
    second = check_evaluations(results["2026-04-05"])
    assert second[("crm/activities", SUITE_CHECK)].metadata["rows_validated"].value == 0
    stale = second[("crm/activities", FRESHNESS_CHECK)]
    assert not stale.passed and stale.severity == dg.AssetCheckSeverity.WARN
    assert stale.metadata["age_hours"].value == pytest.approx(119.5)
    assert "older than the 72 hours allowed" in stale.description
    assert results["2026-04-05"].success  # a warning does not fail the run


def test_unknown_columns_warn_in_a_dagster_run(landing, tmp_path, monkeypatch):
    """A file with a misspelt column loads; its entity's check warns naming the column and the
    contract column it nearly spells, in the metadata and the log too. Others pass."""
    from relanalytics_pipeline.defs.ingest.assets import crm_landing

    (landing / "activities" / "z_misspelt.csv").write_text(
        "activity_id,activity_type,status,modified_at,duraton_minutes\n"
        "zz1,task,completed,2026-03-30T10:00:00Z,30\n"
    )
    monkeypatch.setenv("RELANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELANALYTICS_LANDING_DIR", str(landing))
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-03-31")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [crm_landing],
            resources={"settings": RunSettings()},
            instance=instance,
            partition_key="2026-03-31",
        )
        logs = [e.message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert result.success  # a warning does not fail the run
    checks = check_evaluations(result)
    unknown = checks[("crm/activities", UNKNOWN_COLUMNS_CHECK)]
    assert not unknown.passed and unknown.severity == dg.AssetCheckSeverity.WARN
    named = "duraton_minutes (did you mean duration_minutes?)"
    assert unknown.description == f"activities/z_misspelt.csv: {named}"
    assert unknown.metadata["unknown_columns"].value == {"activities/z_misspelt.csv": [named]}
    assert all(
        checks[(f"crm/{e}", UNKNOWN_COLUMNS_CHECK)].passed for e in ENTITIES if e != "activities"
    )
    materialized = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node("crm_landing")
    }
    assert materialized["crm/activities"]["unknown_columns"].value == {
        "activities/z_misspelt.csv": [named]
    }
    assert (
        f"activities/z_misspelt.csv: column(s) not in the activities contract, not loaded: {named}"
        in logs
    )


def test_data_docs_name_every_suite_and_show_validations(landing, tmp_path, monkeypatch, capsys):
    from relanalytics_pipeline.cli.main import main

    home = tmp_path / "home"
    for entity in ENTITIES:
        ingest_entity(home / "warehouse.duckdb", landing, entity, run_id="run-1")
    monkeypatch.setenv("RELANALYTICS_HOME", str(home))
    monkeypatch.delenv("RELANALYTICS_WAREHOUSE", raising=False)
    assert main(["data-docs"]) == 0
    docs = home / "data-docs"
    index = (docs / "index.html").read_text()
    for name in SUITES:
        assert name in index, name
    # A page per suite, and one per validated table of the latest ingest (no marts built here).
    assert {
        p.relative_to(docs / "expectations").as_posix() for p in docs.glob("expectations/*/*.html")
    } == {f"{name.replace('.', '/')}.html" for name in SUITES}
    validated = {
        p.relative_to(docs / "validations").parts[:2] for p in docs.glob("validations/**/*.html")
    }
    assert validated == {("crm", s.table) for s in suites("crm")}
    assert "crm.activities: all" in capsys.readouterr().out


def test_marts_are_read_with_the_columns_their_suite_names(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with connect(warehouse) as connection:
        connection.execute("CREATE SCHEMA marts")
        connection.execute("CREATE TABLE marts.record_summary AS SELECT 'lead' AS record_type, "
                           "'l1' AS record_id, 'Hi.' AS summary, 'x' AS unused")  # fmt: skip
        frame = read_mart(connection, SUITES["marts.record_summary"])
    assert frame.to_dict("records") == [
        {"record_type": "lead", "record_id": "l1", "summary": "Hi."}
    ]
    assert query(warehouse, "SELECT COUNT(*) FROM marts.record_summary") == [(1,)]


def _colleagues_warehouse(path):
    """600 rows of record_colleagues in three combinations of the suite's columns (rank,
    interactions): 300 of (1, 2), 297 of (2, 1), and 3 of (0, 1), whose rank breaks the suite."""
    rows = (
        [("account", f"acc-{i:03}", "usr-01", 1, 2) for i in range(300)]
        + [("contact", f"con-{i:03}", "usr-02", 2, 1) for i in range(297)]
        + [("opportunity", f"opp-{i}", "usr-03", 0, 1) for i in (7, 5, 9)]
    )
    with connect(path) as connection:
        connection.execute("CREATE SCHEMA marts")
        connection.execute(
            "CREATE TABLE marts.record_colleagues (record_type VARCHAR, record_id VARCHAR, "
            "user_id VARCHAR, rank BIGINT, interactions BIGINT, unused VARCHAR)"
        )
        connection.executemany(
            "INSERT INTO marts.record_colleagues VALUES (?, ?, ?, ?, ?, 'x')", rows
        )


def test_a_mart_is_validated_once_per_combination_of_its_suites_columns(tmp_path):
    """Its expectations judge each row by its own values: the marts' check reads each
    combination of the suite's columns once, and still counts rows (600 validated, 3 offending)
    and names an offending row (the least key of the three: opp-5)."""
    warehouse = tmp_path / "w.duckdb"
    _colleagues_warehouse(warehouse)
    suite = SUITES["marts.record_colleagues"]
    assert suite.row_by_row
    with connect(warehouse, read_only=True) as connection:
        alike = read_mart(connection, suite, alike_once=True)
        every = read_mart(connection, suite)
    assert sorted(alike.itertuples(index=False, name=None)) == [
        ("account", "acc-000", "usr-01", 1, 2, 300),
        ("contact", "con-000", "usr-02", 2, 1, 297),
        ("opportunity", "opp-5", "usr-03", 0, 1, 3),
    ]
    assert len(every) == 600
    for frame in (alike, every):
        (outcome,) = validate({suite: frame}).values()
        assert (outcome.rows, outcome.unexpected_rows) == (600, 3)
        (failure,) = outcome.failures
        assert failure.unexpected_count == 3 and "'rank'" in failure.expectation
        assert "on 600 rows" in outcome.summary()
    # Read once, the three offending rows are one, named by the least key (the user's id is
    # personal: left out of the sample).
    (outcome,) = validate({suite: alike}).values()
    assert outcome.failures[0].sample == [
        {"record_type": "opportunity", "record_id": "opp-5", "rank": 0, "interactions": 1}
    ]


def test_a_suite_with_a_share_or_a_rule_over_rows_is_validated_row_by_row(tmp_path):
    """`mostly` holds for a share of the rows, uniqueness over rows: rows alike must each count,
    so such a suite's mart is read row by row."""
    warehouse = tmp_path / "w.duckdb"
    _colleagues_warehouse(warehouse)
    spec = SUITES["marts.record_colleagues"].spec
    variants = {
        "mostly": {**spec["expectations"][0], "kwargs": {"column": "rank", "min_value": 1,
                                                         "mostly": 0.99}},
        "unique": {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "rank"}},
    }  # fmt: skip
    for name, expectation in variants.items():
        (tmp_path / name / "marts").mkdir(parents=True)
        path = tmp_path / name / "marts" / "record_colleagues.json"
        path.write_text(json.dumps({**spec, "expectations": [expectation]}))
        suite = Suite(path)
        assert not suite.row_by_row
        with connect(warehouse, read_only=True) as connection:
            frame = read_mart(connection, suite, alike_once=True)
        assert len(frame) == 600 and ROWS_ALIKE not in frame.columns, name
        (outcome,) = validate({suite: frame}).values()
        # 3 of 600 rows below 1 is within 1%; ranks repeat.
        assert outcome.passed == (name == "mostly"), name

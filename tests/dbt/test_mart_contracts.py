"""The contracts (the marts', and those of the intermediate tables whose tests they replaced)
enforce their columns' rules where the rows are written: a row with an empty value where the
contract says not_null, one breaking a check constraint (a range, a set of accepted values), or a
copy of a row's primary key, is refused by the table itself, so no test has to scan the table for
it (docs/quality.md). The incremental health history keeps its constraints across a night's build:
they are part of the table, and every insert of a later build meets them.

The hand-made dataset is built with `dbt run` twice (a full build, then an incremental one); then
each constrained column of each built table is given a bad value in a copy of one of its rows,
and each key is given a copy of a row.
"""

import json
import re

import duckdb
import pytest
from support.warehouses import HAND_MADE_SETTINGS, WITHOUT_THE_MODEL, dbt, load_landing

from relanalytics_pipeline.warehouse import q


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    warehouse = load_landing(
        tmp_path_factory.mktemp("contracts"), [], "activity_id,role,party_type,party_id,address\n"
    )
    for _ in range(2):  # the second run is a night of the incremental models
        result = dbt(warehouse, "run", *WITHOUT_THE_MODEL, environ=HAND_MADE_SETTINGS)
        assert result.returncode == 0, result.stdout[-4000:]
    manifest = json.loads((warehouse.parent / "dbt-target" / "manifest.json").read_text())
    return warehouse, manifest


def bad_value(expression: str) -> str:
    """SQL: a value breaking the check `expression` on one column."""
    if match := re.fullmatch(r"\w+ between (\S+) and (\S+)", expression):
        return f"{match[2]} + 1"
    if match := re.fullmatch(r"\w+ >= (\S+)", expression):
        return f"{match[1]} - 1"
    if match := re.fullmatch(r"\w+ > (\S+)", expression):
        return match[1]
    if re.fullmatch(r"\w+ in \(.*\)", expression):
        return "'not one of them'"
    raise AssertionError(f"no bad value known for {expression!r}")


def key_constraints(node) -> list[list[str]]:
    """The columns of each primary key or unique constraint of a model's contract (a column's own
    or the model's)."""
    keys = [
        [column["name"]]
        for column in node["columns"].values()
        for constraint in column["constraints"]
        if constraint["type"] in ("primary_key", "unique")
    ]
    keys += [c["columns"] for c in node["constraints"] if c["type"] in ("primary_key", "unique")]
    return keys


def test_every_constrained_column_refuses_a_bad_value(built):
    warehouse, manifest = built
    contracted = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["contract"]["enforced"]
    ]
    refused = {}
    with duckdb.connect(str(warehouse)) as connection:
        built_tables = {
            (schema, name) for (schema, name) in connection.execute(
                "SELECT schema_name, table_name FROM duckdb_tables()"
            ).fetchall()
        }  # fmt: skip
        for node in contracted:
            table = f"{q(node['schema'])}.{q(node['name'])}"
            if (node["schema"], node["name"]) not in built_tables or not connection.execute(
                f"SELECT count(*) FROM {table}"
            ).fetchone()[0]:
                continue  # not built here (the similar-deals marts) or no row to copy
            for key in key_constraints(node):
                with pytest.raises(duckdb.ConstraintException) as refusal:
                    connection.execute(f"INSERT INTO {table} FROM {table} LIMIT 1")
                refused[(node["name"], ", ".join(key), "key")] = str(refusal.value)
            for column in node["columns"].values():
                for constraint in column["constraints"]:
                    if constraint["type"] == "not_null":
                        value = "NULL"
                    elif constraint["type"] == "check":
                        value = bad_value(constraint["expression"])
                    else:
                        continue
                    name = q(column["name"])
                    with pytest.raises(duckdb.ConstraintException) as refusal:
                        connection.execute(
                            f"INSERT INTO {table} SELECT * REPLACE ({value} AS {name}) "
                            f"FROM {table} LIMIT 1"
                        )
                    refused[(node["name"], column["name"], constraint["type"])] = str(refusal.value)
    # What the marts' dbt tests checked before (ranges, accepted values) is refused on write,
    # the incremental history's included.
    assert (
        "CHECK((health_score BETWEEN 0 AND 100))"
        in refused[("relationship_health_history", "health_score", "check")]
    )
    assert (
        "relationship_health_history.record_id"
        in refused[("relationship_health_history", "record_id", "not_null")]
    )
    for mart in ("relationship_kpis", "relationship_health", "relationship_activity_daily"):
        assert (mart, "record_id", "not_null") in refused, mart
    checks = {(mart, column) for mart, column, kind in refused if kind == "check"}
    assert {
        ("relationship_kpis", "customer_response_rate"),
        ("relationship_kpis", "period"),
        ("relationship_health", "signal_breadth"),
        ("relationship_health_history", "health_trend"),
        ("relationship_activity_daily", "activity_count"),
        ("int_opportunity_features", "state_as_of"),
    } <= checks
    # The intermediate models' and deal_tracking's keys and not-null columns, dbt tests before.
    assert "Duplicate key" in refused[("int_opportunity_features", "opportunity_id", "key")]
    assert "Duplicate key" in refused[("deal_tracking", "opportunity_id", "key")]
    assert (
        "Duplicate key" in refused[("int_closed_deal_warnings", "opportunity_id, warning", "key")]
    )
    for column in ("opportunity_id", "state_as_of", "figures_as_of", "team_initiated"):
        assert ("int_opportunity_features", column, "not_null") in refused, column
    for column in ("opportunity_id", "is_won", "actual_close_date", "warning_day", "warning",
                   "is_held"):  # fmt: skip
        assert ("int_closed_deal_warnings", column, "not_null") in refused, column

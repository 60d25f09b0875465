"""relationship_kpis of a pipeline run on a generated CRM agrees with an independent one-pass
computation.

The second method (support/second_method.py) was written apart from the dbt models, straight from
the landed Parquet files: where both agree on every KPI of every record and period, a mistake
would have had to be made twice, the same way.
"""

import datetime as dt

import dagster as dg
import duckdb
from conftest import query
from support import second_method

from relanalytics_pipeline.cli.generator import generate_dataset


def test_marts_agree_with_the_second_method(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    generate_dataset(landing, 4_000, seed=5, as_of=dt.date(2026, 3, 31))
    monkeypatch.setenv("RELANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELANALYTICS_LANDING_DIR", str(landing))
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-03-31")
    monkeypatch.delenv("RELANALYTICS_ORG_DOMAINS", raising=False)
    from relanalytics_pipeline.definitions import defs

    result = dg.materialize(
        defs.assets, resources=defs.resources, selection="*", partition_key="2026-03-31"
    )
    assert result.success
    warehouse = tmp_path / "home" / "warehouse.duckdb"
    # The comparison means something only if every kind of figure occurs.
    ((records, rated, customer_hours, team_hours, contacted, upcoming),) = query(
        warehouse,
        "SELECT count(*), count(customer_response_rate), count(customer_response_hours), "
        "count(team_response_hours), count(last_contacted_at), count(next_contact_at) "
        "FROM marts.relationship_kpis",
    )
    assert min(rated, customer_hours, team_hours, contacted, upcoming) > records / 10
    with duckdb.connect() as connection:
        second_method.run(connection, str(landing), "2026-04-01")
        assert second_method.compare(connection, str(warehouse)) == 0

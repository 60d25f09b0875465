"""Every mart of a full refresh on a generated CRM agrees row for row with the yardstick, an
independent hand-written computation straight from the landed Parquet files.

The yardstick (support/yardstick.py, yardstick.sql) was written from the rules in docs/, apart
from the dbt models: where both agree on every row of every mart, a mistake would have had to be
made twice, the same way. similar_won_deals and won_deal_benchmarks come from the trained model
and are not recomputed.
"""

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
from support import yardstick
from support.runs import AS_OF, materialize_in_process

from relanalytics_pipeline.cli.generator import generate_dataset

D = dt.date.fromisoformat(AS_OF)
# The organisation's domain materialize_in_process sets (RELANALYTICS_ORG_DOMAINS).
ORG_DOMAINS = ["acme-help.example"]


def add_close_date_pushes(landing: Path) -> None:
    """Later versions of 25 open deals, each moving the close date a week later: twice for 20 of
    them (4 and 2 days before D), once for 5 (the generator writes one version per record)."""
    generated = landing / "opportunities" / "part-0000.parquet"
    with duckdb.connect() as connection:
        connection.execute(
            f"""
            COPY (
                SELECT * EXCLUDE (deal, push) REPLACE (
                    estimated_close_date + 7 * push::INTEGER AS estimated_close_date,
                    TIMESTAMPTZ '{D} 12:00:00+00' - to_days(6 - 2 * push) AS modified_at)
                FROM (SELECT *, row_number() OVER (ORDER BY opportunity_id) AS deal
                      FROM read_parquet('{generated}')
                      WHERE status = 'open' AND created_at < TIMESTAMPTZ '{D}' - INTERVAL 10 DAY)
                CROSS JOIN range(1, 3) AS pushes(push)
                WHERE deal <= 20 OR (deal <= 25 AND push = 1)
            ) TO '{landing / "opportunities" / "pushes.parquet"}' (FORMAT parquet)
            """
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A generated CRM running a day past D (so that the as-of rules matter), its full refresh
    as of D, and the yardstick computed from the same files."""
    folder = tmp_path_factory.mktemp("marts")
    landing = folder / "landing"
    generate_dataset(landing, 20_000, seed=5, as_of=D + dt.timedelta(days=1))
    add_close_date_pushes(landing)
    materialize_in_process(folder, landing, AS_OF)
    connection = duckdb.connect()
    yardstick.compute(connection, landing, D, ORG_DOMAINS)
    yield connection, folder / "home" / "warehouse.duckdb"
    connection.close()


def test_every_mart_agrees_with_the_yardstick(built):
    connection, warehouse = built
    # The comparison means something only where every kind of row and figure occurs.
    counts = {
        mart: connection.execute(f"SELECT count(*) FROM yardstick.{mart}").fetchone()[0]
        for mart in yardstick.MARTS
    }
    assert min(counts.values()) > 0, counts
    ((records, rated, team_hours, contacted, upcoming),) = connection.execute(
        "SELECT count(*), count(customer_response_rate), count(team_response_hours), "
        "count(last_contacted_at), count(next_contact_at) FROM yardstick.relationship_kpis"
    ).fetchall()
    assert min(rated, team_hours, contacted, upcoming) > records / 10
    statuses = connection.execute(
        "SELECT list(DISTINCT health_status ORDER BY health_status), "
        "list(DISTINCT health_trend ORDER BY health_trend) FROM yardstick.relationship_health_history"
    ).fetchone()
    assert statuses == (
        ["Fair", "Good", "Not enough info", "Poor"],
        ["Declining", "Improving", "Not enough info", "Steady"],
    )
    warnings = connection.execute(
        "SELECT warning, count(*) FROM yardstick.deal_warnings GROUP BY ALL"
    ).fetchall()
    assert dict(warnings).keys() >= {
        "going_dark", "unanswered", "single_threaded", "no_recent_meeting", "close_date_pushed",
        "past_close_date", "health_declining",
    }  # fmt: skip
    assert dict(warnings)["close_date_pushed"] == 20

    assert yardstick.rows_differing(connection, warehouse) == dict.fromkeys(yardstick.MARTS, 0)


def test_a_changed_value_is_a_differing_row(built, tmp_path):
    """The comparison can fail: one value changed in a copy of the pipeline's marts shows as a row
    missing on each side; a double changed below its 9th significant digit does not."""
    connection, warehouse = built
    changed = tmp_path / "changed.duckdb"
    shutil.copy(warehouse, changed)
    with duckdb.connect(str(changed)) as copy:
        copy.execute(
            "UPDATE marts.relationship_health_history SET health_score = health_score + 1 "
            "WHERE rowid = (SELECT min(rowid) FROM marts.relationship_health_history "
            "WHERE health_score < 100)"
        )
        copy.execute(
            "UPDATE marts.relationship_kpis SET team_response_hours = team_response_hours * "
            "CASE WHEN record_id = (SELECT min(record_id) FROM marts.relationship_kpis "
            "WHERE team_response_hours > 0) AND period = 'all' THEN 1 + 1e-6 ELSE 1 + 1e-12 END"
        )
        copy.execute("DELETE FROM marts.deal_warnings WHERE rowid = 0")
    expected = dict.fromkeys(yardstick.MARTS, 0) | {
        "relationship_health_history": 2,
        "relationship_kpis": 2,
        "deal_warnings": 1,
    }
    assert yardstick.rows_differing(connection, changed) == expected


def test_the_yardstick_writes_figures_as_the_metrics_docs_round_them():
    """Half away from zero on the decimal, once noise below 1e-9 is dropped: the doubles nearest
    80.05, 4.85 and 14.35 lie just below them, and rounding those doubles gives 80.0, 4.8 and
    14.3. A whole number is written without decimals; 31.97 rounds up to a whole but keeps one."""
    connection = duckdb.connect()
    connection.execute(yardstick.MACROS)
    written = connection.execute(
        "SELECT number_text(80.05::DOUBLE), number_text(4.85::DOUBLE), "
        "number_text(14.35::DOUBLE), number_text(2.0::DOUBLE), number_text(31.97::DOUBLE)"
    ).fetchone()
    assert written == ("80.1", "4.9", "14.4", "2", "32.0")

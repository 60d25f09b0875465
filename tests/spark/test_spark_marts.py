"""The same marts on Spark as on DuckDB: every mart, row by row, from the same raw tables.

The hand-made dataset (tests/fixtures/landing) over two nights: night 1 as of 2026-03-30 with
the files of that day (activities, parties and users of 2026-03-31 held back), night 2 as of
2026-03-31 once those have landed. DuckDB runs night 1 in full and night 2 incrementally (its
one mechanism, docs/incremental.md), and once more as a full refresh of night 2; Spark gets the
raw tables DuckDB ingested after each night (the hand-off) and builds every model each night,
running the data tests on night 2. The similar-deals marts read a hand-written neighbours table
(the model's Python asset is not run here).

Doubles match to 1e-9 (the engines sum in different orders), timestamps compared in UTC;
everything else exactly (support.spark_engine.differences).
"""

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import write_hand_made_landing
from support.spark_engine import (
    SAME_MARTS,
    SPARK_TEST,
    dbt_on_spark,
    differences,
    duckdb_marts,
    mart_names,
    spark_night,
)
from support.warehouses import HAND_MADE_SETTINGS, dbt, ingest

from relanalytics_pipeline.warehouse import ensure_tables_written_after_dbt

pytestmark = SPARK_TEST

NIGHT_1, NIGHT_2 = "2026-03-30", "2026-03-31"
# The files of night 2's day, held back from night 1.
NIGHT_2_FILES = ("activities/2026-03-31.jsonl", "activity_parties/2026-03-31.csv",
                 "users/2026-03-31.csv")  # fmt: skip
# The similar-deals model's output, by hand: the open o1 resembles the won o2.
NEIGHBOURS = "INSERT INTO learn.won_deal_neighbours VALUES ('o1', 'o2', 1, 0.75, 'same account size', 'model')"
# The marts of the BI contract: every relation dbt builds in `marts`.
MARTS = (
    "account_connections", "deal_tracking", "deal_warnings", "record_colleagues",
    "record_contacts", "record_summary", "relationship_activity_daily", "relationship_health",
    "relationship_health_history", "relationship_kpis", "similar_won_deals", "who_knows_whom",
    "won_deal_benchmarks",
)  # fmt: skip


def night_environ(as_of: str) -> dict[str, str]:
    return HAND_MADE_SETTINGS | {"RELANALYTICS_AS_OF": as_of}


def night_vars(as_of: str) -> tuple[str, str]:
    """The partition window of the night for day `as_of`, as Dagster passes it to dbt."""
    end = dt.date.fromisoformat(as_of) + dt.timedelta(days=1)
    return "--vars", f'{{"window_start": "{as_of}", "window_end": "{end.isoformat()}"}}'


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory) -> dict[str, dict]:
    """The marts of each engine after each night, and of DuckDB's full refresh of night 2."""
    root = tmp_path_factory.mktemp("spark-marts")
    full_landing = write_hand_made_landing(root / "landing-full")
    landing = root / "landing"
    shutil.copytree(full_landing, landing)
    for name in NIGHT_2_FILES:
        (landing / name).unlink()
    nightly, home = root / "nightly" / "warehouse.duckdb", root / "spark"
    nightly.parent.mkdir()
    marts = {}

    def ingested(warehouse: Path, folder: Path, run_id: str) -> None:
        ingest(warehouse, folder, run_id)
        with duckdb.connect(str(warehouse)) as connection:
            ensure_tables_written_after_dbt(connection)
            if not connection.execute("SELECT count(*) FROM learn.won_deal_neighbours").fetchone()[
                0
            ]:
                connection.execute(NEIGHBOURS)

    # Night 1: DuckDB builds every model; Spark gets the raw tables and builds every model.
    ingested(nightly, landing, "run-1")
    result = dbt(nightly, "run", *night_vars(NIGHT_1), environ=night_environ(NIGHT_1))
    assert result.returncode == 0, result.stdout[-4000:]
    assert mart_names(nightly) == sorted(MARTS)
    marts["duckdb night 1"] = duckdb_marts(nightly, MARTS)
    marts["spark night 1"] = spark_night(
        home, nightly, MARTS, "run", *night_vars(NIGHT_1), environ=night_environ(NIGHT_1)
    )

    # Night 2's files land: DuckDB recomputes what changed; Spark builds every model again and
    # runs every data test.
    for name in NIGHT_2_FILES:
        shutil.copy(full_landing / name, landing / name)
    ingested(nightly, landing, "run-2")
    result = dbt(nightly, "run", *night_vars(NIGHT_2), environ=night_environ(NIGHT_2))
    assert result.returncode == 0, result.stdout[-4000:]
    marts["duckdb night 2"] = duckdb_marts(nightly, MARTS)
    marts["spark night 2"] = spark_night(
        home, nightly, MARTS, "build", "--exclude-resource-type", "unit_test",
        *night_vars(NIGHT_2), environ=night_environ(NIGHT_2),
    )  # fmt: skip

    # DuckDB's full refresh of night 2 from the same raw tables.
    full = root / "full" / "warehouse.duckdb"
    full.parent.mkdir()
    shutil.copy(nightly, full)
    result = dbt(full, "run", "--full-refresh", environ=night_environ(NIGHT_2))
    assert result.returncode == 0, result.stdout[-4000:]
    marts["duckdb full refresh"] = duckdb_marts(full, MARTS)
    marts["spark home"] = home
    return marts


def test_the_nights_have_rows_to_compare(two_nights):
    """Every mart has rows on night 2, and night 2 changed the marts of night 1 (the sequence is
    not two builds of the same data)."""
    night_1, night_2 = two_nights["duckdb night 1"], two_nights["duckdb night 2"]
    assert [mart for mart, (_, rows) in night_2.items() if not rows] == []
    assert night_1["relationship_health_history"] != night_2["relationship_health_history"]


@pytest.mark.parametrize(("duckdb_build", "spark_build"), SAME_MARTS)
def test_spark_gives_duckdb_marts(two_nights, duckdb_build, spark_build):
    assert differences(two_nights[duckdb_build], two_nights[spark_build]) == {}


def test_spark_refuses_a_table_that_breaks_its_contract(two_nights):
    """Parquet tables enforce no constraint: the build checks them. A negative half-life makes
    recency 2 ^ (days / 14), above 1 on every day after a two-way activity, which the check
    `signal_recency between 0 and 1` of relationship_health_history refuses (DuckDB's table
    refuses the row)."""
    vars_ = '{"health_recency_half_life_days": -14}'
    result = dbt_on_spark(
        two_nights["spark home"], "run", "--select", "relationship_health_history",
        "--vars", vars_, environ=night_environ(NIGHT_2),
    )  # fmt: skip
    assert result.returncode == 1
    assert "marts.relationship_health_history breaks its contract: " in result.stdout
    assert "signal_recency between 0 and 1 (" in result.stdout

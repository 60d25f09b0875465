"""The same marts on Spark as on DuckDB on a generated CRM of 50,000 activities, over the two
nights of the incremental tests (support/two_nights.py: the CRM's history as of D, then a night
that also changes the past: an activity moved to another deal, one deleted, a meeting's parties
replaced, a contact moved, late emails), with the similar-deals model run after each night's dbt.

Spark gets the raw tables DuckDB holds after each night, and the model's neighbours (the
pipeline's hand-off), and builds every model each night in the same Spark warehouse. Its marts,
every one including the health history and the similar-deals views, are held row by row against
DuckDB's of the same night (built incrementally on night 2), and its night 2 against DuckDB's full
refresh. Doubles match to 1e-9 (support.spark_engine.differences).
"""

import pytest
from support.spark_engine import (
    SAME_MARTS,
    SPARK_TEST,
    differences,
    duckdb_marts,
    mart_names,
    spark_night,
)
from support.two_nights import build_nights

pytestmark = SPARK_TEST

# About the size issue 30 names: enough rows for every mart's shuffles and windows to split.
ACTIVITIES = 50_000
MARTS = 13


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("spark-generated")
    nights = build_nights(folder / "duckdb", ACTIVITIES, model=True)
    marts, home = mart_names(nights["night_2"]), folder / "spark"
    found = {"duckdb full refresh": duckdb_marts(nights["full_refresh"], marts)}
    for night, night_vars in (("night 1", nights["as_of"]), ("night 2", nights["window"])):
        warehouse = nights[night.replace(" ", "_")]
        found[f"duckdb {night}"] = duckdb_marts(warehouse, marts)
        found[f"spark {night}"] = spark_night(home, warehouse, marts, "run", "--vars", night_vars)
    return found


def test_the_generated_nights_have_rows_to_compare(both_engines):
    """Every mart has rows, the similar-deals ones too, and night 2 changed the health history
    (the sequence is not two builds of the same data)."""
    night_1, night_2 = both_engines["duckdb night 1"], both_engines["duckdb night 2"]
    assert len(night_2) == MARTS
    assert {"similar_won_deals", "won_deal_benchmarks"} < set(night_2)
    assert [mart for mart, (_, rows) in night_2.items() if not rows] == []
    assert night_1["relationship_health_history"] != night_2["relationship_health_history"]


@pytest.mark.parametrize(("duckdb_build", "spark_build"), SAME_MARTS)
def test_spark_gives_duckdb_marts_on_a_generated_crm(both_engines, duckdb_build, spark_build):
    assert differences(both_engines[duckdb_build], both_engines[spark_build]) == {}

"""The same marts on Spark as on DuckDB on a generated CRM, after the two nights of the
incremental tests (support/two_nights.py: 3,000 generated activities, then a night that also
changes the past: an activity moved to another deal, one deleted, a meeting's parties replaced,
a contact moved, late emails). Spark gets the raw tables DuckDB holds after night 2 and builds
every model once; its marts are held row by row against DuckDB's night 2 (built incrementally)
and DuckDB's full refresh. The similar-deals marts are left out, as in those tests (they read the
model's Python asset)."""

import pytest
from support.spark_engine import (
    SPARK_TEST,
    dbt_on_spark,
    differences,
    duckdb_marts,
    hand_off_files,
    mart_names,
    spark_marts,
    spark_step,
)
from support.warehouses import WITHOUT_THE_MODEL

pytestmark = SPARK_TEST


@pytest.fixture(scope="module")
def spark_night(nights, tmp_path_factory) -> dict[str, dict]:
    home = tmp_path_factory.mktemp("spark-generated")
    files = home / "files"
    marts = mart_names(nights["night_2"])
    spark_step(home, files, save=hand_off_files(nights["night_2"], files))
    result = dbt_on_spark(home, "run", *WITHOUT_THE_MODEL, "--vars", nights["window"])
    assert result.returncode == 0, result.stdout[-6000:]
    spark_step(home, files, export=[f"marts.{mart}" for mart in marts])
    return {
        "spark": spark_marts(files, marts),
        "duckdb night 2": duckdb_marts(nights["night_2"], marts),
        "duckdb full refresh": duckdb_marts(nights["full_refresh"], marts),
    }


def test_the_generated_marts_have_rows(spark_night):
    assert len(spark_night["spark"]) == 11
    assert [mart for mart, (_, rows) in spark_night["duckdb night 2"].items() if not rows] == []


@pytest.mark.parametrize("duckdb_build", ["duckdb night 2", "duckdb full refresh"])
def test_spark_gives_duckdb_marts_on_a_generated_crm(spark_night, duckdb_build):
    assert differences(spark_night[duckdb_build], spark_night["spark"]) == {}

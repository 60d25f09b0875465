"""Figures in sentences read the same on both engines: a figure to one decimal shows its decimal
unless it is whole (macros/sentences.sql: number_text, tenths). At 10M
activities, Spark wrote "72" where DuckDB wrote "72.4" in 50 `slow_team_replies` reasons: Spark
compared the decimal 72.4 with its floor at the floor's scale, where 72.4 rounds to 72.

`dbt show` of the project's macros over doubles, on each engine; the texts worked out by hand.
"""

import json

import pytest
from support.spark_engine import SPARK_TEST, dbt_on_spark
from support.warehouses import dbt

pytestmark = SPARK_TEST

# A mean of hours, and its text: to one decimal, half away from zero, without ".0" when whole.
FIGURES = {
    "72.376389": "72.4",  # read "72" on Spark
    "61.236944": "61.2",  # read "61" on Spark
    "63.559722": "63.6",
    "80.05": "80.1",  # the double nearest 80.05 lies below it; the decimal rounds up
    "71.96": "72",  # whole once rounded
    "48": "48",
}
SHOW = (
    "select figure, {{ number_text(tenths('figure')) }} as text from ("
    + " union all ".join(
        f"select cast('{f}' as {{{{ type_double() }}}}) as figure" for f in FIGURES
    )
    + ") as figures"
)


def texts(result) -> dict[str, str]:
    assert result.returncode == 0, result.stdout[-4000:]
    # dbt prints the rows as one JSON object, over several lines, after its log lines.
    output = result.stdout
    start = output.rindex("{", 0, output.index('"show"'))
    rows = json.JSONDecoder().raw_decode(output, start)[0]["show"]
    return {f"{row['figure']:g}": row["text"] for row in rows}


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_a_figure_reads_with_its_decimal_on_both_engines(engine, tmp_path):
    args = ("--inline", SHOW, "--output", "json", "--limit", "-1")
    if engine == "spark":
        result = dbt_on_spark(tmp_path, "show", *args)
    else:
        result = dbt(tmp_path / "warehouse.duckdb", "show", *args)
    assert texts(result) == {f"{float(f):g}": text for f, text in FIGURES.items()}

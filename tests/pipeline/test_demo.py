"""What a newcomer meets: `relanalytics demo` on generated data (no landing folder configured), the
command it prints run from a fresh shell, and every example query of docs/serving-bi.md on its
publication.
"""

import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import project_free_environ

from relanalytics_pipeline.settings import PROJECT_ROOT

AS_OF = "2026-03-31"
ACTIVITIES = 3_000
RECORDS = {"accounts": "account_id", "contacts": "contact_id", "leads": "lead_id",
           "opportunities": "opportunity_id"}  # fmt: skip


def readme_example_queries() -> list[str]:
    """The statements of docs/serving-bi.md's block of example queries, one per mart, as written."""
    page = (PROJECT_ROOT / "docs" / "serving-bi.md").read_text()
    block = re.search(r"^## Example queries\n.*?```sql\n(.*?)```", page, re.S | re.M)
    assert block, "the example queries moved from docs/serving-bi.md: follow them here"
    return [statement.strip() for statement in block.group(1).split(";") if statement.strip()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo") / "home"
    environ = project_free_environ(RELANALYTICS_HOME=str(home), RELANALYTICS_AS_OF=AS_OF)
    relanalytics = str(Path(sys.executable).with_name("relanalytics"))
    result = subprocess.run(
        [relanalytics, "demo", "--activities", str(ACTIVITIES)],
        env=environ, capture_output=True, text=True, cwd=home.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return home, result.stdout


def landing(home: Path, entity: str) -> str:
    """The files of one entity of the sample the demo generated, for `read_parquet(?)`."""
    return str(home / "sample-landing" / entity / "*.parquet")


def test_the_printed_command_works_from_a_fresh_shell(demo):
    home, out = demo
    lines = out.splitlines()
    command = lines[lines.index("Look at them from any shell with, for example:") + 1].strip()
    # A fresh login: no virtual environment active, nothing of the project's on PATH.
    fresh = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home)}
    result = subprocess.run(["sh", "-c", command], env=fresh, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "health_status" in result.stdout
    assert "10 rows" in result.stdout  # the query's LIMIT 10, of many more records


def test_every_readme_example_query_returns_rows_on_the_demo(demo):
    home, _ = demo
    queries = readme_example_queries()
    assert len(queries) == 14  # one per mart, and the publication's record
    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as connection:
        results = {query: connection.execute(query).fetchall() for query in queries}
    assert [query.splitlines()[0] for query, rows in results.items() if not rows] == []

    # Two answers worked out from the generated landing files, not from the marts.
    with duckdb.connect() as landed:
        (closing_next,) = landed.execute(
            "SELECT opportunity_id FROM read_parquet(?) "
            "WHERE status = 'open' AND NOT is_deleted AND estimated_close_date > ? "
            "ORDER BY estimated_close_date, opportunity_id LIMIT 1",
            [landing(home, "opportunities"), AS_OF],
        ).fetchone()
        records = sum(
            landed.execute(
                f"SELECT count(DISTINCT {key}) FROM read_parquet(?) WHERE NOT is_deleted",
                [landing(home, entity)],
            ).fetchone()[0]
            for entity, key in RECORDS.items()
        )
    # Each query's comment names its mart first: `-- similar_won_deals: ...`.
    by_mart = {q.splitlines()[0].removeprefix("-- ").split(":")[0]: r for q, r in results.items()}
    assert {row[0] for row in by_mart["similar_won_deals"]} == {closing_next}
    assert {row[0] for row in by_mart["won_deal_benchmarks"]} == {closing_next}
    assert sum(row[1] for row in by_mart["relationship_health"]) == records

"""The project's Dagster home: made once, before any process opens it."""

import sqlite3
from pathlib import Path

from relanalytics_pipeline.cli.instance import ensure_dagster_home


def _tables(database: Path) -> set[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def test_a_new_home_has_its_tables_before_anything_opens_it(tmp_path):
    """Dagster creates its SQLite tables by check-then-create: a CLI run and the test watching it
    opened a fresh home at once, and one failed with "table jobs already exists". Making the home
    creates them, so whatever opens it next only reads them."""
    home = ensure_dagster_home(tmp_path / "dagster")
    assert {"jobs", "instigators", "job_ticks"} <= _tables(home / "schedules" / "schedules.db")
    assert {"runs", "run_tags"} <= _tables(home / "history" / "runs.db")
    assert "event_logs" in _tables(home / "history" / "runs" / "index.db")
    # Made again (every command does), it keeps the configuration someone edited.
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    ensure_dagster_home(home)
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"

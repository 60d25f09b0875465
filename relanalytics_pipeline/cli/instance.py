"""The persistent Dagster instance the project's commands use when DAGSTER_HOME is not set.

Without DAGSTER_HOME, `dagster dev` keeps a temporary instance and deletes it on exit, losing run
history, schedule state and the concurrency limit that keeps DuckDB to one writer.
"""

from __future__ import annotations

from pathlib import Path

from relanalytics_pipeline.warehouse import WAREHOUSE_POOL

DAGSTER_YAML = f"""\
# Written by relanalytics for its own Dagster instance; edit freely, it is not overwritten.
telemetry:
  enabled: false
concurrency:
  pools:
    # The pool `{WAREHOUSE_POOL}` holds every asset that writes the DuckDB warehouse: DuckDB allows
    # one writing process per file, so one step at a time, across runs too.
    default_limit: 1
    granularity: op
# The daemon (under `dagster dev`) fails runs stuck starting, and frees pool slots that ended runs
# still hold; runs killed while STARTED are freed by the project itself (defs/automation).
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 60
"""


def ensure_dagster_home(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    # Open it once here so that its SQLite storage exists before anything else opens it: Dagster
    # creates its tables by check-then-create, so two processes opening a fresh home at once (the
    # webserver and daemon of `dagster dev`, a CLI run and a watcher) can both try, and one fails
    # with "table jobs already exists".
    import dagster as dg

    with dg.DagsterInstance.from_config(str(path)):
        pass
    return path

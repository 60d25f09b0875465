"""A night works out each incremental model's scope once: dbt needs it as it compiles the model's
SQL (incremental_scope) and as the materialization runs (dbt_project/macros/scoped_incremental.sql,
scope_query), and both get the same answer from one set of queries."""

from conftest import write_hand_made_landing
from support.warehouses import HAND_MADE_SETTINGS, dbt, ingest

MODELS = ("int_activity_people_classified", "int_activities_classified")


def test_a_night_asks_for_each_models_last_build_once(tmp_path):
    landing = write_hand_made_landing(tmp_path / "landing")
    warehouse = tmp_path / "warehouse.duckdb"
    ingest(warehouse, landing, "run-1")
    selection = ("--select", "+int_activities_classified")
    first = dbt(warehouse, "run", *selection, environ=HAND_MADE_SETTINGS)
    assert first.returncode == 0, first.stdout[-4000:]

    logs = tmp_path / "night-logs"
    night = dbt(warehouse, "run", *selection, "--log-path", str(logs), environ=HAND_MADE_SETTINGS)
    assert night.returncode == 0, night.stdout[-4000:]
    log = (logs / "dbt.log").read_text()
    for model in MODELS:
        # The query of the model's last build (previous_build), logged each time dbt runs it.
        asked = [line for line in log.splitlines()
                 if "select cast(loaded_through as varchar)" in line and f"'{model}'" in line]  # fmt: skip
        assert len(asked) == 1, model
        # A night of its own: the scope stored and read, not every row rebuilt.
        assert f'create or replace table "warehouse"."intermediate"."{model}__scope"' in log

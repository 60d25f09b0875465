"""A night works out each incremental model's scope once: dbt needs it as it compiles the model's
SQL (incremental_scope) and as the materialization runs (dbt_project/macros/scoped_incremental.sql,
scope_query), and both get the same answer from one set of queries. Its rows are matched to the
stored scope by a join, and what it changed is worked out once for all its readers."""

import pytest
from conftest import write_hand_made_landing
from support.warehouses import HAND_MADE_SETTINGS, dbt, ingest

MODELS = ("int_activity_people_classified", "int_activities_classified")
CHANGES = 'insert into "warehouse"."intermediate"."incremental_changes"'


@pytest.fixture(scope="module")
def night_log(tmp_path_factory) -> str:
    """dbt's log of a night of the activity tables on the hand-made dataset."""
    folder = tmp_path_factory.mktemp("night")
    landing = write_hand_made_landing(folder / "landing")
    warehouse = folder / "warehouse.duckdb"
    ingest(warehouse, landing, "run-1")
    selection = ("--select", "+int_activities_classified")
    first = dbt(warehouse, "run", *selection, environ=HAND_MADE_SETTINGS)
    assert first.returncode == 0, first.stdout[-4000:]

    logs = folder / "night-logs"
    night = dbt(warehouse, "run", *selection, "--log-path", str(logs), environ=HAND_MADE_SETTINGS)
    assert night.returncode == 0, night.stdout[-4000:]
    return (logs / "dbt.log").read_text()


def test_a_night_asks_for_each_models_last_build_once(night_log):
    for model in MODELS:
        # The query of the model's last build (previous_build), logged each time dbt runs it.
        asked = [line for line in night_log.splitlines()
                 if "select cast(loaded_through as varchar)" in line and f"'{model}'" in line]  # fmt: skip
        assert len(asked) == 1, model
        # A night of its own: the scope stored and read, not every row rebuilt.
        assert f'create or replace table "warehouse"."intermediate"."{model}__scope"' in night_log


def test_a_night_deletes_the_rows_of_its_scope_through_a_join(night_log):
    for model in MODELS:
        table = f'"warehouse"."intermediate"."{model}"'
        deletes = [line for line in night_log.splitlines() if f"delete from {table} " in line]
        assert len(deletes) == 1, model
        assert f"delete from {table} as kept using {table[:-1]}__scope" in deletes[0]


def test_a_night_logs_its_changes_for_every_reader_in_one_statement(night_log):
    # Each activity table logs for int_health_events and int_record_activity_days: one comparison
    # of its rows before and after, one statement.
    for model in MODELS:
        logged = [
            line for line in night_log.splitlines() if CHANGES in line and f"'{model}'" in line
        ]
        assert len(logged) == 1, model
        assert "'int_health_events' as for_model" in night_log

"""Incremental dbt models: a night's checks read the rows the night wrote: the great-expectations
check of the health history (once the build the night kept was validated) and the dbt uniqueness
tests of the incremental models (the nights: support/two_nights.py)."""

import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from support.nightly import NIGHT, D
from support.two_nights import HISTORY, WRITES
from support.warehouses import WITHOUT_THE_MODEL, dbt

from relanalytics_pipeline.defs.quality.suites import (
    latest_build,
    read_mart,
    record_validated,
    suites,
)
from relanalytics_pipeline.warehouse import connect


def test_the_history_check_reads_what_the_night_wrote_once_the_build_it_kept_was_validated(
    nights, tmp_path
):
    """The night kept night 1's rows of each record up to the first day it recomputed: once
    night 1's rows are recorded validated, the mart check reads only what the night wrote (each
    record's days from its written_from), within the newest 15 days. Those include every row
    the night had to rewrite: the days from the first day whose deltas up to D changed (worked out
    here from the deltas of both nights), every day of new records, and the new day. Before
    that, the check reads all of the newest 15 days."""
    suite = next(s for s in suites("marts") if s.table == HISTORY.split(".")[1])
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(nights["night_2"], warehouse)
    with connect(nights["night_1"], read_only=True) as connection:
        first = latest_build(connection, suite)
    assert first is not None and not first.kept_a_validated_build  # night 1 built everything
    newest = f"as_of_date > DATE '{NIGHT.isoformat()}' - 15"
    keys = ["record_type", "record_id", "as_of_date"]
    with connect(warehouse) as connection:
        night = latest_build(connection, suite)
        assert night.build_id != first.build_id and not night.kept_a_validated_build
        everything = read_mart(connection, suite, night)
        record_validated(connection, suite, first)
        night = latest_build(connection, suite)
        assert night.kept_a_validated_build
        written = read_mart(connection, suite, night)
        connection.execute(f"ATTACH '{nights['night_1']}' AS one (READ_ONLY)")
        until_d = f"WHERE event_day <= DATE '{D.isoformat()}'"
        events = "intermediate.int_health_events"
        changed_from = (
            "(SELECT record_type, record_id, min(event_day) AS changed_from FROM "
            f"((SELECT * FROM {events} {until_d} EXCEPT ALL SELECT * FROM one.{events} {until_d}) "
            f"UNION ALL (SELECT * FROM one.{events} {until_d} EXCEPT ALL "
            f"SELECT * FROM {events} {until_d})) GROUP BY record_type, record_id)"
        )
        new_records = (
            "(SELECT record_type, record_id FROM intermediate.int_records_unioned "
            "EXCEPT SELECT record_type, record_id FROM one.intermediate.int_records_unioned)"
        )
        rewritten = connection.execute(
            f"SELECT {', '.join(keys)} FROM {HISTORY} LEFT JOIN {changed_from} AS changed "
            f"USING (record_type, record_id) WHERE {newest} AND "
            f"(as_of_date = DATE '{NIGHT.isoformat()}' OR as_of_date >= changed.changed_from "
            f"OR (record_type, record_id) IN {new_records})"
        ).fetchall()
        recorded = connection.execute(
            f"SELECT {', '.join(keys)} FROM {HISTORY} INNER JOIN {WRITES} AS writes "
            f"USING (record_type, record_id) WHERE {newest} AND as_of_date >= written_from"
        ).fetchall()
        every_row = connection.execute(f"SELECT {', '.join(keys)} FROM {HISTORY} WHERE {newest}")
        every_row = every_row.fetchall()

    def rows(frame) -> list[tuple]:  # dates come back from pandas as timestamps
        return sorted((t, r, day.date()) for t, r, day in frame[keys].itertuples(index=False))

    assert rows(everything) == sorted(every_row)
    assert rows(written) == sorted(recorded)
    assert set(rewritten) <= set(recorded)
    # The night recomputed some records, not all: fewer rows, but more than the new day's.
    new_day = sum(1 for row in every_row if row[2] == NIGHT)
    assert new_day < len(written) < len(everything)


# The models whose uniqueness test reads only what their latest build wrote: each one's key, and
# which of its rows night 2 wrote, by its writes (`<model>_writes`, in the intermediate schema).
WRITTEN_ROWS = {
    "relationship_health_history": (
        "record_type, record_id, as_of_date",
        f"EXISTS (SELECT 1 FROM {WRITES} AS w WHERE w.record_type = t.record_type "
        "AND w.record_id = t.record_id AND t.as_of_date >= w.written_from)",
    ),
    "int_health_events": (
        "record_type, record_id, event_day",
        "EXISTS (SELECT 1 FROM intermediate.int_health_events_writes AS w "
        "WHERE w.record_type = t.record_type AND w.record_id = t.record_id "
        "AND t.event_day >= w.written_from)",
    ),
    "int_record_activity_days": (
        "record_type, record_id, activity_day",
        "EXISTS (SELECT 1 FROM intermediate.int_record_activity_days_writes AS w "
        "WHERE w.record_type = t.record_type AND w.record_id = t.record_id "
        "AND t.activity_day >= w.written_from)",
    ),
    "int_record_activities": (
        "record_type, record_id, activity_id",
        "activity_id IN (SELECT activity_id FROM intermediate.int_record_activities_writes)",
    ),
}


@pytest.mark.parametrize("model", WRITTEN_ROWS)
def test_the_uniqueness_test_reads_the_rows_the_latest_build_wrote(nights, tmp_path, model):
    """Every row of night 2 that night 1 did not have is among those its writes record. A repeated
    key among those fails the model's uniqueness test; one among the rows night 2 kept does not,
    as they passed when written. After a full build, which writes every row, that one fails it
    too."""
    key, written = WRITTEN_ROWS[model]
    table = f"{'marts' if model == HISTORY.split('.')[1] else 'intermediate'}.{model}"
    uniqueness = ("--select", f"test_name:unique_combination_written,{model}")
    night = nights["night_2"]
    with duckdb.connect(str(night), read_only=True) as connection:
        connection.execute(f"ATTACH '{nights['night_1']}' AS one (READ_ONLY)")
        (unrecorded,) = connection.execute(
            f"SELECT count(*) FROM (SELECT * FROM {table} EXCEPT ALL SELECT * FROM one.{table}) "
            f"AS t WHERE NOT {written}"
        ).fetchone()
        rows = {
            name: connection.execute(
                f"SELECT {key} FROM {table} AS t WHERE {condition} ORDER BY ALL LIMIT 1"
            ).fetchone()
            for name, condition in (("kept", f"NOT {written}"), ("written", written))
        }
    assert unrecorded == 0

    def repeat(warehouse: Path, row: tuple) -> subprocess.CompletedProcess:
        with duckdb.connect(str(warehouse)) as connection:
            same_key = " AND ".join(f"{column} = ?" for column in key.split(", "))
            connection.execute(f"INSERT INTO {table} SELECT * FROM {table} WHERE {same_key}", row)
        return dbt(warehouse, "test", *WITHOUT_THE_MODEL, *uniqueness)

    for name in ("night_2", "full_refresh"):
        shutil.copytree(nights[name].parent, tmp_path / name)
    night, full = (tmp_path / name / "warehouse.duckdb" for name in ("night_2", "full_refresh"))
    passed, failed = repeat(night, rows["kept"]), repeat(night, rows["written"])
    assert passed.returncode == 0, passed.stdout[-4000:]
    assert failed.returncode == 1 and "Got 1 result" in failed.stdout, failed.stdout[-4000:]
    failed = repeat(full, rows["kept"])
    assert failed.returncode == 1 and "Got 1 result" in failed.stdout, failed.stdout[-4000:]

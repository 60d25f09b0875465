"""Incremental dbt models: each logs what changed for the models that read it, which recompute
exactly that (the nights: support/two_nights.py)."""

import datetime as dt
import shutil

import duckdb
from conftest import query
from support.two_nights import (
    ACTIVITY_TABLES,
    HISTORY,
    WRITES,
    dbt_run,
    intermediate_tables_differing,
)
from support.warehouses import ingest


def test_the_activity_tables_log_the_activities_whose_rows_changed(nights, tmp_path):
    """Night 2 up to the activity tables: each logs, for each table per record and day, the
    activities whose rows differ from night 1's (int_record_activities: the record-activity pairs
    added or removed), found here by comparing the two warehouses' tables; exactly those (not the
    50 emails of a file reloaded unchanged, which the night recomputed). The reply tables
    recompute every email sharing a key with a changed one; of those, the emails of the late
    reply's conversation that still pair as before are not logged, and the late reply is."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copytree(nights["night_1"].parent, tmp_path, dirs_exist_ok=True)
    ingest(warehouse, nights["landing"], "night-2")
    activity_tables = ["+int_email_responses", "+int_record_activities"]
    dbt_run(warehouse, "--vars", nights["window"], "--select", *activity_tables)
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{nights['night_1']}' AS one (READ_ONLY)")
        connection.execute(f"ATTACH '{warehouse}' AS two (READ_ONLY)")
        for table in ACTIVITY_TABLES:
            records = "record_type, record_id" if table == "int_record_activities" else "NULL, NULL"
            logged_columns = f"activity_id, {records}"
            before, after = (f"SELECT * FROM {db}.intermediate.{table}" for db in ("one", "two"))
            differing = set(connection.execute(
                f"SELECT DISTINCT {logged_columns} FROM "
                f"(({before} EXCEPT ALL {after}) UNION ALL ({after} EXCEPT ALL {before}))"
            ).fetchall())  # fmt: skip
            for reader in ("int_health_events", "int_record_activity_days"):
                logged = connection.execute(
                    "SELECT activity_id, record_type, record_id FROM "
                    "two.intermediate.incremental_changes WHERE logged_by = ? AND for_model = ?",
                    [table, reader],
                ).fetchall()
                assert differing and sorted(logged) == sorted(differing), (table, reader)
        logged_emails = (
            "SELECT activity_id FROM two.intermediate.incremental_changes "
            "WHERE logged_by = '{}' AND for_model = 'int_health_events'"
        )
        logged_replies = connection.execute(logged_emails.format("int_email_replies")).fetchall()
        assert ("late-reply",) in logged_replies
        # The customer's email that our interjected one now precedes: paired anew, and logged.
        answering = connection.execute(
            "SELECT activity_id, pairing_rule FROM two.intermediate.int_email_replies "
            "WHERE parent_id = 'interjected'"
        ).fetchall()
        assert [rule for _, rule in answering] == ["conversation"]
        assert (answering[0][0],) in logged_replies
        (unlogged_in_conversation,) = connection.execute(
            "SELECT count(*) FROM two.intermediate.int_emails_sided AS emails "
            "WHERE conversation_id = (SELECT conversation_id FROM two.intermediate.int_emails_sided "
            "WHERE activity_id = 'late-reply') AND activity_id NOT IN "
            f"({logged_emails.format('int_email_replies')})"
        ).fetchone()
        assert unlogged_in_conversation > 0


def test_int_health_events_logs_what_may_have_changed_for_the_history(nights, tmp_path):
    """Night 2 up to int_health_events: it logs the records it recomputed, each from the first
    day it recomputed; every record whose deltas differ from night 1's (found here by comparing
    the two warehouses' tables) is among them, from that day or before. The history then reads
    its rows of the log and deletes them. Rebuilt in full within the table (as after a change to the users), it
    logs exactly the records whose deltas differ, from the first day that does: here the one row
    tampered with before. Built anew (--full-refresh), it logs a row of nulls, and the history
    recomputes every record."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copytree(nights["night_1"].parent, tmp_path, dirs_exist_ok=True)
    ingest(warehouse, nights["landing"], "night-2")
    dbt_run(warehouse, "--vars", nights["window"], "--select", "+int_health_events")
    events = "intermediate.int_health_events"
    for_history = (
        "(SELECT record_type, record_id, changed_from FROM {}intermediate.incremental_changes "
        "WHERE for_model = 'relationship_health_history')"
    )
    log = for_history.format("")
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{nights['night_1']}' AS one (READ_ONLY)")
        connection.execute(f"ATTACH '{warehouse}' AS two (READ_ONLY)")
        before, after = (f"SELECT * FROM {db}.{events}" for db in ("one", "two"))
        differing = connection.execute(
            "SELECT record_type, record_id, min(event_day) FROM "
            f"(({before} EXCEPT ALL {after}) UNION ALL ({after} EXCEPT ALL {before})) "
            "GROUP BY ALL"
        ).fetchall()
        logged = dict(
            ((t, r), day)
            for t, r, day in connection.execute(
                f"SELECT * FROM {for_history.format('two.')}"
            ).fetchall()
        )
        (records,) = connection.execute(
            "SELECT count(*) FROM two.intermediate.int_records_unioned"
        ).fetchone()
    replied_to = query(warehouse, "SELECT regarding_id FROM crm.activities "
                                  "WHERE activity_id = 'late-reply'")  # fmt: skip
    assert ("opportunity", replied_to[0][0]) in {(t, r) for t, r, _ in differing}
    assert all(logged.get((t, r), dt.date.max) <= day for t, r, day in differing)
    assert len(differing) <= len(logged) < records

    history = ("--select", "relationship_health_history")
    dbt_run(warehouse, "--vars", nights["window"], *history)
    assert query(warehouse, f"SELECT count(*) FROM {log}") == [(0,)]
    written = f"SELECT count(*) FROM {WRITES} WHERE written_from > (SELECT min(as_of_date) FROM {HISTORY})"
    assert query(warehouse, written)[0][0] > 0  # kept records' days before their written_from

    with duckdb.connect(str(warehouse)) as connection:
        tampered = connection.execute(
            f"UPDATE {events} SET touches = touches + 1 WHERE (record_type, record_id, event_day) "
            f"= (SELECT (record_type, record_id, event_day) FROM {events} ORDER BY ALL LIMIT 1) "
            "RETURNING record_type, record_id, event_day"
        ).fetchall()
        # What an activity table rebuilt in full logs: int_health_events is rebuilt in full too.
        connection.execute(
            "INSERT INTO intermediate.incremental_changes VALUES "
            "('int_health_events', 'int_activities_classified', NULL, NULL, NULL, NULL)"
        )
    dbt_run(warehouse, "--vars", nights["window"], "--select", "int_health_events")
    assert query(warehouse, f"SELECT * FROM {log} ORDER BY ALL") == tampered

    dbt_run(
        warehouse, "--vars", nights["window"], "--select", "int_health_events", "--full-refresh"
    )
    assert query(warehouse, f"SELECT * FROM {log} ORDER BY ALL") == [*tampered, (None, None, None)]
    dbt_run(warehouse, "--vars", nights["window"], *history)
    assert query(warehouse, written) == [(0,)]


def test_int_record_activity_days_recomputes_what_int_health_events_did(nights, tmp_path):
    """Night 2 up to int_health_events: int_record_activity_days, which reads its own rows of the
    activity tables' log through the same scope, then recomputes exactly the records
    int_health_events did, each from the same first day, deletes its rows of the log and holds
    the rows of a full build. Without the log (a warehouse of an earlier release) it is rebuilt in
    full, with the same rows."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copytree(nights["night_1"].parent, tmp_path, dirs_exist_ok=True)
    ingest(warehouse, nights["landing"], "night-2")
    dbt_run(warehouse, "--vars", nights["window"], "--select", "+int_health_events")
    log, days = "intermediate.incremental_changes", "intermediate.int_record_activity_days"
    written = "SELECT record_type, record_id, written_from FROM intermediate.{}_writes ORDER BY ALL"
    events_writes = query(warehouse, written.format("int_health_events"))
    assert events_writes and None not in events_writes[0]
    for_days = f"SELECT count(*) FROM {log} WHERE for_model = 'int_record_activity_days'"
    assert query(warehouse, for_days)[0][0] > 0
    record_days = ("--vars", nights["window"], "--select", "int_record_activity_days")
    dbt_run(warehouse, *record_days)
    assert query(warehouse, for_days) == [(0,)]
    assert query(warehouse, written.format("int_record_activity_days")) == events_writes

    def differing_from_a_full_build() -> int:
        return intermediate_tables_differing(warehouse, nights["full_refresh"])[days.split(".")[1]]

    assert differing_from_a_full_build() == 0
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(f"DROP TABLE {log}")
        connection.execute(f"UPDATE {days} SET activities = -7 WHERE activity_day = "
                           f"(SELECT min(activity_day) FROM {days})")  # fmt: skip
    dbt_run(warehouse, *record_days)
    assert query(warehouse, written.format("int_record_activity_days")) == [(None, None, None)]
    assert differing_from_a_full_build() == 0

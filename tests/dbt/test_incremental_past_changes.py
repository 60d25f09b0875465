"""Incremental dbt models: the changes to the past that night 2 brings (records moved, deleted,
replied to late) rewrite the past days they touch, and only those (the nights:
support/two_nights.py)."""

import datetime as dt
import json
import shutil

import duckdb
from conftest import query
from support.nightly import D
from support.two_nights import HISTORY, dbt_run
from support.warehouses import ingest


def test_the_changes_rewrote_past_days(nights):
    """The changes reach back before the night: D's rows of the records they touch differ from
    night 1 (else their equality with a full run, test_incremental_full_refresh.py, would not
    show that they were recomputed)."""
    rows = f"FROM marts.relationship_health_history WHERE as_of_date = DATE '{D.isoformat()}'"
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{nights['night_1']}' AS one (READ_ONLY)")
        connection.execute(f"ATTACH '{nights['night_2']}' AS two (READ_ONLY)")
        rewritten = connection.execute(
            f"SELECT DISTINCT record_type FROM (SELECT * {rows.replace('marts.', 'two.marts.')} "
            f"EXCEPT SELECT * {rows.replace('marts.', 'one.marts.')})"
        ).fetchall()
    # The moved email and the late reply change opportunities, the moved contact its accounts.
    assert {"opportunity", "account"} <= {record_type for (record_type,) in rewritten}


def test_the_night_keeps_unchanged_records_and_recomputes_changed_ones(nights, tmp_path):
    """A marker in night 1's history: on a record the night did not touch it stays (its rows
    were kept); on a record int_health_events logged from a day F, it is gone from F (its rows
    were recomputed from F) and kept on the day before. The same in an
    activity table: kept for an activity the night did not touch, gone for one whose parties it
    replaced; and gone for both when a setting of the activity tables changes. And in
    int_health_events: kept for a record the night did not touch, gone from the days it
    recomputed of one it touched, kept on that record's days long before. The same in
    int_record_activity_days, which reads its own rows of the activity tables' log: built only in
    the next dbt run, whose int_health_events recomputes nothing, it still finds the records of
    the first run's."""
    tampered = tmp_path / "warehouse.duckdb"
    shutil.copytree(nights["night_1"].parent, tmp_path, dirs_exist_ok=True)
    day = f"DATE '{(D - dt.timedelta(days=30)).isoformat()}'"
    replied_to = "(SELECT regarding_id FROM crm.activities WHERE activity_id = 'late-reply')"
    with duckdb.connect(str(tampered)) as connection:
        connection.execute("UPDATE marts.relationship_health_history SET earlier_health_score = -7 "
                           f"WHERE as_of_date = {day} AND record_type = 'lead'")  # fmt: skip
    ingest(tampered, nights["landing"], "night-2")
    with duckdb.connect(str(tampered)) as connection:
        night_rows = "SELECT activity_id FROM crm.{} WHERE _run_id = 'night-2'"
        untouched, replaced = connection.execute(
            "SELECT min(activity_id) FILTER (WHERE activity_id NOT IN "
            f"({night_rows.format('activities')} UNION {night_rows.format('activity_parties')} "
            "UNION SELECT record_id FROM ingest.removed_rows)), "
            "min(activity_id) FILTER (WHERE activity_id IN "
            f"({night_rows.format('activity_parties')})) "
            "FROM intermediate.int_activities_classified"
        ).fetchone()
        connection.execute("UPDATE intermediate.int_activities_classified SET team_minutes = -7 "
                           f"WHERE activity_id IN ('{untouched}', '{replaced}')")  # fmt: skip
        # int_health_events: a marker day far after D (no reader sums it) on a lead no activity
        # of the night regards, old version or new, and on the late reply's opportunity; and one
        # long before anything the night changed on that opportunity.
        (quiet_lead,) = connection.execute(
            "SELECT min(record_id) FROM intermediate.int_health_events WHERE record_type = 'lead' "
            "AND record_id NOT IN (SELECT regarding_id FROM crm.activities WHERE activity_id IN "
            f"({night_rows.format('activities')}) AND regarding_id IS NOT NULL)"
        ).fetchone()
        connection.execute(
            "INSERT INTO intermediate.int_health_events (record_type, record_id, event_day, "
            "two_way_activities) VALUES ('lead', ?, DATE '2099-01-01', -7), "
            f"('opportunity', {replied_to}, DATE '2099-01-01', -7), "
            f"('opportunity', {replied_to}, DATE '2000-01-01', -7)",
            [quiet_lead],
        )
        connection.execute(
            "INSERT INTO intermediate.int_record_activity_days (record_type, record_id, "
            "activity_day, activities) VALUES ('lead', ?, DATE '2099-01-01', -7), "
            f"('opportunity', {replied_to}, DATE '2099-01-01', -7), "
            f"('opportunity', {replied_to}, DATE '2000-01-01', -7)",
            [quiet_lead],
        )
    dbt_run(tampered, "--vars", nights["window"], "--select", "+int_health_events")
    with duckdb.connect(str(tampered)) as connection:
        # The history's first day as of NIGHT is night 1's second: F - 1 must be in it.
        record_type, record_id, from_day = connection.execute(
            "SELECT record_type, record_id, changed_from FROM intermediate.incremental_changes "
            "WHERE for_model = 'relationship_health_history' AND changed_from > "
            f"(SELECT min(as_of_date) + 1 FROM {HISTORY}) AND changed_from <= DATE '{D}' "
            "AND record_type <> 'lead' ORDER BY changed_from, record_type, record_id LIMIT 1"
        ).fetchone()
        connection.execute(
            f"UPDATE {HISTORY} SET earlier_health_score = -7 WHERE record_type = ? "
            "AND record_id = ? AND as_of_date IN (?, ?)",
            [record_type, record_id, from_day - dt.timedelta(days=1), from_day],
        )
    dbt_run(tampered, "--vars", nights["window"])
    marked_events = (
        "SELECT record_type, event_day FROM intermediate.int_health_events "
        "WHERE two_way_activities = -7 ORDER BY record_type"
    )
    marked_days = (
        "SELECT record_type, activity_day FROM intermediate.int_record_activity_days "
        "WHERE activities = -7 ORDER BY record_type"
    )
    for marked_rows in (marked_events, marked_days):
        assert query(tampered, marked_rows) == [
            ("lead", dt.date(2099, 1, 1)),
            ("opportunity", dt.date(2000, 1, 1)),
        ]
    marked = f"FROM {HISTORY} WHERE earlier_health_score = -7"
    assert query(tampered, f"SELECT DISTINCT as_of_date {marked} AND record_type = 'lead'") == [
        (D - dt.timedelta(days=30),)
    ]
    assert query(tampered, f"SELECT record_type, record_id, as_of_date {marked} "
                           "AND record_type <> 'lead'") == [
        (record_type, record_id, from_day - dt.timedelta(days=1))
    ]  # fmt: skip
    marked_activities = (
        "SELECT activity_id FROM intermediate.int_activities_classified WHERE team_minutes = -7"
    )
    assert query(tampered, marked_activities) == [(untouched,)]

    other_settings = json.loads(nights["window"]) | {"email_read_minutes": 3}
    dbt_run(tampered, "--vars", json.dumps(other_settings))
    assert query(tampered, marked_activities) == []
    assert query(tampered, marked_events) == []
    assert query(tampered, marked_days) == []

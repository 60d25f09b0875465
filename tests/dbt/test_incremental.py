"""Incremental dbt models: two nights in a row give the marts of one full run, at the dbt level.

A generated CRM whose history ends on NIGHT; what was modified on NIGHT is held back and lands
after the first night (as a CRM's daily export would deliver it), together with changes to the
past: an activity moved to another opportunity, one deleted, a meeting whose parties were
replaced, a contact moved to another account, a reply that arrived late (sent on D - 1, loaded
on NIGHT) to one of our emails, an email of ours that arrived late in a conversation (a minute
before a customer's email, which it now pairs with), and an email gone from a file of night 1
that lands again. dbt runs the models as of D, then the night with the window
[NIGHT, NIGHT + 1), the same night again, and `--full-refresh` (one full run as of NIGHT: every
table rebuilt from the same raw tables). `dbt run`, not `build`: the tests of the models run in
the end-to-end tests; here only the rows matter.
"""

import datetime as dt
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import query

from relanalytics_pipeline.cli.generator import generate_dataset
from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.defs.quality.suites import (
    latest_build,
    read_mart,
    record_validated,
    suites,
)
from relanalytics_pipeline.defs.serve.publish import publish
from relanalytics_pipeline.raw_contract import LOAD_ORDER
from relanalytics_pipeline.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from relanalytics_pipeline.warehouse import connect

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
from bench_nightly import NIGHT, D, split_off_night, tables_differing  # noqa: E402

# similar_won_deals and won_deal_benchmarks read the similar-deals model's table (a Python asset).
WITHOUT_THE_MODEL = ["--exclude", "similar_won_deals+"]
HISTORY = "marts.relationship_health_history"
WRITES = "intermediate.relationship_health_history_writes"
NIGHT_TS = f"TIMESTAMPTZ '{NIGHT.isoformat()} 06:00:00+00'"
# The incremental activity tables (dbt_project/macros/incremental_activities.sql).
ACTIVITY_TABLES = (
    "int_activity_people_classified", "int_activities_classified", "int_record_activities",
    "int_emails_sided", "int_email_replies", "int_email_responses",
)  # fmt: skip
LATE_REPLY_TS = f"TIMESTAMPTZ '{(D - dt.timedelta(days=1)).isoformat()} 09:00:00+00'"


def past_changes(landing: Path, night: Path) -> None:
    """Append changes to the past to the night's files (one new version each, modified on NIGHT)."""
    activities = f"read_parquet('{landing}/activities/*.parquet')"
    parties = f"read_parquet('{landing}/activity_parties/*.parquet')"
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")

        def append(entity: str, rows: str) -> None:
            target = night / f"{entity}.parquet"
            connection.execute(
                f"COPY (SELECT * FROM '{target}' UNION ALL BY NAME {rows}) "
                f"TO '{target}.new' (FORMAT parquet)"
            )
            os.replace(f"{target}.new", target)

        def pick(condition: str, offset: int = 0) -> str:
            return (
                f"(SELECT * FROM {activities} WHERE {condition} "
                f"AND occurred_at < TIMESTAMPTZ '{D.isoformat()}' ORDER BY activity_id LIMIT 1 "
                f"OFFSET {offset})"
            )

        completed = "status = 'completed' AND regarding_type = 'opportunity'"
        another_opportunity = (
            f"(SELECT max(regarding_id) FROM {activities} WHERE regarding_type = 'opportunity')"
        )
        moved = pick(completed + " AND activity_type = 'email'")
        deleted = pick(completed + " AND activity_type = 'phone_call'")
        append(
            "activities",
            f"SELECT * REPLACE ({another_opportunity} AS regarding_id, {NIGHT_TS} AS modified_at) "
            f"FROM {moved} UNION ALL "
            f"SELECT * REPLACE (true AS is_deleted, {NIGHT_TS} AS modified_at) FROM {deleted}",
        )
        # A meeting's new version lists other attendees: its parties are replaced as a whole.
        meeting = pick(completed + " AND activity_type = 'appointment'")
        append("activities", f"SELECT * REPLACE ({NIGHT_TS} AS modified_at) FROM {meeting}")
        append(
            "activity_parties",
            f"SELECT * FROM {parties} WHERE activity_id = (SELECT activity_id FROM {meeting}) "
            "AND party_type <> 'contact' UNION ALL "
            f"SELECT (SELECT activity_id FROM {meeting}) AS activity_id, "
            "'required_attendee' AS role, 'contact' AS party_type, contact_id AS party_id, "
            f"email AS address FROM (SELECT * FROM read_parquet('{landing}/contacts/*.parquet') "
            "ORDER BY contact_id DESC LIMIT 2)",
        )
        # A contact moves to another account (every activity it took part in moves with it).
        append(
            "contacts",
            f"SELECT * REPLACE ((SELECT min(account_id) FROM read_parquet('{landing}/accounts/*.parquet')) "
            f"AS account_id, {NIGHT_TS} AS modified_at) FROM (SELECT * FROM "
            f"read_parquet('{landing}/contacts/*.parquet') ORDER BY contact_id LIMIT 1 OFFSET 7)",
        )
        # The customer's reply to one of our emails, sent on D - 1, loaded only on NIGHT.
        ours = pick(
            "activity_type = 'email' AND direction = 'outgoing' AND message_id IS NOT NULL "
            "AND regarding_type = 'opportunity' "
            f"AND occurred_at >= TIMESTAMPTZ '{(D - dt.timedelta(days=5)).isoformat()}'"
        )
        append(
            "activities",
            f"SELECT * REPLACE ('late-reply' AS activity_id, 'incoming' AS direction, "
            f"'late-reply@example' AS message_id, message_id AS in_reply_to, "
            f"{LATE_REPLY_TS} AS occurred_at, {LATE_REPLY_TS} AS created_at, "
            f"{NIGHT_TS} AS modified_at) FROM {ours}",
        )
        # Our email sent a minute before one of the customer's that names no parent by header, in
        # its conversation, loaded only on NIGHT: the customer's email now answers it instead.
        theirs = pick(
            "activity_type = 'email' AND direction = 'incoming' AND status = 'completed' "
            "AND conversation_id IS NOT NULL AND in_reply_to IS NULL "
            f"AND occurred_at >= TIMESTAMPTZ '{(D - dt.timedelta(days=20)).isoformat()}'"
        )
        append(
            "activities",
            "SELECT * REPLACE ('interjected' AS activity_id, 'outgoing' AS direction, "
            "NULL AS message_id, occurred_at - INTERVAL 1 MINUTE AS occurred_at, "
            f"{NIGHT_TS} AS modified_at) FROM {theirs}",
        )
        for email, replied in (("late-reply", ours), ("interjected", theirs)):
            append(
                "activity_parties",
                f"SELECT '{email}' AS activity_id, CASE role WHEN 'from' THEN 'to' ELSE 'from' "
                f"END AS role, party_type, party_id, address FROM {parties} "
                f"WHERE activity_id = (SELECT activity_id FROM {replied}) AND role IN ('from', 'to')",
            )


def set_emails_apart(activities: Path) -> Path:
    """Move 50 completed emails of night 1 into a file of their own; returns it."""
    apart, rest = activities / "part-0001.parquet", activities / "part-0000.parquet"
    emails = "activity_type = 'email' AND status = 'completed' ORDER BY activity_id LIMIT 50"
    with duckdb.connect() as connection:
        connection.execute(f"CREATE TABLE emails AS SELECT * FROM '{rest}' WHERE {emails}")
        connection.execute(f"COPY emails TO '{apart}' (FORMAT parquet)")
        connection.execute(
            f"COPY (SELECT * FROM '{rest}' WHERE activity_id NOT IN (SELECT activity_id FROM "
            f"emails)) TO '{rest}.new' (FORMAT parquet)"
        )
    os.replace(f"{rest}.new", rest)
    return apart


def vanish_an_email(warehouse: Path, loaded_file: Path) -> str:
    """Rewrite a file of night 1 without one of its emails that reply figures counted: reloaded,
    the email leaves no row (the file's other rows load again). Returns its id."""
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{warehouse}' AS night_1 (READ_ONLY)")
        (email,) = connection.execute(
            "SELECT min(activity_id) FROM night_1.intermediate.int_emails_sided "
            f"WHERE activity_id IN (SELECT activity_id FROM '{loaded_file}')"
        ).fetchone()
        assert email is not None
        connection.execute(
            f"COPY (SELECT * FROM '{loaded_file}' WHERE activity_id <> ?) "
            f"TO '{loaded_file}.new' (FORMAT parquet)",
            [email],
        )
    os.replace(f"{loaded_file}.new", loaded_file)
    return email


def ingest(warehouse: Path, landing: Path, run_id: str) -> None:
    for entity in LOAD_ORDER:
        ingest_entity(warehouse, landing, entity, run_id)


def dbt(warehouse: Path, command: str, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"RELANALYTICS_WAREHOUSE": str(warehouse)}
    executable = Path(sys.executable).with_name("dbt")
    target = warehouse.parent / "dbt-target"
    command = [str(executable), command, "--target-path", str(target), *WITHOUT_THE_MODEL, *args]
    return subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)


def dbt_run(warehouse: Path, *args: str) -> None:
    result = dbt(warehouse, "run", *args)
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Warehouses after: night 1 (as of D); night 2 (window [NIGHT, NIGHT + 1)); night 2 again;
    `--full-refresh` after night 2."""
    folder = tmp_path_factory.mktemp("nights")
    generated, landing, night = folder / "generated", folder / "landing", folder / "night"
    generate_dataset(generated, 3000, seed=5, as_of=NIGHT)
    night.mkdir()
    split_off_night(generated, landing, night)
    emails_apart = set_emails_apart(landing / "activities")
    past_changes(landing, night)

    warehouses = {name: folder / name / "warehouse.duckdb" for name in
                  ("night_1", "night_2", "rerun", "full_refresh")}  # fmt: skip
    first = warehouses["night_1"]
    first.parent.mkdir()
    ingest(first, landing, "night-1")
    dbt_run(first, "--vars", json.dumps({"as_of_date": D.isoformat()}))

    for path in night.glob("*.parquet"):  # flat, after part-0000: later files win ties
        path.rename(landing / path.stem / f"part-{NIGHT.isoformat()}.parquet")
    vanished = vanish_an_email(first, emails_apart)
    window = json.dumps(
        {"window_start": NIGHT.isoformat(), "window_end": (NIGHT + dt.timedelta(1)).isoformat()}
    )
    previous = first
    for name, args in (("night_2", ()), ("rerun", ()), ("full_refresh", ("--full-refresh",))):
        shutil.copytree(previous.parent, warehouses[name].parent)
        if name == "night_2":
            ingest(warehouses[name], landing, "night-2")
        dbt_run(warehouses[name], "--vars", window, *args)
        previous = warehouses[name]

    return {**warehouses, "landing": landing, "window": window, "vanished": vanished}


def test_two_nights_give_the_marts_of_one_full_run(nights):
    differing = tables_differing(nights["night_2"], nights["full_refresh"])
    assert set(differing) >= {
        "relationship_kpis", "relationship_health_history", "deal_warnings", "who_knows_whom",
        "account_connections",
    }  # fmt: skip
    assert differing == dict.fromkeys(differing, 0)


def intermediate_tables_differing(warehouse: Path, reference: Path) -> dict[str, int]:
    """tables_differing for the intermediate tables but the records of what the builds wrote
    (`<model>_writes`): they differ by design (a night writes a record's new day, a full build
    every day)."""
    differing = tables_differing(warehouse, reference, "intermediate")
    writes = {table: differing.pop(table) for table in list(differing) if table.endswith("_writes")}
    assert set(writes) == {f"{model}_writes" for model in (*ACTIVITY_TABLES, "int_health_events",
                           "int_record_activity_days", HISTORY.split(".")[1])}  # fmt: skip
    assert writes[WRITES.split(".")[1]] > 0
    return differing


def test_two_nights_give_the_activity_tables_of_one_full_run(nights):
    """The incremental activity tables (and the other intermediate tables) too, row for row."""
    differing = intermediate_tables_differing(nights["night_2"], nights["full_refresh"])
    assert set(differing) >= set(ACTIVITY_TABLES) | {"incremental_activity_state"}
    assert differing == dict.fromkeys(differing, 0)
    # The email whose file was reloaded without it: there after night 1, gone after night 2.
    rows = "SELECT count(*) FROM intermediate.int_emails_sided WHERE activity_id = ?"
    assert [query(nights[n], rows, [nights["vanished"]]) for n in ("night_1", "night_2")] == [
        [(1,)],
        [(0,)],
    ]


def test_running_the_same_night_twice_gives_the_same_tables(nights):
    for differing in (
        tables_differing(nights["rerun"], nights["night_2"]),
        intermediate_tables_differing(nights["rerun"], nights["night_2"]),
    ):
        assert differing == dict.fromkeys(differing, 0)


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
        "AND t.event_day >= w.from_day)",
    ),
    "int_record_activity_days": (
        "record_type, record_id, activity_day",
        "EXISTS (SELECT 1 FROM intermediate.int_record_activity_days_writes AS w "
        "WHERE w.record_type = t.record_type AND w.record_id = t.record_id "
        "AND t.activity_day >= w.from_day)",
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
        return dbt(warehouse, "test", *uniqueness)

    for name in ("night_2", "full_refresh"):
        shutil.copytree(nights[name].parent, tmp_path / name)
    night, full = (tmp_path / name / "warehouse.duckdb" for name in ("night_2", "full_refresh"))
    passed, failed = repeat(night, rows["kept"]), repeat(night, rows["written"])
    assert passed.returncode == 0, passed.stdout[-4000:]
    assert failed.returncode == 1 and "Got 1 result" in failed.stdout, failed.stdout[-4000:]
    failed = repeat(full, rows["kept"])
    assert failed.returncode == 1 and "Got 1 result" in failed.stdout, failed.stdout[-4000:]


def test_the_changes_rewrote_past_days(nights):
    """The changes reach back before the night: D's rows of the records they touch differ from
    night 1 (else the equality above would not show that they were recomputed)."""
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


def test_the_night_keeps_unchanged_records_and_recomputes_changed_ones(nights):
    """A marker in night 1's history: on a record the night did not touch it stays (its rows
    were kept); on a record int_health_events logged from a day F, it is gone from F (its rows
    were recomputed from F) and kept on the day before. The same in an
    activity table: kept for an activity the night did not touch, gone for one whose parties it
    replaced; and gone for both when a setting of the activity tables changes. And in
    int_health_events: kept for a record the night did not touch, gone from the days it
    recomputed of one it touched, kept on that record's days long before. The same in
    int_record_activity_days, which reads what int_health_events recomputed from its log of
    scopes: built only in the next dbt run, whose int_health_events recomputes nothing, it still
    finds the records of the first run's."""
    tampered = nights["night_1"].parent.parent / "tampered" / "warehouse.duckdb"
    shutil.copytree(nights["night_1"].parent, tampered.parent)
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
            "SELECT * FROM intermediate.int_health_events_changes WHERE changed_from > "
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


def test_the_activity_tables_log_the_activities_whose_rows_changed(nights, tmp_path):
    """Night 2 up to the activity tables: each logs the activities whose rows differ from night
    1's (int_record_activities: the record-activity pairs added or removed), found here by
    comparing the two warehouses' tables; exactly those, but for the two tables whose scope is the
    activities with rows loaded since, which log it whole (here with the 50 emails of a file
    reloaded unchanged). The reply tables recompute every email sharing a key with a changed one;
    of those, the emails of the late reply's conversation that still pair as before are not
    logged, and the late reply is."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copytree(nights["night_1"].parent, tmp_path, dirs_exist_ok=True)
    ingest(warehouse, nights["landing"], "night-2")
    activity_tables = ["+int_email_responses", "+int_record_activities"]
    dbt_run(warehouse, "--vars", nights["window"], "--select", *activity_tables)
    logging_their_scope = {"int_activity_people_classified", "int_activities_classified"}
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
            logged = connection.execute(
                "SELECT activity_id, record_type, record_id FROM "
                "two.intermediate.incremental_activity_changes WHERE model = ?",
                [table],
            ).fetchall()
            if table in logging_their_scope:
                assert differing < set(logged), table
            else:
                assert differing and sorted(logged) == sorted(differing), table
        logged_emails = (
            "SELECT activity_id FROM two.intermediate.incremental_activity_changes "
            "WHERE model = '{}'"
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
    the log and empties it. Rebuilt in full within the table (as after a change to the users), it
    logs exactly the records whose deltas differ, from the first day that does: here the one row
    tampered with before. Built anew (--full-refresh), it logs a row of nulls, and the history
    recomputes every record."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copytree(nights["night_1"].parent, tmp_path, dirs_exist_ok=True)
    ingest(warehouse, nights["landing"], "night-2")
    dbt_run(warehouse, "--vars", nights["window"], "--select", "+int_health_events")
    events, log = "intermediate.int_health_events", "intermediate.int_health_events_changes"
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
            ((t, r), day) for t, r, day in connection.execute(f"SELECT * FROM two.{log}").fetchall()
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
            "INSERT INTO intermediate.incremental_activity_changes VALUES (NULL, NULL, NULL, NULL, NULL)"
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
    """Night 2 up to int_health_events: it logs its writes (the records it recomputed, each from
    its first day) for int_record_activity_days, which then recomputes exactly those, empties the
    log and holds the rows of a full build. Without the log (a warehouse of an earlier release,
    where int_health_events has not run since) it is rebuilt in full, with the same rows."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copytree(nights["night_1"].parent, tmp_path, dirs_exist_ok=True)
    ingest(warehouse, nights["landing"], "night-2")
    dbt_run(warehouse, "--vars", nights["window"], "--select", "+int_health_events")
    log, days = "intermediate.int_health_events_scopes", "intermediate.int_record_activity_days"
    events_writes = query(
        warehouse, "SELECT * FROM intermediate.int_health_events_writes ORDER BY ALL"
    )
    assert events_writes and None not in events_writes[0]
    assert query(warehouse, f"SELECT * FROM {log} ORDER BY ALL") == events_writes
    record_days = ("--vars", nights["window"], "--select", "int_record_activity_days")
    dbt_run(warehouse, *record_days)
    assert query(warehouse, f"SELECT count(*) FROM {log}") == [(0,)]
    assert query(warehouse, f"SELECT * FROM {days}_writes ORDER BY ALL") == events_writes

    def differing_from_a_full_build() -> int:
        return intermediate_tables_differing(warehouse, nights["full_refresh"])[days.split(".")[1]]

    assert differing_from_a_full_build() == 0
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(f"DROP TABLE {log}")
        connection.execute(f"UPDATE {days} SET activities = -7 WHERE activity_day = "
                           f"(SELECT min(activity_day) FROM {days})")  # fmt: skip
    dbt_run(warehouse, *record_days)
    assert query(warehouse, f"SELECT * FROM {days}_writes") == [(None, None, None)]
    assert differing_from_a_full_build() == 0


def test_the_published_history_takes_only_what_the_night_wrote(nights, tmp_path):
    """Published after night 1, night 2's publication copies the file and replaces the history's
    rows night 2 wrote: the file then holds night 2's marts row for row, still in storage
    v1.2.0. The rerun of night 2 did not keep night 1's rows: published after night 1, its
    history is copied whole, with the same result; and so on Sundays."""
    marts = [m for (m,) in query(nights["night_1"], "SELECT table_name FROM duckdb_tables() "
                                 "WHERE schema_name = 'marts'")]  # fmt: skip
    writes = {HISTORY.split(".")[1]: WRITES}
    for sequence in (("night_1", "night_2"), ("night_1", "rerun")):
        folder = tmp_path / "-".join(sequence)
        first = publish(nights[sequence[0]], marts, folder, "run-first", D, writes=writes)
        assert first.updated == frozenset()
        second = publish(nights[sequence[1]], marts, folder, "run-second", NIGHT, writes=writes)
        assert second.updated == (
            {"relationship_health_history"} if sequence[1] == "night_2" else frozenset()
        )
        published = folder / "marts.duckdb"
        differing = tables_differing(published, nights[sequence[1]], built_schema="main")
        assert "relationship_health_history" in differing
        assert differing == dict.fromkeys(differing, 0)
        assert struct.unpack("<8x4sQ", published.read_bytes()[:20]) == (b"DUCK", 65)
        builds = "SELECT mart, build_id FROM _publication WHERE build_id IS NOT NULL"
        with connect(nights[sequence[1]], read_only=True) as connection:
            (build,) = connection.execute(f"SELECT max(build_id) FROM {WRITES}").fetchone()
        assert query(published, builds) == [("relationship_health_history", build)]
    # The rerun kept night 2's rows: after night 2's publication it would update the file, but
    # Sundays' publications copy it whole, reclaiming the room of the rows replaced.
    folder = tmp_path / "night_1-night_2"
    sunday = NIGHT + dt.timedelta(days=7 - NIGHT.isoweekday())
    third = publish(nights["rerun"], marts, folder, "run-sunday", sunday, writes=writes)
    assert third.updated == frozenset() and third.builds == {"relationship_health_history": build}
    assert (
        tables_differing(folder / "marts.duckdb", nights["rerun"], built_schema="main") == differing
    )
    monday = publish(nights["rerun"], marts, folder, "run-monday", sunday + dt.timedelta(1),
                     writes=writes)  # fmt: skip
    assert monday.updated == frozenset()  # the file holds the rerun's rows, not those it kept

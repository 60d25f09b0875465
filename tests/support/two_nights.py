"""Two nights of incremental dbt models on a generated CRM, and one full run to hold them against:
the warehouses the incremental tests (tests/dbt/test_incremental_*.py) read.

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
import fcntl
import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from relanalytics_pipeline.cli.generator import generate_dataset
from relanalytics_pipeline.defs.learn.similar_deals import (
    read_opportunities,
    similar_won_deals,
    write_neighbours,
)
from relanalytics_pipeline.warehouse import ensure_tables_written_after_dbt
from support.nightly import NIGHT, D, split_off_night, tables_differing
from support.warehouses import WITHOUT_THE_MODEL, dbt, ingest

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


def dbt_run(warehouse: Path, *args: str, model: bool = False) -> None:
    """`dbt run` of every model but the similar-deals marts; with `model`, of every model, then
    the similar-deals model writes its neighbours (the pipeline's order: its marts are views over
    them)."""
    result = dbt(warehouse, "run", *(() if model else WITHOUT_THE_MODEL), *args)
    assert result.returncode == 0, result.stdout[-4000:]
    if model:
        with duckdb.connect(str(warehouse)) as connection:
            write_neighbours(connection, similar_won_deals(read_opportunities(connection)))


def build_nights(folder: Path, activities: int = 3000, model: bool = False) -> dict:
    """Warehouses after: night 1 (as of D); night 2 (window [NIGHT, NIGHT + 1)); night 2 again;
    `--full-refresh` after night 2 (on a CRM of `activities` generated activities; with `model`,
    the similar-deals model run after each, see dbt_run); with the landing folder, each night's
    dbt vars and the email gone from its file of night 1."""
    generated, landing, night = folder / "generated", folder / "landing", folder / "night"
    generate_dataset(generated, activities, seed=5, as_of=NIGHT)
    night.mkdir()
    split_off_night(generated, landing, night)
    emails_apart = set_emails_apart(landing / "activities")
    past_changes(landing, night)

    warehouses = {name: folder / name / "warehouse.duckdb" for name in
                  ("night_1", "night_2", "rerun", "full_refresh")}  # fmt: skip
    first = warehouses["night_1"]
    first.parent.mkdir()
    ingest(first, landing, "night-1")
    if model:
        with duckdb.connect(str(first)) as connection:
            ensure_tables_written_after_dbt(connection)
    as_of = json.dumps({"as_of_date": D.isoformat()})
    dbt_run(first, "--vars", as_of, model=model)

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
        dbt_run(warehouses[name], "--vars", window, *args, model=model)
        previous = warehouses[name]

    return {**warehouses, "landing": landing, "as_of": as_of, "window": window,
            "vanished": vanished}  # fmt: skip


@pytest.fixture(scope="session")
def nights(tmp_path_factory) -> dict:
    """build_nights, once for the whole session: they take minutes, and several test files read
    them. Under pytest-xdist, the first worker to need them builds them in the folder every
    worker's temporary folder is in, while the others wait on its lock; then all read them. Tests
    only read them: a test that changes a warehouse changes a copy in its tmp_path."""
    shared = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        shared = shared.parent
    folder, built = shared / "two-nights", shared / "two-nights.json"
    with open(shared / "two-nights.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir()
            built.write_text(json.dumps(build_nights(folder), default=str))
    return {
        name: value if name in ("as_of", "window", "vanished") else Path(value)
        for name, value in json.loads(built.read_text()).items()
    }


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

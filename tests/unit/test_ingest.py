"""The ingest rules of the raw contract, on real files and a real DuckDB warehouse."""

import csv
import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import query

from relanalytics_pipeline.defs.ingest.landing import UnreadableFile, read_landing_file
from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.raw_contract import ENTITIES, LOAD_ORDER

ACCOUNTS = [
    {"account_id": "a1", "name": "Globex", "annual_revenue": "5000000.25", "employees": "120",
     "modified_at": "2026-03-20T16:00:00+01:00", "is_deleted": "false"},
    {"account_id": "a2", "name": "Initech", "annual_revenue": "", "employees": "40",
     "modified_at": "2026-03-20 15:00:00", "is_deleted": ""},
]  # fmt: skip


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_parquet(path: Path, rows: list[dict]) -> None:
    """Typed Parquet as a pipeline would write it: numbers, booleans and real timestamps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = [dt.datetime.fromisoformat(r["modified_at"]) for r in rows]
    stamps = [s if s.tzinfo else s.replace(tzinfo=dt.UTC) for s in stamps]
    table = pa.table(
        {
            "account_id": [r["account_id"] for r in rows],
            "name": [r["name"] for r in rows],
            "annual_revenue": [
                float(r["annual_revenue"]) if r["annual_revenue"] else None for r in rows
            ],
            "employees": [int(r["employees"]) for r in rows],
            "modified_at": pa.array(stamps, type=pa.timestamp("us", tz="UTC")),
            "is_deleted": [r["is_deleted"] == "true" for r in rows],
        }
    )
    pq.write_table(table, path)


WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}


def ingest(warehouse: Path, landing: Path, entity: str, run_id: str = "run-1"):
    return ingest_entity(warehouse, landing, entity, run_id=run_id)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_each_format_loads_the_same_typed_rows(tmp_path, fmt):
    WRITERS[fmt](tmp_path / "landing" / "accounts" / f"batch.{fmt}", ACCOUNTS)
    warehouse = tmp_path / "w.duckdb"
    report = ingest(warehouse, tmp_path / "landing", "accounts")
    assert (report.total("rows_read"), report.total("rows_loaded")) == (2, 2)
    rows = query(
        warehouse,
        "SELECT account_id, name, annual_revenue, employees, modified_at, is_deleted, industry, "
        "_source_file, _row_number FROM crm.accounts ORDER BY account_id",
    )
    from decimal import Decimal

    # +01:00 is converted to UTC; a timestamp without an offset is UTC; an empty flag is false.
    assert rows == [
        ("a1", "Globex", Decimal("5000000.25"), 120, dt.datetime(2026, 3, 20, 15), False, None,
         f"accounts/batch.{fmt}", 1),
        ("a2", "Initech", None, 40, dt.datetime(2026, 3, 20, 15), False, None,
         f"accounts/batch.{fmt}", 2),
    ]  # fmt: skip


def test_bad_rows_are_quarantined_with_a_reason_and_counted(tmp_path):
    landing = tmp_path / "landing"
    (landing / "activities").mkdir(parents=True)
    (landing / "activities" / "a.csv").write_text(
        "activity_id,activity_type,status,occurred_at,modified_at\n"
        "ok1,email,completed,2026-03-01T10:00:00Z,2026-03-01T10:00:00Z\n"
        ",email,completed,2026-03-01T10:00:00Z,2026-03-01T10:00:00Z\n"
        "bad2,email,completed,yesterday,2026-03-01T10:00:00Z\n"
        "bad3,fax,done,2026-03-01T10:00:00Z,2026-03-01T10:00:00Z\n"
        "bad4,email,completed\n"
        "ok1,email,completed,2026-03-01T10:00:00Z,2026-03-01T10:00:00Z\n"
    )
    (landing / "activities" / "b.jsonl").write_text(
        '{"activity_id": "ok2", "activity_type": "Task", "status": "Open", "modified_at": "2026-03-02"}\n'
        "{not json\n"
        "\n"
        '["a", "list"]\n'
    )
    warehouse = tmp_path / "w.duckdb"
    report = ingest(warehouse, landing, "activities")
    by_file = {f.source_file: f for f in report.files}
    a, b = by_file["activities/a.csv"], by_file["activities/b.jsonl"]
    assert (a.rows_read, a.rows_loaded, a.rows_duplicate, a.rows_quarantined) == (6, 1, 1, 4)
    assert (b.rows_read, b.rows_loaded, b.rows_duplicate, b.rows_quarantined) == (3, 1, 0, 2)
    for f in (a, b):
        assert f.rows_read == f.rows_loaded + f.rows_duplicate + f.rows_quarantined
    rejected = query(
        warehouse,
        "SELECT source_file, row_number, reason, run_id FROM quarantine.rejected_rows "
        "ORDER BY source_file, row_number",
    )
    assert rejected == [
        ("activities/a.csv", 2, "activity_id is missing", "run-1"),
        ("activities/a.csv", 3, "occurred_at 'yesterday' is not an ISO-8601 timestamp", "run-1"),
        ("activities/a.csv", 4,
         "activity_type 'fax' is not one of email, appointment, phone_call, task; "
         "status 'done' is not one of open, completed, canceled", "run-1"),
        ("activities/a.csv", 5, "row has 3 fields but the header has 5", "run-1"),
        ("activities/b.jsonl", 2, "line is not valid JSON: Expecting property name enclosed in "
         "double quotes", "run-1"),
        ("activities/b.jsonl", 4, "line is not a JSON object", "run-1"),
    ]  # fmt: skip
    raw = query(warehouse, "SELECT raw_record FROM quarantine.rejected_rows WHERE row_number = 3")
    assert json.loads(raw[0][0])["occurred_at"] == "yesterday"
    # Enum values are matched without regard to case.
    assert query(
        warehouse, "SELECT activity_type, status FROM crm.activities WHERE activity_id = 'ok2'"
    ) == [("task", "open")]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("truncated.parquet", b"PAR1\x00\x01", "cannot read parquet file"),
        ("latin1.csv", "user_id,modified_at\nü,2026-01-01\n".encode("latin-1"), "not UTF-8 text"),
        (
            "no_key.csv",
            b"full_name,modified_at\nAnn,2026-01-01\n",
            "lacks required column(s): user_id",
        ),
        ("users.xlsx", b"PK\x03\x04", "unsupported file type '.xlsx'"),
    ],
)
def test_an_unreadable_file_is_quarantined_and_the_rest_still_loads(
    tmp_path, name, content, reason
):
    folder = tmp_path / "landing" / "users"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(content)
    (folder / "z_good.csv").write_text("user_id,modified_at\nu1,2026-01-01\n")
    warehouse = tmp_path / "w.duckdb"
    report = ingest(warehouse, tmp_path / "landing", "users")
    assert [f.status for f in report.files] == ["quarantined", "loaded"]
    ((source, row_number, text),) = query(
        warehouse, "SELECT source_file, row_number, reason FROM quarantine.rejected_rows"
    )
    assert (source, row_number) == (f"users/{name}", None)
    assert reason in text
    assert query(warehouse, "SELECT user_id FROM crm.users") == [("u1",)]


def test_reader_refuses_what_it_cannot_parse(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(UnreadableFile, match="no header row"):
        read_landing_file(path)


def test_versions_ties_and_idempotent_reingest(tmp_path):
    landing = tmp_path / "landing"
    write_csv(landing / "users" / "2026-03-01.csv", [
        {"user_id": "u1", "team": "East", "modified_at": "2026-01-01T00:00:00Z", "is_deleted": "false"},
        {"user_id": "u2", "team": "East", "modified_at": "2026-01-01T00:00:00Z", "is_deleted": "false"},
    ])  # fmt: skip
    write_csv(landing / "users" / "2026-03-02.csv", [
        # a newer version, a same-version conflict, and a deletion
        {"user_id": "u1", "team": "West", "modified_at": "2026-02-01T00:00:00Z", "is_deleted": "false"},
        {"user_id": "u2", "team": "North", "modified_at": "2026-01-01T00:00:00Z", "is_deleted": "false"},
        {"user_id": "u3", "team": "South", "modified_at": "2026-02-01T00:00:00Z", "is_deleted": "true"},
    ])  # fmt: skip
    warehouse = tmp_path / "w.duckdb"
    first = ingest(warehouse, landing, "users", "run-1")
    assert [(f.rows_loaded, f.rows_duplicate, f.rows_conflicting) for f in first.files] == [
        (2, 0, 0),
        (2, 1, 1),
    ]
    versions = "SELECT user_id, team, modified_at, is_deleted FROM crm.users ORDER BY ALL"
    expected = [
        ("u1", "East", dt.datetime(2026, 1, 1), False),
        ("u1", "West", dt.datetime(2026, 2, 1), False),
        ("u2", "North", dt.datetime(2026, 1, 1), False),  # the later file wins the tie
        ("u3", "South", dt.datetime(2026, 2, 1), True),  # the raw history keeps deletions
    ]
    assert query(warehouse, versions) == expected

    # The same files again: nothing is read, nothing changes.
    again = ingest(warehouse, landing, "users", "run-2")
    assert [f.status for f in again.files] == ["unchanged", "unchanged"]
    assert again.total("rows_read") == 0
    assert query(warehouse, versions) == expected

    # A tie against a file ingested earlier but later in name order: the stored row stays.
    write_csv(landing / "users" / "2026-03-01b.csv", [
        {"user_id": "u2", "team": "Central", "modified_at": "2026-01-01T00:00:00Z", "is_deleted": "false"},
    ])  # fmt: skip
    late = ingest(warehouse, landing, "users", "run-3")
    assert [(f.status, f.rows_duplicate, f.rows_conflicting) for f in late.files] == [
        ("unchanged", 0, 0), ("loaded", 1, 1), ("unchanged", 0, 0)
    ]  # fmt: skip
    assert query(warehouse, versions) == expected


def test_a_changed_file_replaces_what_it_loaded_before(tmp_path):
    landing = tmp_path / "landing"
    path = landing / "users" / "users.csv"
    write_csv(
        path, [{"user_id": "u1", "modified_at": "2026-01-01"}, {"user_id": "", "modified_at": "x"}]
    )
    warehouse = tmp_path / "w.duckdb"
    ingest(warehouse, landing, "users", "run-1")
    write_csv(path, [{"user_id": "u9", "modified_at": "2026-01-01"}])
    report = ingest(warehouse, landing, "users", "run-2")
    assert report.files[0].rows_loaded == 1
    assert query(warehouse, "SELECT user_id FROM crm.users") == [("u9",)]
    assert query(warehouse, "SELECT COUNT(*) FROM quarantine.rejected_rows") == [(0,)]
    # u1 vanished with no row of its own: the incremental models learn it from here.
    removed = "SELECT entity, record_id, removed_at = (SELECT max(_loaded_at) FROM crm.users) "
    assert query(warehouse, removed + "FROM ingest.removed_rows") == [("users", "u1", True)]


def test_hand_made_landing_accounts_for_every_row(landing, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    reports = {e: ingest(warehouse, landing, e) for e in LOAD_ORDER}
    totals = {
        e: tuple(
            r.total(n) for n in ("rows_read", "rows_loaded", "rows_duplicate", "rows_quarantined")
        )
        for e, r in reports.items()
    }
    assert totals == {
        "users": (3, 2, 1, 0),
        "accounts": (2, 2, 0, 0),
        "contacts": (4, 4, 0, 0),
        "leads": (1, 1, 0, 0),
        "opportunities": (2, 2, 0, 0),
        "activities": (22, 20, 1, 1),  # x1's date is unreadable; e1 arrives twice
        "activity_parties": (41, 40, 0, 1),  # zz names no activity
    }
    assert reports["users"].count("quarantined") == 1  # broken.parquet
    assert reports["users"].total("rows_conflicting") == 1
    assert query(
        warehouse, "SELECT entity, row_number FROM quarantine.rejected_rows ORDER BY entity"
    ) == [("activities", 13), ("activity_parties", 28), ("users", None)]


def test_the_demo_generates_its_sample_once_and_the_pipeline_never_does(tmp_path):
    import logging

    from relanalytics_pipeline.cli.sample import ensure_sample
    from relanalytics_pipeline.defs.ingest.landing import landing_folder
    from relanalytics_pipeline.settings import Settings

    settings = Settings.from_env({"RELANALYTICS_HOME": str(tmp_path / "home")})
    with pytest.raises(FileNotFoundError, match="relanalytics demo"):
        landing_folder(settings)  # no folder configured, no sample: nothing is generated
    assert not (tmp_path / "home").exists()

    log = logging.getLogger("test")
    landing = ensure_sample(settings, dt.date(2026, 3, 31), log, activities=500)
    assert landing == tmp_path / "home" / "sample-landing" == landing_folder(settings)
    written = sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*.parquet"))
    assert written == [f"{e}/part-0000.parquet" for e in sorted(LOAD_ORDER)]
    stamps = [p.stat().st_mtime_ns for p in landing.rglob("*.parquet")]
    assert ensure_sample(settings, dt.date(2026, 4, 1), log) == landing
    assert [p.stat().st_mtime_ns for p in landing.rglob("*.parquet")] == stamps  # not made again

    missing = Settings.from_env({"RELANALYTICS_LANDING_DIR": str(tmp_path / "nowhere")})
    with pytest.raises(FileNotFoundError, match="RELANALYTICS_LANDING_DIR"):
        landing_folder(missing)


def test_typed_parquet_values_are_checked_too(tmp_path):
    """Typed columns skip the text round trip; their problems still reach the quarantine."""
    folder = tmp_path / "landing" / "accounts"
    folder.mkdir(parents=True)
    table = pa.table(
        {
            "account_id": ["a1", None, "a3", "a4"],
            "annual_revenue": [1e30, 5.0, float("nan"), 7.25],  # too large for DECIMAL(18, 2)
            "employees": [1.5, 2.0, None, 4.0],  # a whole number is expected
            "modified_at": pa.array([0, 0, 0, None], type=pa.timestamp("s")),
        }
    )
    pq.write_table(table, folder / "typed.parquet")
    warehouse = tmp_path / "w.duckdb"
    report = ingest(warehouse, tmp_path / "landing", "accounts")
    assert (report.total("rows_loaded"), report.total("rows_quarantined")) == (1, 3)
    assert query(
        warehouse, "SELECT row_number, reason FROM quarantine.rejected_rows ORDER BY 1"
    ) == [
        (
            1,
            "annual_revenue '1e+30' is out of range (decimals up to ±9999999999999999.99); "
            "employees '1.5' is not a whole number",
        ),
        (2, "account_id is missing"),
        (4, "modified_at is missing"),
    ]
    # NaN is a missing number; a naive timestamp is UTC.
    assert query(
        warehouse, "SELECT account_id, annual_revenue, employees, modified_at FROM crm.accounts"
    ) == [("a3", None, None, dt.datetime(1970, 1, 1))]


def test_a_parquet_file_is_read_as_itself_whatever_its_name(tmp_path):
    """DuckDB reads a Parquet file's rows in place, through the file the load opened: to DuckDB
    a path is a glob, and `part*.parquet` would read `part-1.parquet` too. The rows keep their
    numbers across row groups, and a column named like DuckDB's own row numbers is one more
    column of the file, reported as not in the contract."""
    folder = tmp_path / "landing" / "accounts"
    folder.mkdir(parents=True)
    stamp = "2026-03-01T10:00:00Z"
    ids = ["g1", "g2", None, "g4", "g5"]
    pq.write_table(
        pa.table({"account_id": ids, "modified_at": [stamp] * 5}),
        folder / "part*.parquet",
        row_group_size=2,
    )
    pq.write_table(
        pa.table({"account_id": ["n1"], "modified_at": [stamp], "file_row_number": ["x"]}),
        folder / "part-1.parquet",
    )
    warehouse = tmp_path / "w.duckdb"
    report = ingest(warehouse, tmp_path / "landing", "accounts")
    counts = {
        f.source_file: (f.rows_read, f.rows_loaded, f.rows_quarantined, f.unknown_columns)
        for f in report.files
    }
    assert counts == {
        "accounts/part*.parquet": (5, 4, 1, []),
        "accounts/part-1.parquet": (1, 1, 0, ["file_row_number"]),
    }
    assert query(
        warehouse, "SELECT account_id, _source_file, _row_number FROM crm.accounts ORDER BY ALL"
    ) == [
        ("g1", "accounts/part*.parquet", 1),
        ("g2", "accounts/part*.parquet", 2),
        ("g4", "accounts/part*.parquet", 4),
        ("g5", "accounts/part*.parquet", 5),
        ("n1", "accounts/part-1.parquet", 1),
    ]
    assert query(
        warehouse, "SELECT source_file, row_number, reason FROM quarantine.rejected_rows"
    ) == [("accounts/part*.parquet", 3, "account_id is missing")]


def test_parties_without_a_party_id_column_load_by_address(tmp_path):
    landing = tmp_path / "landing"
    write_csv(landing / "activities" / "a.csv", [
        {"activity_id": "e1", "activity_type": "email", "status": "completed", "modified_at": "2026-03-01"},
    ])  # fmt: skip
    write_csv(landing / "activity_parties" / "p.csv", [
        {"activity_id": "e1", "role": "from", "party_type": "unresolved", "address": "a@x.example"},
        {"activity_id": "e1", "role": "to", "party_type": "unresolved", "address": ""},
    ])  # fmt: skip
    warehouse = tmp_path / "w.duckdb"
    ingest(warehouse, landing, "activities")
    report = ingest(warehouse, landing, "activity_parties")
    assert [(f.status, f.rows_loaded, f.rows_quarantined) for f in report.files] == [
        ("loaded", 1, 1)
    ]
    assert query(warehouse, "SELECT reason FROM quarantine.rejected_rows") == [
        ("party has neither party_id nor address",)
    ]


# Values that have broken typing somewhere: too large for BIGINT or DECIMAL(18, 2), infinite,
# dates out of every range, SQL and NUL bytes.
AWKWARD = [
    "", "0", "1", "1.0", "1e30", "-1e30", "inf", "-inf", "Infinity", "nan", "1e19",
    "9223372036854775808", "infinity", "-infinity", "0001-01-01", "99999-12-31", "maybe",
    "'; --", "\x00", "NULL", '{"a": 1}',
]  # fmt: skip


@pytest.mark.parametrize("entity_name", [e for e in LOAD_ORDER if e != "activity_parties"])
def test_no_value_in_any_column_costs_more_than_its_row(tmp_path, entity_name):
    """Each awkward value in every column but the key and modified_at: rows are loaded or
    quarantined one by one, never the file."""
    entity = ENTITIES[entity_name]
    columns = [c for c in entity.column_names if c not in (entity.key[0], "modified_at")]
    rows = [
        {entity.key[0]: f"r{i}", "modified_at": "2026-03-01", **dict.fromkeys(columns, value)}
        for i, value in enumerate(AWKWARD)
    ]
    write_csv(tmp_path / "landing" / entity_name / "awkward.csv", rows)
    report = ingest_entity(tmp_path / "w.duckdb", tmp_path / "landing", entity_name, run_id="r")
    (f,) = report.files
    assert (f.status, f.rows_read) == ("loaded", len(AWKWARD))
    assert f.rows_loaded + f.rows_quarantined == len(AWKWARD)
    if entity_name == "accounts":
        # A value valid at once as a decimal, a head count and a flag: empty, 0 or 1.
        assert query(tmp_path / "w.duckdb", "SELECT account_id FROM crm.accounts ORDER BY 1") == [
            ("r0",),
            ("r1",),
            ("r2",),
        ]


def test_native_parquet_numbers_that_do_not_fit_cost_their_row(tmp_path):
    folder = tmp_path / "landing" / "accounts"
    folder.mkdir(parents=True)
    big = [float("inf"), float("-inf"), 1e30, float("nan"), 1.0]
    pq.write_table(
        pa.table(
            {
                "account_id": [f"f{i}" for i in range(5)],
                "annual_revenue": big,
                "employees": big,
                "modified_at": ["2026-03-01"] * 5,
            }
        ),
        folder / "floats.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "account_id": ["u0", "u1"],
                "employees": pa.array([2**64 - 1, 7], type=pa.uint64()),
                "modified_at": ["2026-03-01"] * 2,
            }
        ),
        folder / "unsigned.parquet",
    )
    warehouse = tmp_path / "w.duckdb"
    report = ingest_entity(warehouse, tmp_path / "landing", "accounts", run_id="r")
    counts = [(f.status, f.rows_read, f.rows_loaded, f.rows_quarantined) for f in report.files]
    assert counts == [("loaded", 5, 2, 3), ("loaded", 2, 1, 1)]
    assert query(
        warehouse,
        "SELECT source_file, row_number, reason FROM quarantine.rejected_rows ORDER BY ALL",
    ) == [
        ("accounts/floats.parquet", 1, "annual_revenue 'inf' is not a finite number; "
         "employees 'inf' is not a finite number"),
        ("accounts/floats.parquet", 2, "annual_revenue '-inf' is not a finite number; "
         "employees '-inf' is not a finite number"),
        ("accounts/floats.parquet", 3,
         "annual_revenue '1e+30' is out of range (decimals up to ±9999999999999999.99); "
         "employees '1e+30' is out of range (whole numbers up to ±9223372036854775807)"),
        ("accounts/unsigned.parquet", 1, "employees '18446744073709551615' is out of range "
         "(whole numbers up to ±9223372036854775807)"),
    ]  # fmt: skip
    assert query(warehouse, "SELECT account_id, employees FROM crm.accounts ORDER BY 1") == [
        ("f3", None), ("f4", 1), ("u1", 7)
    ]  # fmt: skip

"""Which records the marts hold: current ones only, never deleted or unknown ones.

The hand-made dataset (tests/fixtures/landing, as of 2026-03-31) with three more emails:
- e20 regards the deleted contact c4, who takes part in it (from u1);
- e21 regards the account a9, which no file holds (from u2 to the contact c3, on 20 March, the
  day of c3's incoming call p2);
- e22 regards o1 and is sent by u1 to the contact c9, which no file holds (22 March);
- e23 regards c9 and is sent to c9 (23 March): it belongs to no known record.
The ingest loads the files, then `dbt build` runs the models and their data tests, as the
pipeline's dbt step does (without the similar-deals marts, which need a Python asset).
"""

import shutil

import duckdb
import pytest
from conftest import query
from support.warehouses import HAND_MADE_SETTINGS, build, dbt, load_landing, run_results

EXTRA_ACTIVITIES = [
    {"activity_id": "e20", "activity_type": "email", "subject": "Still there?",
     "direction": "outgoing", "status": "completed", "owner_id": "u1", "regarding_type": "contact",
     "regarding_id": "c4", "occurred_at": "2026-03-20T10:00:00Z", "message_id": "<m20@x>",
     "modified_at": "2026-03-20T10:00:00Z"},
    {"activity_id": "e21", "activity_type": "email", "subject": "New subsidiary",
     "direction": "outgoing", "status": "completed", "owner_id": "u2", "regarding_type": "account",
     "regarding_id": "a9", "occurred_at": "2026-03-20T10:00:00Z", "message_id": "<m21@x>",
     "modified_at": "2026-03-20T10:00:00Z"},
    {"activity_id": "e22", "activity_type": "email", "subject": "Introduction",
     "direction": "outgoing", "status": "completed", "owner_id": "u1",
     "regarding_type": "opportunity", "regarding_id": "o1", "occurred_at": "2026-03-22T10:00:00Z",
     "message_id": "<m22@x>", "modified_at": "2026-03-22T10:00:00Z"},
    {"activity_id": "e23", "activity_type": "email", "subject": "Welcome", "direction": "outgoing",
     "status": "completed", "owner_id": "u1", "regarding_type": "contact", "regarding_id": "c9",
     "occurred_at": "2026-03-23T10:00:00Z", "message_id": "<m23@x>",
     "modified_at": "2026-03-23T10:00:00Z"},
]  # fmt: skip
EXTRA_PARTIES = """activity_id,role,party_type,party_id,address
e20,from,user,u1,ann@acme-sales.example
e20,to,contact,c4,
e21,from,user,u2,bob@acme-sales.example
e21,to,contact,c3,erin@initech.example
e22,from,user,u1,ann@acme-sales.example
e22,to,contact,c9,
e23,from,user,u1,ann@acme-sales.example
e23,to,contact,c9,
"""
RECORD_MARTS = ("relationship_kpis", "relationship_activity_daily", "relationship_health",
                "relationship_health_history", "record_summary", "record_contacts",
                "record_colleagues")  # fmt: skip
NOT_CURRENT = {("contact", "c4"), ("account", "a9"), ("contact", "c9")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    warehouse = load_landing(tmp_path_factory.mktemp("records"), EXTRA_ACTIVITIES, EXTRA_PARTIES)
    result, results = build(warehouse)
    assert result.returncode == 0, result.stdout[-4000:]
    return warehouse, results


def test_activity_daily_holds_current_records_only(built):
    warehouse, _ = built
    records = query(warehouse, "SELECT DISTINCT record_type, record_id "
                               "FROM marts.relationship_activity_daily")  # fmt: skip
    # Every current record has a completed conversation or task within the 60 days.
    assert set(records) == {
        ("opportunity", "o1"), ("opportunity", "o2"), ("lead", "l1"), ("account", "a1"),
        ("account", "a2"), ("contact", "c1"), ("contact", "c2"), ("contact", "c3"),
    }  # fmt: skip


def test_activities_of_unknown_records_count_for_the_known_ones(built):
    warehouse, _ = built
    rows = query(
        warehouse,
        "SELECT record_type, record_id, activity_kind, activity_count "
        "FROM marts.relationship_activity_daily WHERE activity_date = ? "
        "AND record_id IN ('c3', 'a2', 'o1', 'a1')",
        ["2026-03-20"],
    )
    # e21 (regarding the unknown a9) counts for c3, who takes part, and so for c3's account a2,
    # beside the incoming call p2 of that day.
    assert sorted(rows) == [
        ("account", "a2", "incoming_call", 1), ("account", "a2", "sent_email", 1),
        ("contact", "c3", "incoming_call", 1), ("contact", "c3", "sent_email", 1),
    ]  # fmt: skip
    # e22 (to the unknown c9) counts for o1 and its account a1.
    assert sorted(
        query(
            warehouse,
            "SELECT record_type, record_id, activity_kind, activity_count "
            "FROM marts.relationship_activity_daily WHERE activity_date = ?",
            ["2026-03-22"],
        )
    ) == [("account", "a1", "sent_email", 1), ("opportunity", "o1", "sent_email", 1)]


@pytest.mark.parametrize("mart", RECORD_MARTS)
def test_no_mart_holds_a_deleted_or_unknown_record(built, mart):
    warehouse, _ = built
    records = set(query(warehouse, f"SELECT DISTINCT record_type, record_id FROM marts.{mart}"))
    assert records, mart
    assert not records & NOT_CURRENT
    if mart == "record_contacts":
        contacts = query(warehouse, "SELECT DISTINCT contact_id FROM marts.record_contacts")
        assert {c for (c,) in contacts} == {"c1", "c2", "c3"}


def test_unknown_references_are_reported_with_counts_and_examples(built):
    warehouse, results = built
    assert query(
        warehouse,
        "SELECT * FROM intermediate.int_unknown_references ORDER BY record_type, record_id",
    ) == [("account", "a9", 1, "e21"), ("contact", "c9", 2, "e22, e23")]
    # A warning, one failing row per unknown record; the deleted c4 is known, not reported.
    (warning,) = [r for i, r in results.items() if "is_empty_int_unknown_references" in i]
    assert (warning["status"], warning["failures"]) == ("warn", 2)
    checks = [r for i, r in results.items() if ".only_current_records_" in i]
    # The marts of RECORD_MARTS, record_contacts.contact_id, deal_tracking, deal_warnings,
    # who_knows_whom and account_connections.
    assert len(checks) == 12
    assert {r["status"] for r in checks} == {"pass"}


def test_a_mart_holding_a_deleted_record_fails_its_check(built, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built[0], warehouse)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "INSERT INTO marts.relationship_activity_daily VALUES "
            "('contact', 'c4', DATE '2026-03-20', 'sent_email', 1)"
        )
    result = dbt(
        warehouse, "test", "--select", "relationship_activity_daily,test_name:only_current_records",
        environ=HAND_MADE_SETTINGS,
    )  # fmt: skip
    assert result.returncode == 1
    ((unique_id, outcome),) = run_results(warehouse).items()
    assert (outcome["status"], outcome["failures"]) == ("fail", 1)

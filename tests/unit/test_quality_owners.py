"""Each rule lives with one owner (docs/quality.md): the rules the crm great-expectations suites
and the staging models' dbt tests used to check again are the ingest's, which quarantines a row
breaking any of them, row by row, with a reason naming the column.

The bad rows are made from the raw contract itself (relanalytics_pipeline/raw_contract.py), so a
contract column added later is covered too.
"""

import csv
from pathlib import Path

import pytest
from conftest import query

from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.raw_contract import ENTITIES, LOAD_ORDER, PLAUSIBLE_DATES, Column

# A valid row of each entity: what a file needs to load (its required columns).
VALID = {
    "users": {"user_id": "u1"},
    "accounts": {"account_id": "a1"},
    "contacts": {"contact_id": "c1"},
    "leads": {"lead_id": "l1"},
    "opportunities": {"opportunity_id": "o1", "status": "open"},
    "activities": {"activity_id": "t1", "activity_type": "task", "status": "open"},
    "activity_parties": {"activity_id": "t1", "role": "owner", "party_type": "user",
                         "party_id": "u1"},
}  # fmt: skip
MODIFIED = "2026-03-01T10:00:00Z"


def _bad_values(column: Column) -> list[tuple[str, str]]:
    """(value, what the reason says) for each rule of the column that a value can break."""
    bad = []
    if column.not_null:
        bad.append(("", f"{column.name} is missing"))
    if column.kind == "enum":
        bad.append(("bogus", f"{column.name} 'bogus' is not one of {', '.join(column.values)}"))
    if column.kind in ("timestamp", "date"):
        low, high = PLAUSIBLE_DATES
        bad.append(("0001-01-01", f"{column.name} '0001-01-01' is not between {low} and {high}"))
        bad.append(("9999-12-31", f"{column.name} '9999-12-31' is not between {low} and {high}"))
    if column.kind in ("integer", "double") and column.bounds:
        low, high = column.bounds
        bad.append((str(low - 1), f"{column.name} '{low - 1}' is not "))
        if high is not None:
            bad.append((str(high + 1), f"{column.name} '{high + 1}' is not "))
    return bad


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(name for row in rows for name in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, restval="")
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("entity_name", LOAD_ORDER)
def test_the_ingest_quarantines_every_row_breaking_a_contract_rule(tmp_path, entity_name):
    entity = ENTITIES[entity_name]
    versioned = {"modified_at": MODIFIED} if entity.versioned else {}
    valid = {**VALID[entity_name], **versioned}
    rows, expected = [valid], {}  # expected: the reason of each row number (the valid row: 1)
    for column in entity.columns:
        for value, reason in _bad_values(column):
            row = {**valid, column.name: value}
            if entity_name == "activity_parties" and column.name == "activity_id" and value:
                reason = f"activity_id '{value}' names no activity"
            rows.append(row)
            expected[len(rows)] = reason
    if entity_name == "activity_parties":  # a party of an activity no file holds
        rows.append({**valid, "activity_id": "zz"})
        expected[len(rows)] = "activity_id 'zz' names no activity"
    rows.append(dict(valid))  # the same version again: merged, not loaded twice
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    _write(landing / entity_name / "a.csv", rows)
    if entity_name == "activity_parties":
        _write(landing / "activities" / "a.csv", [{**VALID["activities"], "modified_at": MODIFIED}])
        ingest_entity(warehouse, landing, "activities", run_id="run-1")
    report = ingest_entity(warehouse, landing, entity_name, run_id="run-1")

    rejected = dict(
        query(
            warehouse,
            "SELECT row_number, reason FROM quarantine.rejected_rows WHERE entity = ?",
            [entity_name],
        )
    )
    assert rejected.keys() == expected.keys()
    for row_number, reason in expected.items():
        assert rejected[row_number].startswith(reason), (row_number, rejected[row_number])
    # The valid row once: one row per version (a party once per file).
    key = ", ".join(entity.key)
    assert query(warehouse, f"SELECT {key} FROM crm.{entity_name}") == [
        tuple(valid.get(c) for c in entity.key)
    ]
    assert (report.total("rows_loaded"), report.total("rows_duplicate")) == (1, 1)

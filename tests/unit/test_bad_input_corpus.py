"""A corpus of difficult landing files: each ends in the quarantine with a reason naming the
column and the problem, or loaded with the right values; never a crash, never a silent drop.

Every case is one file with ids of its own, all ingested together by one real ingest into one
DuckDB warehouse (activities first, as the pipeline does). Expected counts and values were
worked out by hand from each file's text.
"""

from pathlib import Path

import pytest
from conftest import query
from support.corpus import ACT, CASES, INJECTION, M, csv_text, land_corpus

from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.raw_contract import LOAD_ORDER


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("corpus")
    landing, warehouse = tmp / "landing", tmp / "warehouse.duckdb"
    land_corpus(landing)
    reports = {e: ingest_entity(warehouse, landing, e, run_id="corpus") for e in LOAD_ORDER}
    return warehouse, reports


def _file_report(reports: dict, source_file: str):
    return next(f for r in reports.values() for f in r.files if f.source_file == source_file)


def test_the_corpus_has_at_least_25_kinds():
    assert len({case.kind for case in CASES}) == len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[case.kind for case in CASES])
def test_each_file_ends_quarantined_with_a_reason_or_loaded(corpus, case):
    warehouse, reports = corpus
    ((status, read, loaded, duplicate, quarantined),) = query(
        warehouse,
        "SELECT status, rows_read, rows_loaded, rows_duplicate, rows_quarantined FROM ingest.files "
        "WHERE source_file = ?",
        [case.file],
    )
    reasons = query(
        warehouse,
        "SELECT row_number, reason, raw_record IS NOT NULL FROM quarantine.rejected_rows "
        "WHERE source_file = ? ORDER BY row_number",
        [case.file],
    )
    if case.counts is None:
        assert (status, read, loaded, duplicate, quarantined) == ("quarantined", 0, 0, 0, 0)
        ((row_number, reason, _),) = reasons
        assert row_number is None and case.reasons[0][1] in reason
        # A reason names the file by its place in the landing folder, never by the machine's path.
        assert str(warehouse.parent) not in reason
    else:
        assert status == "loaded"
        assert (read, loaded, duplicate, quarantined) == case.counts
        assert read == loaded + duplicate + quarantined
        # Each rejected row keeps its raw record.
        assert reasons == [(number, reason, True) for number, reason in case.reasons]
    assert _file_report(reports, case.file).unknown_columns == case.unknown
    if case.sql:
        parameters = [INJECTION] if "?" in case.sql else None
        assert query(warehouse, case.sql, parameters) == case.rows


def test_every_row_is_accounted_for(corpus):
    """Per entity, what the files loaded is what the table holds, and every quarantined row or file
    is in the quarantine: nothing is dropped silently."""
    warehouse, reports = corpus
    for entity, report in reports.items():
        assert report.total("rows_read") == (
            report.total("rows_loaded")
            + report.total("rows_duplicate")
            + report.total("rows_quarantined")
        ), entity
        assert query(warehouse, f"SELECT COUNT(*) FROM crm.{entity}") == [
            (report.total("rows_loaded"),)
        ]
        (rejected,) = query(
            warehouse,
            "SELECT COUNT(*) FILTER (WHERE row_number IS NOT NULL), COUNT(*) FILTER (WHERE row_number IS NULL) "
            "FROM quarantine.rejected_rows WHERE entity = ?",
            [entity],
        )
        assert rejected == (report.total("rows_quarantined"), report.count("quarantined")), entity
    # The injected statements ran nowhere: every table is still there.
    assert {
        t
        for (t,) in query(
            warehouse, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'crm'"
        )
    } == set(LOAD_ORDER)


def test_a_party_whose_activity_arrives_later_or_goes(tmp_path):
    """Within a run the activities load first, so a party in any file finds an activity of the same
    night. A party that lands a night before its activity is quarantined until the activity lands;
    then its file loads again, so the warehouse holds what a fresh load of the folder gives. A
    party whose activity's file goes is quarantined again, as a fresh load would."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    parties = landing / "activity_parties"
    parties.mkdir(parents=True)
    (parties / "a.csv").write_text("activity_id,role,party_type,party_id\nlate1,to,contact,c1\n")
    ingest_entity(warehouse, landing, "activities", run_id="night-1")
    ingest_entity(warehouse, landing, "activity_parties", run_id="night-1")
    late = [("activity_parties/a.csv", "activity_id 'late1' names no activity")]
    assert query(warehouse, "SELECT source_file, reason FROM quarantine.rejected_rows") == late
    (landing / "activities").mkdir()
    (landing / "activities" / "z.csv").write_bytes(csv_text(ACT, f"late1,email,completed,s,,,{M},"))
    (parties / "b.csv").write_text("activity_id,role,party_type,party_id\nlate1,from,user,u1\n")
    for entity in ("activities", "activity_parties"):
        report = ingest_entity(warehouse, landing, entity, run_id="night-2")
    # a.csv is unchanged, yet loaded again: its party's activity is there now.
    assert [(f.source_file, f.status, f.rows_loaded) for f in report.files] == [
        ("activity_parties/a.csv", "loaded", 1),
        ("activity_parties/b.csv", "loaded", 1),
    ]
    parties_sql = "SELECT _source_file, activity_id, role FROM crm.activity_parties ORDER BY ALL"
    assert query(warehouse, parties_sql) == [
        ("activity_parties/a.csv", "late1", "to"),
        ("activity_parties/b.csv", "late1", "from"),
    ]
    assert query(warehouse, "SELECT COUNT(*) FROM quarantine.rejected_rows") == [(0,)]

    # The activity's file goes: both party files check their rows again.
    (landing / "activities" / "z.csv").unlink()
    for entity in ("activities", "activity_parties"):
        ingest_entity(warehouse, landing, entity, run_id="night-3")
    assert query(warehouse, parties_sql) == []
    assert query(
        warehouse, "SELECT source_file, reason FROM quarantine.rejected_rows ORDER BY ALL"
    ) == [*late, ("activity_parties/b.csv", "activity_id 'late1' names no activity")]
    # Their files account for them, though unchanged and not read again.
    assert query(
        warehouse,
        "SELECT source_file, status, rows_read, rows_loaded, rows_quarantined FROM ingest.files "
        "WHERE entity = 'activity_parties' ORDER BY ALL",
    ) == [
        ("activity_parties/a.csv", "loaded", 1, 0, 1),
        ("activity_parties/b.csv", "loaded", 1, 0, 1),
    ]

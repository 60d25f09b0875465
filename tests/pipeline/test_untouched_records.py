"""Bad files beside good ones change nothing for the records they do not touch.

The whole pipeline runs twice as of 2026-03-31: once on the hand-made landing folder alone (whose
marts tests/pipeline/test_end_to_end.py checks by hand), once on the same folder with every file of the
bad-input corpus (tests/unit/test_bad_input_corpus.py) landed beside it. Every mart's rows of the
clean run's records are the same in both runs, whole row for whole row; the hostile run's other
rows belong to records that a corpus file brought; and every file of it accounts for its rows.
"""

from pathlib import Path

import pytest
from conftest import query, write_hand_made_landing
from support.corpus import CASES, land_corpus
from support.runs import AS_OF, materialize_in_process

from relanalytics_pipeline.raw_contract import ENTITIES

MARTS = {
    "deal_tracking", "record_colleagues", "record_contacts", "record_summary",
    "relationship_activity_daily", "relationship_health", "relationship_health_history",
    "relationship_kpis", "similar_won_deals", "won_deal_benchmarks", "deal_warnings",
    "who_knows_whom", "account_connections",
}  # fmt: skip
# The record a mart row is about: (record type, record id).
RECORD_TYPES = {"opportunities": "opportunity", "leads": "lead", "accounts": "account",
                "contacts": "contact"}  # fmt: skip


def build_marts(folder: Path, landing: Path) -> Path:
    """Every asset of the code location, in process, as a night's run builds them."""
    materialize_in_process(folder, landing, AS_OF)
    return folder / "home" / "warehouse.duckdb"


def mart_rows(warehouse: Path, mart: str) -> dict[tuple[str, str], list[str]]:
    """A mart's rows (as text, sorted) by the record they are about."""
    columns = {c for (c,) in query(warehouse, "SELECT column_name FROM duckdb_columns() "
                                              "WHERE schema_name = 'marts' AND table_name = ?",
                                   [mart])}  # fmt: skip
    record = next(
        key
        for column, key in (
            ("record_id", "record_type, record_id"),
            ("opportunity_id", "'opportunity', opportunity_id"),
            ("contact_id", "'contact', contact_id"),
            ("account_id", "'account', account_id"),
        )
        if column in columns
    )
    rows: dict[tuple[str, str], list[str]] = {}
    for record_type, record_id, row in query(
        warehouse, f"SELECT {record}, m FROM marts.{mart} AS m ORDER BY ALL"
    ):
        rows.setdefault((record_type, record_id), []).append(repr(row))
    return rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The clean run's warehouse, the hostile run's warehouse and its landing folder."""
    clean = tmp_path_factory.mktemp("clean")
    hostile = tmp_path_factory.mktemp("hostile")
    landing = write_hand_made_landing(hostile / "landing")
    land_corpus(landing)
    return (
        build_marts(clean, write_hand_made_landing(clean / "landing")),
        build_marts(hostile, landing),
        landing,
    )


def test_the_marts_of_untouched_records_stay_as_a_clean_run_leaves_them(runs):
    clean, hostile, _ = runs
    # Tables and views: the similar-deals marts are views over the model's table.
    marts = {t for (t,) in query(clean, "SELECT table_name FROM information_schema.tables "
                                        "WHERE table_schema = 'marts'")}  # fmt: skip
    assert marts == MARTS
    corpus_files = [case.file for case in CASES]
    brought = {
        (record_type, key)
        for entity, record_type in RECORD_TYPES.items()
        for (key,) in query(
            hostile,
            f"SELECT DISTINCT {ENTITIES[entity].key[0]} FROM crm.{entity} "
            "WHERE _source_file IN (SELECT unnest(?))",
            [corpus_files],
        )
    }
    extra = {}
    for mart in sorted(MARTS):
        before, after = mart_rows(clean, mart), mart_rows(hostile, mart)
        assert before, mart
        changed = [record for record in before if after.get(record) != before[record]]
        # Only the changed records' rows, so that a failure shows what differs.
        assert {r: after.get(r) for r in changed} == {r: before[r] for r in changed}, mart
        extra[mart] = after.keys() - before.keys()
        assert extra[mart] <= brought, mart
    # The corpus's accounts that load (th4, hn6, pf2, tc1, tc2) are records of the marts that
    # list every current record; the corpus holds no other record that reaches a mart.
    corpus_accounts = {("account", a) for a in ("th4", "hn6", "pf2", "tc1", "tc2")}
    assert extra["relationship_kpis"] == extra["relationship_health"] == corpus_accounts


def test_every_file_of_the_hostile_run_accounts_for_its_rows(runs):
    _, hostile, landing = runs
    files = {
        source_file: counts
        for source_file, *counts in query(
            hostile,
            "SELECT source_file, status, rows_read, rows_loaded, rows_duplicate, "
            "rows_quarantined, rows_skipped FROM ingest.files",
        )
    }
    assert files.keys() == {
        p.relative_to(landing).as_posix() for p in landing.rglob("*") if p.is_file()
    }
    for source_file, (status, read, loaded, duplicate, quarantined, skipped) in files.items():
        assert read == loaded + duplicate + quarantined + skipped, source_file
        assert status in ("loaded", "quarantined"), source_file
    # Beside the hand-made files, each corpus file counts as it does alone: no row of it met a
    # record of the hand-made dataset.
    for case in CASES:
        status, *counts, skipped = files[case.file]
        if case.counts is None:
            assert (status, *counts, skipped) == ("quarantined", 0, 0, 0, 0, 0), case.file
        else:
            assert (status, *counts, skipped) == ("loaded", *case.counts, 0), case.file

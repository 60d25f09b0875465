"""The export mappings at unit level: quarantine with reasons, skipped rows, a missing table,
idempotent reloads (no Dagster; the round trip covers the pipeline)."""

import json
from pathlib import Path

from conftest import query

from relanalytics_pipeline.defs.ingest.exports import dataverse
from relanalytics_pipeline.defs.ingest.exports.mapping import ExportSettings, ingest_export

SETTINGS = ExportSettings({"dataverse": dataverse.DEFAULT_MAPS})
TABLES = {t.name: t for t in dataverse.TABLES}
EMAIL = {"activityid": "e1", "statecode": 1, "directioncode": True, "modifiedon": "2026-03-02T10:00:00Z",
         "senton": "2026-03-02T09:00:00Z"}  # fmt: skip


def page(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"@odata.context": "x", "value": records}), encoding="utf-8")


def load(landing: Path, warehouse: Path, name: str):
    return ingest_export(warehouse, landing, TABLES[name], dataverse.read_file, SETTINGS, "r1")


def test_unknown_codes_are_quarantined_and_masks_8_10_11_skipped(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    page(landing / "dataverse" / "email" / "p1.json", [EMAIL, {**EMAIL, "activityid": "e2",
                                                             "statecode": 7}])  # fmt: skip
    parties = [{"_activityid_value": "e1", "participationtypemask": mask, "addressused": "a@b.c"}
               for mask in (1, 8, 10, 11, 12)]  # fmt: skip
    page(landing / "dataverse" / "activityparty" / "p1.json", parties)
    (email,) = load(landing, warehouse, "email").files
    (party,) = load(landing, warehouse, "activityparty").files
    assert (email.rows_read, email.rows_loaded, email.rows_quarantined) == (2, 1, 1)
    assert (party.rows_read, party.rows_loaded, party.rows_skipped, party.rows_quarantined) == (
        5, 1, 3, 1)  # fmt: skip
    reasons = query(warehouse, "SELECT entity, source_file, row_number, reason "
                               "FROM quarantine.rejected_rows ORDER BY entity")  # fmt: skip
    assert reasons == [
        ("activities", "dataverse/email/p1.json", 2,
         "statecode '7' is not a known email statecode (0 open, 1 completed, 2 canceled)"),
        ("activity_parties", "dataverse/activityparty/p1.json", 5,
         "participationtypemask '12' is not a known participation type mask (1 from, 2 to, 3 cc, "
         "4 bcc, 5 required_attendee, 6 optional_attendee, 7 organizer, 9 owner)"),
    ]  # fmt: skip
    assert query(warehouse, "SELECT activity_id, direction, status, occurred_at::VARCHAR "
                            "FROM crm.activities") == [
        ("e1", "outgoing", "completed", "2026-03-02 09:00:00")]  # fmt: skip
    assert query(warehouse, "SELECT role, party_type, address FROM crm.activity_parties") == [
        ("from", "unresolved", "a@b.c")]  # fmt: skip


def test_reloading_changes_nothing_and_a_changed_page_is_reloaded(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    page(landing / "dataverse" / "email" / "p1.json", [EMAIL])
    load(landing, warehouse, "email")
    before = query(warehouse, "SELECT * FROM crm.activities")
    assert [f.status for f in load(landing, warehouse, "email").files] == ["unchanged"]
    assert query(warehouse, "SELECT * FROM crm.activities") == before
    # A newer version on the same page: the page is reloaded, replacing what it loaded before.
    page(landing / "dataverse" / "email" / "p1.json",
         [{**EMAIL, "subject": "new", "modifiedon": "2026-03-03T10:00:00Z"}])  # fmt: skip
    (report,) = load(landing, warehouse, "email").files
    assert (report.status, report.rows_loaded) == ("loaded", 1)
    assert query(warehouse, "SELECT subject FROM crm.activities") == [("new",)]


def test_a_missing_table_loads_nothing(tmp_path):
    report = load(tmp_path / "landing", tmp_path / "w.duckdb", "phonecall")
    assert report.files == [] and report.versions_in_table == 0


def test_an_export_reports_a_nameless_empty_column_but_not_its_vendor_fields(tmp_path):
    """Exports carry many fields no mapping takes, by design: those are not reported. A trailing
    comma on every line is left out and reported, as for a canonical file."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    folder = landing / "dataverse" / "email"
    folder.mkdir(parents=True)
    (folder / "link.csv").write_text(
        "activityid,statecode,directioncode,modifiedon,senton,versionnumber,\n"
        "e1,1,true,2026-03-02T10:00:00Z,2026-03-02T09:00:00Z,123,\n"
    )
    (report,) = load(landing, warehouse, "email").files
    assert (report.status, report.rows_read, report.rows_loaded) == ("loaded", 1, 1)
    assert report.unknown_columns == ["column 7 (no name and no values)"]

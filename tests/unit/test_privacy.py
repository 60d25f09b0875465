"""The suppression list at the ingest: an erased person's rows are neither loaded nor quarantined,
their parties load anonymised (defs/privacy/people.py), whatever case their address is in. The
exclusion rules file: checked, normalised, and never quoted (defs/privacy/rules.py)."""

import dagster as dg
import pytest
from conftest import query

from relanalytics_pipeline.cli.main import main
from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.defs.privacy.people import Suppression, hash_of, identifier
from relanalytics_pipeline.defs.privacy.rules import digest, read_rules
from relanalytics_pipeline.raw_contract import LOAD_ORDER
from relanalytics_pipeline.settings import SettingError, Settings

SALT = "a salt of the tests"


def test_an_erased_address_is_neither_loaded_nor_quarantined(landing, tmp_path):
    # A version of Dan's contact with an unreadable date: it would be quarantined.
    (landing / "contacts" / "corrections.csv").write_text(
        "contact_id,account_id,full_name,email,modified_at\n"
        "c2,a1,Dan Engineer,dan@globex.example,last tuesday\n"
    )
    warehouse = tmp_path / "warehouse.duckdb"
    dan = hash_of(SALT, identifier("email", " Dan@Globex.EXAMPLE "))
    suppression = Suppression(SALT, frozenset({dan}))
    files = {}
    for entity in LOAD_ORDER:
        report = ingest_entity(warehouse, landing, entity, "run-1", suppression=suppression)
        files |= {f.source_file: f for f in report.files}
    suppressed = {name: f.rows_suppressed for name, f in files.items() if f.rows_suppressed}
    # His contact row (Parquet) and his corrected version are left out; his parties (cc on e2,
    # organiser of m1) load as an anonymous outside party, so both activities keep their people.
    assert suppressed == {"contacts/contacts.parquet": 1, "contacts/corrections.csv": 1}
    anonymised = {name: f.rows_anonymised for name, f in files.items() if f.rows_anonymised}
    assert anonymised == {"activity_parties/2026-03-30.csv": 2}
    assert (files["contacts/corrections.csv"].rows_quarantined,
            files["contacts/corrections.csv"].rows_loaded) == (0, 0)  # fmt: skip
    for f in files.values():
        if f.status == "loaded":
            assert f.rows_read == (
                f.rows_loaded + f.rows_duplicate + f.rows_quarantined + f.rows_skipped
                + f.rows_suppressed
            ), f.source_file  # fmt: skip
    assert query(warehouse, "SELECT contact_id FROM crm.contacts ORDER BY 1") == [
        ("c1",), ("c3",), ("c4",)
    ]  # fmt: skip
    assert query(
        warehouse,
        "SELECT activity_id, role, party_type, party_id FROM crm.activity_parties "
        "WHERE address = 'erased@erased.invalid' OR party_id = 'c2' ORDER BY 1",
    ) == [("e2", "cc", "unresolved", None), ("m1", "organizer", "unresolved", None)]
    # Every party is there: 30 + 11 rows, but zz's (naming no activity).
    assert query(warehouse, "SELECT count(*) FROM crm.activity_parties") == [(40,)]
    (dan_in_quarantine,) = query(
        warehouse,
        "SELECT count(*) FROM quarantine.rejected_rows WHERE contains(raw_record, 'dan@')",
    )[0]
    assert dan_in_quarantine == 0


def test_without_anyone_erased_every_row_loads_as_before(landing, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    report = ingest_entity(warehouse, landing, "contacts", "run-1", suppression=None)
    assert [(f.rows_loaded, f.rows_suppressed) for f in report.files] == [(4, 0)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('addresses = ["ann@x.example", "secret-person"]', "addresses[2] is not an email address"),
        ('domains = ["private@mail.example"]', "domains[1] is not a domain"),
        ('opted_out = ["u1"]', "unknown key(s) opted_out: expected addresses, domains"),
        ("subject_patterns = '[private]'", "subject_patterns must be a list of non-empty strings"),
        ("addresses = [", "not a TOML file"),
    ],
)
def test_a_wrong_rules_file_is_named_without_quoting_its_values(tmp_path, text, message):
    rules = tmp_path / "privacy.toml"
    rules.write_text(text)
    environ = {"RELANALYTICS_HOME": str(tmp_path), "RELANALYTICS_PRIVACY_RULES": str(rules)}
    with pytest.raises(SettingError) as raised:
        Settings.from_env(environ)
    assert str(raised.value).startswith(f"RELANALYTICS_PRIVACY_RULES={str(rules)!r} is not valid")
    assert message in str(raised.value)
    assert "secret-person" not in str(raised.value) and "private@" not in str(raised.value)


def test_rules_are_normalised_and_their_digest_ignores_the_files_layout(tmp_path):
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text('domains = ["@Hooli.Example"]\nsubject_patterns = ["[Private]*50%"]\n')
    two.write_text(
        '# the same rules\nsubject_patterns = [ "[Private]*50%" ]\ndomains=["hooli.example"]'
    )
    rules = read_rules(one)
    assert [(r.label, r.value) for r in rules] == [
        ("domains[1]", "hooli.example"),
        ("subject_patterns[1]", "%[private]%50\\%%"),
    ]
    assert digest(rules) == digest(read_rules(two)) != digest([]) == ""


def test_print_hash_gives_the_salted_hash_the_job_takes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RELANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-03-31")
    assert main(["erase", "--email", " Dan@Globex.example", "--print-hash"]) == 0
    printed = capsys.readouterr().out.strip()
    salt_file = tmp_path / "home" / "privacy" / "salt"
    assert printed == hash_of(salt_file.read_text().strip(), "email:dan@globex.example")
    assert (salt_file.stat().st_mode & 0o777, salt_file.parent.stat().st_mode & 0o777) == (
        0o600,
        0o700,
    )
    # Nothing was erased: no suppression list, no warehouse.
    assert sorted(p.name for p in (tmp_path / "home").rglob("*")) == ["privacy", "salt"]


def test_the_erasure_job_refuses_anything_but_a_hash(tmp_path, monkeypatch):
    from relanalytics_pipeline.definitions import defs

    monkeypatch.setenv("RELANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-03-31")
    config = {"ops": {"erase_person_op": {"config": {"person_hash": "c2"}}}}
    job = defs.resolve_job_def("erase_person")  # with the code location's resources
    result = job.execute_in_process(run_config=config, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "64 hex digits" in failure.step_failure_data.error.message
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()


def test_run_config_cannot_set_the_rules_digest():
    from relanalytics_pipeline.defs.transform.assets import dbt_vars

    settings = Settings.from_env({"RELANALYTICS_AS_OF": "2026-03-31"})
    with pytest.raises(dg.Failure, match="privacy_rules: the as-of date"):
        dbt_vars(settings, {}, {"privacy_rules": ""})

"""Erasing a person of the hand-made dataset reaches every copy (docs/privacy.md).

Dan Engineer (contact c2, dan@globex.example) is cc'd on e2 (regarding o1, account a1) and
organised the meeting m1 (regarding a1) with Ann (u1) and Bob (u2). A corrected version of his
contact with an unreadable date lies in the quarantine. After `relanalytics erase --contact-id c2`
neither his name nor his address is anywhere under RELANALYTICS_HOME or in PostgreSQL, and a night
later, with the landing folder unchanged, still not.
"""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import query, write_hand_made_landing
from support.person_search import files_holding
from support.runs import AS_OF, environment, materialize_with_the_cli

from relanalytics_pipeline.cli.instance import ensure_dagster_home
from relanalytics_pipeline.settings import PROJECT_ROOT

NAME, ADDRESS = "Dan Engineer", "dan@globex.example"
NEEDLES = (NAME.lower(), ADDRESS)
# Dan's record goes; his parts in e2 and m1 stay as an anonymous outside party, so every other
# record's marts stay as they were, but for his row among the contacts of o1 and a1.
DAN = ("contact", "c2")
MARTS_BY_RECORD = (
    "relationship_kpis", "relationship_health", "relationship_health_history",
    "relationship_activity_daily", "record_contacts", "record_colleagues", "record_summary",
)  # fmt: skip


def search(home: Path, postgres_url: str) -> set[tuple[str, str]]:
    """(where, needle) for every file under `home` holding the name or the address: in its bytes
    (any case), and for DuckDB and Parquet files (whose strings may be compressed) in every value
    of every table; and for every PostgreSQL table holding one."""
    import psycopg

    hits = files_holding(home, NEEDLES)
    with psycopg.connect(postgres_url) as postgres:
        tables = postgres.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            for needle in NEEDLES:
                (found,) = postgres.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" AS t '
                    "WHERE position(%s in lower(t::text)) > 0",
                    [needle],
                ).fetchone()
                if found:
                    hits.add((f"postgres:{schema}.{table}", needle))
    return hits


def marts_of_others(warehouse: Path) -> dict[str, set[tuple]]:
    """The rows of every record-level mart, but those about Dan: his record's, and his rows among
    the contacts of other records."""
    marts = {}
    for mart in MARTS_BY_RECORD:
        rows = query(warehouse, f"SELECT * FROM marts.{mart}")
        columns = [c for (c,) in query(
            warehouse, "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'marts' "
            "AND table_name = ? ORDER BY column_index", [mart])]  # fmt: skip
        kind, record = columns.index("record_type"), columns.index("record_id")
        contact = columns.index("contact_id") if "contact_id" in columns else None
        marts[mart] = {
            r for r in rows
            if (r[kind], r[record]) != DAN and (contact is None or r[contact] != "c2")
        }  # fmt: skip
    return marts


def relanalytics(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("relanalytics")), *args]
    result = subprocess.run(command, env=environ, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def erasure(tmp_path_factory, postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as postgres:
        postgres.execute("DROP SCHEMA IF EXISTS marts CASCADE")
    tmp_path = tmp_path_factory.mktemp("erasure")
    landing = write_hand_made_landing(tmp_path / "landing")
    (landing / "contacts" / "corrections.csv").write_text(
        f"contact_id,account_id,full_name,email,modified_at\nc2,a1,{NAME},{ADDRESS},last tuesday\n"
    )
    environ = environment(tmp_path, landing) | {
        "DAGSTER_HOME": str(ensure_dagster_home(tmp_path / "home" / "dagster")),
        "RELANALYTICS_PUBLISH_POSTGRES_URL": postgres_url,
    }
    home, warehouse = tmp_path / "home", tmp_path / "home" / "warehouse.duckdb"
    materialize_with_the_cli(environ)
    before = {"hits": search(home, postgres_url), "marts": marts_of_others(warehouse),
              "colleagues": _colleagues_of_a1(warehouse), "dan's rows": _rows_of_dan(warehouse)}  # fmt: skip
    output = relanalytics(environ, "erase", "--contact-id", "c2").stdout
    after = {"hits": search(home, postgres_url), "marts": marts_of_others(warehouse),
             "colleagues": _colleagues_of_a1(warehouse), "dan's rows": _rows_of_dan(warehouse),
             "output": output}  # fmt: skip
    next_night = (dt.date.fromisoformat(AS_OF) + dt.timedelta(days=1)).isoformat()
    dagster = str(Path(sys.executable).with_name("dagster"))
    result = subprocess.run(
        [dagster, "asset", "materialize", "-m", "relanalytics_pipeline.definitions",
         "--select", "*", "--partition", next_night],
        env=environ, cwd=PROJECT_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    night = {"hits": search(home, postgres_url)}
    return home, before, after, night


def _rows_of_dan(warehouse: Path) -> int:
    """Rows of the record-level marts about c2, as the record or among a record's contacts."""
    total = 0
    for mart in MARTS_BY_RECORD:
        where = "record_type = 'contact' AND record_id = 'c2'"
        if mart == "record_contacts":
            where += " OR contact_id = 'c2'"
        total += query(warehouse, f"SELECT count(*) FROM marts.{mart} WHERE {where}")[0][0]
    return total


def _colleagues_of_a1(warehouse: Path) -> list[tuple]:
    return query(
        warehouse,
        "SELECT user_id, interactions, last_contacted_at FROM marts.record_colleagues "
        "WHERE record_type = 'account' AND record_id = 'a1' ORDER BY user_id",
    )


def test_the_search_finds_dan_everywhere_before_the_erasure(erasure):
    _, before, _, _ = erasure
    places = {where.split("/")[0] for where, _ in before["hits"]}
    # The warehouse (raw rows, quarantine, marts), the published file, Parquet and PostgreSQL.
    assert {"warehouse.duckdb", "published"} <= places, places
    assert any(w.startswith("postgres:marts.") for w, _ in before["hits"])
    assert any(w.startswith("published/parquet/versions/") for w, _ in before["hits"])


def test_after_the_erasure_and_a_night_later_dan_is_nowhere(erasure):
    _, _, after, night = erasure
    assert after["hits"] == set()
    assert night["hits"] == set()


def test_his_records_id_is_gone_from_the_warehouse_too(erasure):
    home, _, _, _ = erasure
    warehouse = home / "warehouse.duckdb"
    assert query(warehouse, "SELECT count(*) FROM ingest.removed_rows WHERE record_id = 'c2'") == [
        (0,)
    ]
    for table in ("crm.contacts", "ingest.outranked_contacts"):
        assert query(warehouse, f"SELECT count(*) FROM {table} WHERE contact_id = 'c2'") == [(0,)]
    assert query(warehouse, "SELECT count(*) FROM crm.activity_parties WHERE party_id = 'c2'") == [
        (0,)
    ]


def test_everyone_else_keeps_their_marts_and_the_meeting_attendees_their_time(erasure):
    _, before, after, _ = erasure
    assert after["marts"] == before["marts"]
    assert before["dan's rows"] > 0 and after["dan's rows"] == 0
    # Ann and Bob still met the customer at m1 (2026-03-10 14:00) for a1, Ann also wrote e1-e3.
    assert (
        before["colleagues"]
        == after["colleagues"]
        == [
            ("u1", 4, dt.datetime(2026, 3, 10, 14)),
            ("u2", 1, dt.datetime(2026, 3, 10, 14)),
        ]
    )


def test_the_log_keeps_the_hash_and_counts_and_the_owner_learns_which_files_hold_dan(erasure):
    home, _, after, _ = erasure
    (entry,) = [json.loads(line) for line in (home / "privacy" / "erasure-log.jsonl").open()]
    suppressed = (home / "privacy" / "suppressed").read_text().split()
    # c2 and its address: the two identifiers of Dan, both suppressed.
    assert entry["identifiers"] == 2 and len(suppressed) == 2 and entry["hash"] in suppressed
    # His contact record, his two parties (cc on e2, organiser of m1), his quarantined version.
    assert {t: n for t, n in entry["rows"].items() if n} == {
        "crm.contacts": 1,
        "crm.activity_parties (anonymised)": 2,
        "quarantine.rejected_rows": 1,
    }
    assert set(entry) == {"erased_at", "hash", "identifiers", "rows", "landing_files_still_holding"}
    assert ADDRESS not in json.dumps(entry) and NAME not in json.dumps(entry)
    listed = after["output"].split("purge them):\n")[1].split("\nErased")[0].split()
    assert listed == [
        "activity_parties/2026-03-30.csv",
        "contacts/contacts.parquet",
        "contacts/corrections.csv",
    ]

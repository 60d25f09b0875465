"""Publication for BI tools (defs/serve/publish/) on a small hand-made warehouse: the DuckDB file and
its storage version (opened by a real DuckDB 1.2), the Parquet versions behind their pointer, and
PostgreSQL on a real server these tests start, with BI sessions holding locks during the swap.

The concurrent reader during a real Dagster run is in test_quality_blocking.py, which already
runs the publication with the code location's executor.
"""

import datetime as dt
import json
import os
import struct
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from relanalytics_pipeline.defs.serve import publish
from relanalytics_pipeline.settings import PROJECT_ROOT

AS_OF = dt.date(2026, 3, 31)
OLD_DUCKDB = PROJECT_ROOT / ".venv" / "duckdb-1.2.2"
MARTS = ["deals", "people"]


def build_warehouse(path: Path, people: int) -> Path:
    """Two marts: `deals` with every kind of column BI tools meet (and awkward text), `people`
    with `people` rows, so that publications differ by their row counts."""
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE SCHEMA marts")
        connection.execute(
            """
            CREATE TABLE marts.deals AS SELECT * FROM (VALUES
                (1::BIGINT, 1234.50::DECIMAL(18, 2), DATE '2026-03-31',
                 TIMESTAMP '2026-03-31 23:59:59.123456', true, 'plain', ['a', 'b'], 1 / 3),
                (2, -0.01, DATE '1900-01-01', TIMESTAMP '2026-01-01 00:00:00', false,
                 'quote " comma , newline' || chr(10) || 'end', ['x "y"', NULL, ''], NULL),
                (3, NULL, NULL, NULL, NULL, '', [], 'inf'::DOUBLE),
                (4, 0, DATE '2099-12-31', TIMESTAMP '1970-01-01 00:00:01', true, NULL, NULL,
                 -2.5e-10)
            ) AS t(deal_id, amount, close_date, seen_at, won, note, tags, score)
            """
        )
        connection.execute("COMMENT ON TABLE marts.deals IS 'One row per deal.'")
        connection.execute(
            "COMMENT ON COLUMN marts.deals.amount IS 'Value in the deal''s currency.'"
        )
        connection.execute(
            "CREATE TABLE marts.people AS SELECT range::INTEGER AS person_id FROM range(?)",
            [people],
        )
    return path


def rows(connection, table: str) -> list[tuple]:
    return connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return build_warehouse(tmp_path / "warehouse.duckdb", people=3)


def test_the_duckdb_file_and_parquet_hold_the_marts_and_their_record(warehouse, tmp_path):
    folder = tmp_path / "published"
    first = publish.publish(warehouse, MARTS, folder, "run-one-0001", AS_OF)
    with duckdb.connect(str(warehouse), read_only=True) as source:
        expected = {mart: rows(source, f"marts.{mart}") for mart in MARTS}
    # The file opens as a BI tool opens it; its catalog is `marts`, as the warehouse's schema is.
    with duckdb.connect(str(folder / "marts.duckdb"), read_only=True) as published:
        assert {mart: rows(published, f"marts.{mart}") for mart in MARTS} == expected
        record = rows(published, "marts._publication")
        (comment,) = published.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'deals' "
            "AND column_name = 'amount'"
        ).fetchone()
    assert comment == "Value in the deal's currency."
    assert first.rows == {"deals": 4, "people": 3}
    assert record == [
        (first.version, "run-one-0001", AS_OF, first.published_at, "deals", 4, None),
        (first.version, "run-one-0001", AS_OF, first.published_at, "people", 3, None),
    ]
    current = folder / "parquet" / "current"
    assert os.readlink(current) == f"versions/{first.version}"
    with duckdb.connect() as reader:
        for mart in MARTS:
            assert rows(reader, f"read_parquet('{current}/{mart}/*.parquet')") == expected[mart]
    assert json.loads((current / "_publication.json").read_text()) == {
        "version": first.version,
        "run_id": "run-one-0001",
        "as_of_date": "2026-03-31",
        "published_at": first.published_at.isoformat(),
        "rows": {"deals": 4, "people": 3},
        "builds": {},
    }
    # Nothing of the work in progress stays behind.
    assert sorted(p.name for p in folder.iterdir()) == ["marts.duckdb", "parquet"]


def test_parquet_keeps_the_previous_version_for_readers_in_flight(warehouse, tmp_path):
    folder = tmp_path / "published"
    versions = [
        publish.publish(warehouse, MARTS, folder, f"run-{n}-000000", AS_OF).version
        for n in range(3)
    ]
    assert versions == sorted(versions) and len(set(versions)) == 3
    kept = sorted(p.name for p in (folder / "parquet" / "versions").iterdir())
    assert kept == versions[1:]
    assert os.readlink(folder / "parquet" / "current") == f"versions/{versions[2]}"


def test_the_file_is_in_storage_version_1_2_and_duckdb_1_2_opens_it(warehouse, tmp_path):
    folder = tmp_path / "published"
    publication = publish.publish(warehouse, MARTS, folder, "run-old-reader", AS_OF)
    # The header: checksum, "DUCK", then the storage version number; v1.2.0's is 65 (2.0's 69).
    header = (folder / "marts.duckdb").read_bytes()[:20]
    assert struct.unpack("<8x4sQ", header) == (b"DUCK", 65)
    assert OLD_DUCKDB.exists(), "scripts/setup.sh installs DuckDB 1.2.2 into .venv/duckdb-1.2.2"
    code = (
        "import duckdb, json, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(json.dumps([duckdb.__version__, "
        "c.execute('SELECT version, row_count FROM marts._publication ORDER BY mart').fetchall(), "
        "c.execute('SELECT * FROM marts.deals ORDER BY deal_id').fetchall()], default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(folder / "marts.duckdb")],
        env={**os.environ, "PYTHONPATH": str(OLD_DUCKDB)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    version, record, deals = json.loads(result.stdout)
    assert version == "1.2.2"
    assert record == [[publication.version, 4], [publication.version, 3]]
    with duckdb.connect(str(warehouse), read_only=True) as source:
        expected = source.execute("SELECT * FROM marts.deals ORDER BY deal_id").fetchall()
    assert deals == json.loads(json.dumps(expected, default=str))


def test_updating_the_file_drops_its_other_tables_whatever_their_names(tmp_path):
    """A night updates the published file in place of copying a mart whose build kept the rows
    it published, and drops the file's other tables: their names come from that file, so they
    are quoted, a quote, semicolon and backslash included."""
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("CREATE SCHEMA marts; CREATE SCHEMA intermediate")
        connection.execute(
            "CREATE TABLE marts.history AS SELECT 'deal' AS record_type, 'd1' AS record_id, "
            "DATE '2026-03-31' AS as_of_date, 1 AS score"
        )
        connection.execute(
            "CREATE TABLE intermediate.history_writes AS SELECT 'deal' AS record_type, "
            "'d1' AS record_id, DATE '2026-03-31' AS written_from, 'b1' AS build_id, "
            "CAST(NULL AS VARCHAR) AS previous_build_id"
        )
    folder, writes = tmp_path / "published", {"history": "intermediate.history_writes"}
    publish.publish(warehouse, ["history"], folder, "run-1", AS_OF, writes=writes)
    odd = 'notes"; DROP TABLE history; --\\'
    with duckdb.connect(str(folder / "marts.duckdb")) as connection:
        connection.execute(f'CREATE TABLE "{odd.replace(chr(34), chr(34) * 2)}" (x INTEGER)')
    # The next night's build kept b1's rows and wrote the new day.
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("INSERT INTO marts.history VALUES ('deal', 'd1', DATE '2026-04-01', 2)")
        connection.execute(
            "UPDATE intermediate.history_writes SET written_from = DATE '2026-04-01', "
            "build_id = 'b2', previous_build_id = 'b1'"
        )
    night = AS_OF + dt.timedelta(days=1)
    second = publish.publish(warehouse, ["history"], folder, "run-2", night, writes=writes)
    assert second.updated == {"history"}
    with duckdb.connect(str(folder / "marts.duckdb"), read_only=True) as published:
        tables = published.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        assert rows(published, "marts.history") == [
            ("deal", "d1", dt.date(2026, 3, 31), 1), ("deal", "d1", night, 2)
        ]  # fmt: skip
    assert sorted(tables) == [("_publication",), ("history",)]


def test_a_mart_that_is_a_view_is_published_as_a_table_with_its_comment(warehouse, tmp_path):
    """The similar-deals marts are views over the model's table in the warehouse."""
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("CREATE VIEW marts.big_deals AS SELECT deal_id FROM marts.deals "
                           "WHERE amount > 1000")  # fmt: skip
        connection.execute("COMMENT ON VIEW marts.big_deals IS 'Deals above 1,000.'")
    folder = tmp_path / "published"
    publication = publish.publish(warehouse, [*MARTS, "big_deals"], folder, "run-view-01", AS_OF)
    assert publication.rows["big_deals"] == 1
    with duckdb.connect(str(folder / "marts.duckdb"), read_only=True) as published:
        assert published.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_name = 'big_deals'"
        ).fetchall() == [("BASE TABLE",)]
        assert rows(published, "marts.big_deals") == [(1,)]
        assert published.execute(
            "SELECT comment FROM duckdb_tables() WHERE table_name = 'big_deals'"
        ).fetchall() == [("Deals above 1,000.",)]


def test_a_missing_mart_publishes_nothing(warehouse, tmp_path):
    folder = tmp_path / "published"
    before = publish.publish(warehouse, MARTS, folder, "run-good-0001", AS_OF)
    with pytest.raises(publish.PublicationError, match="nothing_here not in schema marts"):
        publish.publish(warehouse, [*MARTS, "nothing_here"], folder, "run-bad-0002", AS_OF)
    with duckdb.connect(str(folder / "marts.duckdb"), read_only=True) as published:
        assert {
            v for (v,) in published.execute("SELECT version FROM marts._publication").fetchall()
        } == {before.version}
    assert [p.name for p in (folder / "parquet" / "versions").iterdir()] == [before.version]
    assert sorted(p.name for p in folder.iterdir()) == ["marts.duckdb", "parquet"]


# --- PostgreSQL -----------------------------------------------------------------------------


def test_an_unreachable_postgres_publishes_nothing(warehouse, tmp_path):
    folder = tmp_path / "published"
    url = f"postgresql://nobody@/analytics?host={tmp_path}&port=5999"  # no server there
    with pytest.raises(publish.PublicationError, match="PostgreSQL: cannot connect .*No such file"):
        publish.publish(warehouse, MARTS, folder, "run-pg-down", AS_OF, publish.PostgresTarget(url))
    assert not (folder / "marts.duckdb").exists()
    assert list((folder / "parquet" / "versions").iterdir()) == []


@pytest.fixture
def postgres(postgres_url):
    """A fresh target schema for each test, and a connection to look at it."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS marts CASCADE")
        yield connection


def target(url: str, **timing) -> publish.PostgresTarget:
    return publish.PostgresTarget(url=url, **timing)


def published_version(postgres) -> set[str]:
    return {v for (v,) in postgres.execute("SELECT version FROM marts._publication").fetchall()}


def test_postgres_holds_the_marts_with_their_types(warehouse, tmp_path, postgres, postgres_url):
    publication = publish.publish(
        warehouse, MARTS, tmp_path / "p", "run-pg-000001", AS_OF, target(postgres_url)
    )
    with duckdb.connect(str(warehouse), read_only=True) as source:
        for mart in MARTS:
            assert rows(postgres, f"marts.{mart}") == rows(source, f"marts.{mart}"), mart
    columns = postgres.execute(
        "SELECT column_name, data_type, numeric_precision, numeric_scale "
        "FROM information_schema.columns WHERE table_schema = 'marts' AND table_name = 'deals' "
        "ORDER BY ordinal_position"
    ).fetchall()
    assert columns == [
        ("deal_id", "bigint", 64, 0), ("amount", "numeric", 18, 2), ("close_date", "date", None, None),
        ("seen_at", "timestamp without time zone", None, None), ("won", "boolean", None, None),
        ("note", "text", None, None), ("tags", "ARRAY", None, None),
        ("score", "double precision", 53, None),
    ]  # fmt: skip
    # Spot checks of what a CSV round trip could get wrong, written out by hand.
    (deal,) = postgres.execute("SELECT * FROM marts.deals WHERE deal_id = 2").fetchall()
    assert deal == (2, Decimal("-0.01"), dt.date(1900, 1, 1), dt.datetime(2026, 1, 1), False,
                    'quote " comma , newline\nend', ['x "y"', None, ""], None)  # fmt: skip
    assert postgres.execute(
        "SELECT note, tags, score FROM marts.deals WHERE deal_id IN (3, 4) ORDER BY deal_id"
    ).fetchall() == [("", [], float("inf")), (None, None, -2.5e-10)]
    assert postgres.execute(
        "SELECT obj_description('marts.deals'::regclass), col_description('marts.deals'::regclass, 2)"
    ).fetchone() == ("One row per deal.", "Value in the deal's currency.")
    assert published_version(postgres) == {publication.version}
    assert postgres.execute(
        "SELECT mart, row_count, as_of_date FROM marts._publication ORDER BY mart"
    ).fetchall() == [("deals", 4, AS_OF), ("people", 3, AS_OF)]


def test_a_bi_query_holding_a_lock_for_a_moment_only_delays_the_swap(
    warehouse, tmp_path, postgres, postgres_url, caplog
):
    import psycopg

    folder = tmp_path / "p"
    publish.publish(warehouse, MARTS, folder, "run-pg-before", AS_OF, target(postgres_url))
    build_warehouse(warehouse, people=5)
    with psycopg.connect(postgres_url, application_name="bi-tool") as bi:
        # An open transaction that read a mart holds ACCESS SHARE on it until it ends.
        assert bi.execute("SELECT count(*) FROM marts.people").fetchone() == (3,)
        release = threading.Timer(1.0, bi.commit)
        release.start()
        after = publish.publish(
            warehouse, MARTS, folder, "run-pg-after", AS_OF,
            target(postgres_url, lock_timeout_seconds=0.3, attempts=6, backoff_seconds=0.2),
        )  # fmt: skip
        release.join()
    # The first attempt (0.3 s) ran into the BI session's lock (1 s); a later one got through.
    locked_out = [r.getMessage() for r in caplog.records if "locked out" in r.getMessage()]
    assert locked_out and len(locked_out) < 6 and "lock timeout" in locked_out[0]
    assert published_version(postgres) == {after.version}
    assert postgres.execute("SELECT count(*) FROM marts.people").fetchone() == (5,)
    assert postgres.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'marts__staging'"
    ).fetchone() == (0,)


def test_a_bi_query_that_never_lets_go_fails_the_publication_clearly(
    warehouse, tmp_path, postgres, postgres_url
):
    import psycopg

    folder = tmp_path / "p"
    before = publish.publish(warehouse, MARTS, folder, "run-pg-before", AS_OF, target(postgres_url))
    build_warehouse(warehouse, people=5)
    with psycopg.connect(postgres_url, application_name="bi-tool") as bi:
        bi.execute("SELECT count(*) FROM marts.deals").fetchone()
        with pytest.raises(publish.PublicationError) as failure:
            publish.publish(
                warehouse, MARTS, folder, "run-pg-blocked", AS_OF,
                target(postgres_url, lock_timeout_seconds=0.2, attempts=3, backoff_seconds=0.1),
            )  # fmt: skip
        message = str(failure.value)
        assert "gave up swapping schema 'marts' after 3 attempts of 0.2 s" in message
        assert f"pid {bi.info.backend_pid} user postgres application bi-tool" in message
        # The BI session still reads the old publication, whole.
        assert bi.execute("SELECT count(*) FROM marts.people").fetchone() == (3,)
    assert published_version(postgres) == {before.version}
    assert postgres.execute("SELECT count(*) FROM marts.people").fetchone() == (3,)
    assert postgres.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'marts__staging'"
    ).fetchone() == (0,)
    # Nor did the file targets move: a publication lands everywhere or nowhere.
    with duckdb.connect(str(folder / "marts.duckdb"), read_only=True) as published:
        assert rows(published, "marts.people") == [(0,), (1,), (2,)]
    assert [p.name for p in (folder / "parquet" / "versions").iterdir()] == [before.version]

"""Shared fixtures: the hand-made landing folder, a warehouse reader, a clean environment."""

import json
import os
import shutil
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# pyspark (the spark extra) takes a process whose __main__ has neither a spec nor a file for a run
# of its own doctests and exits on importing pyspark.sql.connect, as great-expectations does: an
# xdist worker's __main__ is such a module. A file name tells pyspark it is not, for as long as
# great-expectations is imported; not longer, or multiprocessing's spawn would import that file.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "pytest-xdist worker"
    try:
        import great_expectations  # noqa: F401
    finally:
        del _main.__file__

# The throwaway PostgreSQL server (fixture postgres_url) of the tests that publish to one.
FIXTURES = Path(__file__).parent / "fixtures"
# Every Spark session of the tests, in this process or a child, reads the tests' Spark settings
# (fixtures/spark-conf/spark-defaults.conf: fewer shuffle partitions for their small data).
os.environ["SPARK_CONF_DIR"] = str(FIXTURES / "spark-conf")
# The fixtures of support modules that several test files share.
pytest_plugins = ["support.postgres", "support.two_nights"]

# The contacts of the hand-made dataset travel as Parquet (typed timestamps and booleans); c4 is
# deleted and must not reach any mart.
CONTACTS = pa.table(
    {
        "contact_id": ["c1", "c2", "c3", "c4"],
        "account_id": ["a1", "a1", "a2", "a2"],
        "full_name": ["Carol Buyer", "Dan Engineer", "Erin Chief", "Gone Person"],
        "email": ["carol@globex.example", "dan@globex.example", "erin@initech.example", None],
        "job_title": ["Buyer", "Engineer", "CTO", None],
        "modified_at": pa.array(
            [1735776000_000_000] * 4, type=pa.timestamp("us", tz="UTC")
        ),  # 2025-01-02
        "is_deleted": [False, False, False, True],
    }
)


def write_hand_made_landing(folder: Path) -> Path:
    """The hand-made dataset of tests/fixtures/landing plus its Parquet parts and a broken file."""
    shutil.copytree(FIXTURES / "landing", folder)
    (folder / "contacts").mkdir()
    pq.write_table(CONTACTS, folder / "contacts" / "contacts.parquet")
    # A Parquet file cut short in transit: the whole file is quarantined, the rest still loads.
    valid = folder / "contacts" / "contacts.parquet"
    (folder / "users" / "broken.parquet").write_bytes(valid.read_bytes()[:200])
    return folder


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return write_hand_made_landing(tmp_path / "landing")


def dbt_data_tests() -> set[str]:
    """The data tests the dbt manifest declares, read straight from target/manifest.json."""
    from relanalytics_pipeline.defs.transform.resources import dbt_project

    manifest = json.loads(dbt_project.manifest_path.read_text())
    return {node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "test"}


def query(warehouse: Path, sql: str, parameters: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, parameters).fetchall()


def project_free_environ(**settings: str) -> dict[str, str]:
    """This process's environment without the project's and Dagster's variables, plus `settings`:
    what a run in a test sees, whatever the developer's shell exports."""
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("RELANALYTICS_", "DAGSTER_"))
    }
    return environ | settings


def error_chain(error: BaseException | None) -> list[BaseException]:
    """The error and those a traceback (and Dagster's stored error) shows with it."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return chain


# The as-of day of the sensor tests: files in later day folders wait for their day to end.
SENSOR_AS_OF = "2026-03-31"


@pytest.fixture
def sensor_env(tmp_path, monkeypatch):
    """(landing folder, warehouse, Dagster instance) for ticks of the landing sensor as of
    SENSOR_AS_OF."""
    import dagster as dg

    from relanalytics_pipeline.settings import Settings

    landing = tmp_path / "landing"
    monkeypatch.setenv("RELANALYTICS_LANDING_DIR", str(landing))
    monkeypatch.setenv("RELANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELANALYTICS_AS_OF", SENSOR_AS_OF)
    with dg.instance_for_test() as instance:
        yield landing, Settings.from_env().warehouse, instance


def sensor_tick(instance):
    """One evaluation of the landing sensor, with no cursor: a sensor's cursor is lost with a new
    Dagster instance (every plain `dagster dev`)."""
    import dagster as dg

    from relanalytics_pipeline.definitions import defs

    sensor = defs.get_sensor_def("landing_files")
    with dg.build_sensor_context(instance, repository_def=defs.get_repository_def()) as context:
        return sensor.evaluate_tick(context)

"""Published files hold people's names and addresses: their permissions are a setting, and the
publication URL's password never shows, not in errors nor in what Dagster stores of a run."""

import datetime as dt
import os
import stat
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from conftest import error_chain

from relanalytics_pipeline.defs.run_settings import RunSettings
from relanalytics_pipeline.defs.serve import publish

SECRET = "s3cr3t-Pa55"
AS_OF = dt.date(2017, 12, 31)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def build_warehouse(path: Path, marts: list[str]) -> Path:
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE SCHEMA marts")
        for mart in marts:
            connection.execute(f"CREATE TABLE marts.{mart} AS SELECT 'Carol Buyer' AS full_name")
    return path


@pytest.fixture
def open_umask():
    """The usual umask (022): without the setting, files would be readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.parametrize(("file_mode", "folder_mode"), [(None, 0o750), (0o600, 0o700)])
def test_published_files_get_the_mode(tmp_path, open_umask, file_mode, folder_mode):
    warehouse = build_warehouse(tmp_path / "warehouse.duckdb", ["people"])
    folder = tmp_path / "published"
    extra = {} if file_mode is None else {"file_mode": file_mode}
    publication = publish.publish(warehouse, ["people"], folder, "run-1", AS_OF, **extra)
    expected = file_mode or 0o640  # readable by the owner and its group only
    version = folder / "parquet" / "versions" / publication.version
    files = [folder / "marts.duckdb", version / "people" / "data.parquet",
             version / "_publication.json"]  # fmt: skip
    assert {path: mode(path) for path in files} == dict.fromkeys(files, expected)
    folders = [folder / "parquet", folder / "parquet" / "versions", version, version / "people"]
    assert {path: mode(path) for path in folders} == dict.fromkeys(folders, folder_mode)


@pytest.mark.parametrize(
    "url",
    [f"postgresql://u:{SECRET}@[db/x", f"postgresql:/u:{SECRET}@db/x", f"host=db password='{SECRET}"],
)  # fmt: skip
def test_publish_masks_the_password_of_a_url_libpq_refuses(tmp_path, url):
    warehouse = build_warehouse(tmp_path / "warehouse.duckdb", ["people"])
    with pytest.raises(publish.PublicationError) as raised:
        publish.publish(warehouse, ["people"], tmp_path / "p", "run-1", AS_OF,
                        publish.PostgresTarget(url))  # fmt: skip
    assert str(raised.value).startswith("PostgreSQL: cannot connect (")
    assert "Nothing was published" in str(raised.value)
    assert error_chain(raised.value) == [raised.value]
    assert SECRET not in str(raised.value)
    assert SECRET not in repr(publish.PostgresTarget(url))


def test_the_secret_is_nowhere_in_a_runs_records(tmp_path, monkeypatch):
    """The publication asset run by Dagster, in process, on a warehouse holding every mart, with
    a URL libpq cannot parse (its error echoes the URL): the run fails with the URL masked, and
    the secret is in no record of the run."""
    from relanalytics_pipeline.defs.serve.assets import MART_KEYS, published_marts

    warehouse = build_warehouse(tmp_path / "warehouse.duckdb", [k.path[-1] for k in MART_KEYS])
    monkeypatch.setenv("RELANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELANALYTICS_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("RELANALYTICS_AS_OF", AS_OF.isoformat())
    monkeypatch.setenv("RELANALYTICS_PUBLISH_POSTGRES_URL", f"postgresql://bi:{SECRET}@[db/x")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [published_marts], resources={"settings": RunSettings()}, instance=instance,
            raise_on_error=False,
        )  # fmt: skip
        assert not result.success
        # The run's settings are checked as it starts: it fails there, before any step.
        (failure,) = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
        assert failure.event_specific_data.error.message.startswith(
            "dagster._core.definitions.events.Failure: RELANALYTICS_PUBLISH_POSTGRES_URL="
            "'postgresql://bi:***@[db/x' is not valid: "
        )
        records = [dg.serialize_value(e) for e in instance.all_logs(result.run_id)]
        run = dg.serialize_value(instance.get_run_by_id(result.run_id))
    assert records and all(SECRET not in record for record in [*records, run])
    assert not (tmp_path / "home" / "published" / "marts.duckdb").exists()

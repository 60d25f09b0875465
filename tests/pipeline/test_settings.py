import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from conftest import error_chain

from relanalytics_pipeline.cli.main import main
from relanalytics_pipeline.conninfo import mask_password, redact
from relanalytics_pipeline.defs.partitions import nightly_partitions
from relanalytics_pipeline.defs.run_settings import RunSettings, settings_for_run
from relanalytics_pipeline.permissions import folder_mode
from relanalytics_pipeline.settings import (
    PROJECT_ROOT,
    SettingError,
    Settings,
    default_as_of,
    environ_overrides,
    parse_domains,
)


def test_nothing_set_runs_under_the_project_data_folder():
    settings = Settings.from_env({})
    assert settings.home == PROJECT_ROOT / "data"
    assert settings.warehouse == PROJECT_ROOT / "data" / "warehouse.duckdb"
    assert settings.landing_dir is None
    assert settings.effective_landing_dir == PROJECT_ROOT / "data" / "sample-landing"
    assert settings.org_domains == ()


def test_as_of_defaults_to_yesterday_in_utc():
    # 00:30 in UTC+2 is still the previous day in UTC: yesterday is two days before local date.
    late = dt.datetime(2026, 3, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert default_as_of(late) == dt.date(2026, 2, 27)
    assert default_as_of(dt.datetime(2026, 3, 1, 23, 59, tzinfo=dt.UTC)) == dt.date(2026, 2, 28)


def test_variables_are_read_and_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env(
        {
            "RELANALYTICS_HOME": "home",
            "RELANALYTICS_LANDING_DIR": "in",
            "RELANALYTICS_AS_OF": "2026-03-31",
            "RELANALYTICS_ORG_DOMAINS": " Acme.example, @acme-help.example,,acme.example",
        }
    )
    assert settings.home == tmp_path / "home"
    assert settings.warehouse == tmp_path / "home" / "warehouse.duckdb"
    assert settings.landing_dir == tmp_path / "in"
    assert settings.as_of == dt.date(2026, 3, 31)
    assert settings.org_domains == ("acme-help.example", "acme.example")
    assert settings.as_environ()["RELANALYTICS_WAREHOUSE"] == str(
        tmp_path / "home/warehouse.duckdb"
    )


def test_publication_goes_under_home_unless_set(tmp_path):
    home = {"RELANALYTICS_HOME": str(tmp_path)}
    assert Settings.from_env(home).effective_publish_dir == tmp_path / "published"
    assert Settings.from_env(home).publish_postgres_url is None
    settings = Settings.from_env(
        home
        | {
            "RELANALYTICS_PUBLISH_DIR": str(tmp_path / "bi"),
            "RELANALYTICS_PUBLISH_POSTGRES_URL": "postgresql://bi@db/analytics",
        }
    )
    assert settings.effective_publish_dir == tmp_path / "bi"
    assert settings.publish_postgres_url == "postgresql://bi@db/analytics"


def test_the_engine_and_local_spark_are_read_and_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = Settings.from_env({"RELANALYTICS_HOME": "home"})
    assert (default.engine, default.spark_driver_memory) == ("duckdb", "4g")
    assert default.effective_spark_warehouse == tmp_path / "home" / "spark-warehouse"
    assert default.spark_metastore == tmp_path / "home" / "spark-metastore"
    assert default.spark_scratch == tmp_path / "home" / "spark-tmp"
    settings = Settings.from_env(
        {
            "RELANALYTICS_HOME": "home",
            "RELANALYTICS_ENGINE": " Spark",
            "RELANALYTICS_SPARK_WAREHOUSE": "tables",
            "RELANALYTICS_SPARK_DRIVER_MEMORY": "16G",
        }
    )
    assert (settings.engine, settings.spark_driver_memory) == ("spark", "16g")
    # dbt's profile reads them as absolute values.
    environ = settings.as_environ()
    assert environ["RELANALYTICS_ENGINE"] == "spark"
    assert environ["RELANALYTICS_SPARK_WAREHOUSE"] == str(tmp_path / "tables")
    assert environ["RELANALYTICS_SPARK_DRIVER_MEMORY"] == "16g"
    with pytest.raises(
        SettingError, match=r"RELANALYTICS_ENGINE='postgres' .*give duckdb or spark"
    ):
        Settings.from_env({"RELANALYTICS_ENGINE": "postgres"})
    for wrong in ("4", "4 GB", "0g", "-1g"):
        with pytest.raises(SettingError, match="RELANALYTICS_SPARK_DRIVER_MEMORY=.*4g or 512m"):
            Settings.from_env({"RELANALYTICS_SPARK_DRIVER_MEMORY": wrong})
    (tmp_path / "file").write_text("")
    with pytest.raises(SettingError, match="RELANALYTICS_SPARK_WAREHOUSE=.*is a file"):
        Settings.from_env({"RELANALYTICS_SPARK_WAREHOUSE": str(tmp_path / "file")})


def test_dbt_builds_on_the_profile_target_named_after_the_engine():
    from relanalytics_pipeline.defs.transform.assets import dbt_build_args

    for engine in ("duckdb", "spark"):
        settings = Settings.from_env({"RELANALYTICS_ENGINE": engine})
        assert dbt_build_args(settings, {"as_of_date": "2026-03-31"}) == [
            "build", "--target", engine, "--vars", '{"as_of_date": "2026-03-31"}',
            "--exclude-resource-type", "unit_test",
        ]  # fmt: skip


def test_the_freshness_age_is_read_and_checked():
    assert Settings.from_env({}).max_activity_age_hours == 72.0
    assert (
        Settings.from_env({"RELANALYTICS_MAX_ACTIVITY_AGE_HOURS": "36.5"}).max_activity_age_hours
        == 36.5
    )
    for wrong in ("0", "-3", "two days", "nan"):
        with pytest.raises(ValueError, match="give a positive number of hours"):
            Settings.from_env({"RELANALYTICS_MAX_ACTIVITY_AGE_HOURS": wrong})


def test_a_malformed_as_of_is_a_clear_error():
    with pytest.raises(
        ValueError, match="RELANALYTICS_AS_OF='31/03/2026' is not valid: give a date"
    ):
        Settings.from_env({"RELANALYTICS_AS_OF": "31/03/2026"})


def test_the_run_partition_wins_over_the_environment():
    environ = {"RELANALYTICS_AS_OF": "2026-03-31"}
    assert settings_for_run({}, environ).as_of == dt.date(2026, 3, 31)
    partition = {"dagster/partition": "2026-01-15"}
    assert settings_for_run(partition, environ).as_of == dt.date(2026, 1, 15)


def test_environ_overrides_restore_what_was_there(monkeypatch):
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-01-01")
    monkeypatch.delenv("RELANALYTICS_HOME", raising=False)
    with environ_overrides({"RELANALYTICS_AS_OF": "2026-02-02", "RELANALYTICS_HOME": "/x"}):
        assert os.environ["RELANALYTICS_AS_OF"] == "2026-02-02"
        assert Path(os.environ["RELANALYTICS_HOME"]) == Path("/x")
    assert os.environ["RELANALYTICS_AS_OF"] == "2026-01-01"
    assert "RELANALYTICS_HOME" not in os.environ


def test_domains_are_normalised():
    assert parse_domains("") == ()
    assert parse_domains("B.example,a.example, @B.EXAMPLE") == ("a.example", "b.example")


# --- every setting checked at the start, in one line -------------------------------------------

WRONG = [
    # variable, value, what the line must say it accepts
    ("RELANALYTICS_AS_OF", "2026-13-45", "give a date as YYYY-MM-DD"),
    ("RELANALYTICS_FIRST_DAY", "2016-02-30", "give a date as YYYY-MM-DD"),
    ("RELANALYTICS_DUCKDB_MEMORY_LIMIT", "abc", "give a size such as 8GB or 4GiB"),
    ("RELANALYTICS_DUCKDB_MEMORY_LIMIT", "150%", "a share of the RAM such as 50%"),
    ("RELANALYTICS_MAX_ACTIVITY_AGE_HOURS", "two days", "a positive number of hours"),
    ("RELANALYTICS_PUBLISH_FILE_MODE", "0400", "let the owner read and write"),
    ("RELANALYTICS_PUBLISH_FILE_MODE", "rw-r-----", "let the owner read and write"),
    ("RELANALYTICS_PUBLISH_POSTGRES_URL", "postgresql://bi@db:notaport/x", "port must be a number"),
    ("RELANALYTICS_PUBLISH_POSTGRES_URL", "postgresql://bi@[db/x", "give a libpq URL"),
    ("RELANALYTICS_DATAVERSE_URL", "contoso.crm.dynamics.com", "give the address as https://"),
    ("RELANALYTICS_SALESFORCE_URL", "https://", "give the address as https://"),
    ("RELANALYTICS_EXPORT_MAPS", "/nowhere/maps.json", "name an existing JSON file"),
]


@pytest.mark.parametrize(("name", "value", "accepted"), WRONG)
def test_a_wrong_setting_is_one_line_naming_it_its_value_and_what_is_accepted(
    name, value, accepted
):
    with pytest.raises(SettingError) as raised:
        Settings.from_env({name: value})
    message = str(raised.value)
    assert message.startswith(f"{name}={value!r} is not valid: ")
    assert accepted in message and "\n" not in message
    assert error_chain(raised.value) == [raised.value]


def test_accepted_memory_limits_and_modes():
    for limit in ("8GB", "4GiB", "50%", "1.5GB"):
        assert Settings.from_env({"RELANALYTICS_DUCKDB_MEMORY_LIMIT": limit}).memory_limit == limit
    modes = {"0640": 0o640, "600": 0o600, "0o660": 0o660}
    for text, mode in modes.items():
        settings = Settings.from_env({"RELANALYTICS_PUBLISH_FILE_MODE": text})
        assert settings.publish_file_mode == mode
    assert Settings.from_env({}).publish_file_mode == 0o640
    assert folder_mode(0o640) == 0o750 and folder_mode(0o600) == 0o700


def test_paths_under_a_file_are_refused(tmp_path):
    (tmp_path / "a-file").write_text("")
    for name, value in [
        ("RELANALYTICS_WAREHOUSE", tmp_path / "a-file" / "w.duckdb"),
        ("RELANALYTICS_HOME", tmp_path / "a-file" / "home"),
        ("RELANALYTICS_PUBLISH_DIR", tmp_path / "a-file"),
    ]:
        with pytest.raises(SettingError) as raised:
            Settings.from_env({name: str(value)})
        assert str(raised.value) == (
            f"{name}={str(value)!r} is not valid: {tmp_path / 'a-file'} is a file, where a "
            "folder must be"
        )
    with pytest.raises(SettingError, match="it is a folder: name a file"):
        Settings.from_env({"RELANALYTICS_WAREHOUSE": str(tmp_path)})


def test_a_run_of_partitions_never_reads_the_as_of():
    settings = Settings.from_env({"RELANALYTICS_AS_OF": "2026-13-45"}, read_as_of=False)
    assert settings.as_of is None
    partition = {"dagster/partition": "2017-12-31"}
    assert settings_for_run(partition, {"RELANALYTICS_AS_OF": "2026-13-45"}).as_of == dt.date(
        2017, 12, 31
    )


def test_the_first_day_is_read_and_an_earlier_as_of_says_what_to_change():
    assert Settings.from_env({}).first_day == dt.date(2020, 1, 1)
    settings = Settings.from_env({"RELANALYTICS_AS_OF": "2017-12-31"})
    with pytest.raises(SettingError) as raised:
        settings.check_as_of()
    assert str(raised.value) == (
        "RELANALYTICS_AS_OF=2017-12-31 is before the first partition day 2020-01-01: set "
        "RELANALYTICS_FIRST_DAY to the first day of your history (or earlier)"
    )
    earlier = {"RELANALYTICS_AS_OF": "2017-12-31", "RELANALYTICS_FIRST_DAY": "2016-01-01"}
    assert Settings.from_env(earlier).check_as_of() == dt.date(2017, 12, 31)


def test_the_partitions_start_on_the_first_day_setting():
    """The one setting read when the definitions load (defs/partitions.py)."""
    code = (
        "from relanalytics_pipeline.defs.partitions import nightly_partitions as p; "
        "print(p.get_first_partition_key())"
    )
    environ = {k: v for k, v in os.environ.items() if k != "RELANALYTICS_FIRST_DAY"}
    for first_day, expected in [(None, "2020-01-01"), ("2016-01-01", "2016-01-01")]:
        env = environ | ({"RELANALYTICS_FIRST_DAY": first_day} if first_day else {})
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == expected
    wrong = subprocess.run(
        [sys.executable, "-c", code],
        env=environ | {"RELANALYTICS_FIRST_DAY": "2016"},
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0
    assert wrong.stderr.strip().splitlines()[-1] == (
        "relanalytics_pipeline.settings.SettingError: RELANALYTICS_FIRST_DAY='2016' is not "
        "valid: give a date as YYYY-MM-DD, or unset it"
    )


def test_commands_print_the_one_line_and_do_no_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RELANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELANALYTICS_DUCKDB_MEMORY_LIMIT", "abc")
    assert main(["data-docs"]) == 2
    assert capsys.readouterr().err.startswith(
        "relanalytics data-docs: RELANALYTICS_DUCKDB_MEMORY_LIMIT='abc' is not valid: "
    )
    monkeypatch.delenv("RELANALYTICS_DUCKDB_MEMORY_LIMIT")
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2017-12-31")
    assert main(["demo"]) == 2
    assert "set RELANALYTICS_FIRST_DAY to the first day of your history" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()


# --- the PostgreSQL URL's password never shows ---------------------------------------------------

SECRET = "s3cr3t-Pa55"
MALFORMED_URLS = [
    f"postgresql://u:{SECRET}@host:notaport/db",
    f"postgresql://u:{SECRET}@[host/db",
    f"postgresql:/u:{SECRET}@host/db",
    f"postgresql://u:{SECRET}@ho st/db",
    f"postgresql://u@host/db?password={SECRET}&port=x",
    f"postgresql://u@host/db?password={SECRET}&bogus=1",
    f"host=h password={SECRET} bogus=1",
    f"host=h password='{SECRET}",
    f"host=h password={SECRET} port=99999",
]


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_a_malformed_postgres_url_is_shown_masked(url):
    with pytest.raises(SettingError) as raised:
        Settings.from_env({"RELANALYTICS_PUBLISH_POSTGRES_URL": url})
    assert "***" in str(raised.value)
    for error in error_chain(raised.value):
        assert SECRET not in str(error) and SECRET not in repr(error.args)
    assert len(error_chain(raised.value)) == 1


def test_the_url_is_out_of_the_settings_repr():
    url = f"postgresql://u:{SECRET}@db/analytics"
    assert SECRET not in repr(Settings.from_env({"RELANALYTICS_PUBLISH_POSTGRES_URL": url}))


@pytest.mark.parametrize(
    ("conninfo", "masked"),
    [
        ("postgresql://u:p%40ss@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("postgres://u:a@b@db/x", "postgres://u:***@db/x"),
        ("postgresql://u@db/x?sslmode=require&password=pw", "postgresql://u@db/x?sslmode=require&password=***"),
        ("host=db password='a b' user=u", "host=db password=*** user=u"),
        ("host=db user=u password = pw", "host=db user=u password = ***"),
        ("postgresql://nobody@/analytics?host=/tmp&port=5999", "postgresql://nobody@/analytics?host=/tmp&port=5999"),
    ],
)  # fmt: skip
def test_mask_password(conninfo, masked):
    assert mask_password(conninfo) == masked


def test_redact_removes_the_password_as_written_and_decoded():
    url = "postgresql://u:p%40ss@db/x"
    text = f'bad "{url}", password p@ss or p%40ss'
    assert redact(text, url) == 'bad "postgresql://u:***@db/x", password *** or ***'


def test_a_run_with_a_wrong_setting_fails_once_before_any_step_with_the_line(tmp_path, monkeypatch):
    """A partitioned run: RELANALYTICS_AS_OF is not even read, the memory limit is checked as the
    run starts (dbt would only notice it after the ingest, without naming it): the settings
    resource fails, once, with the line and nothing chained; no step starts, nothing is written."""
    from relanalytics_pipeline.definitions import defs

    monkeypatch.setenv("RELANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-13-45")
    monkeypatch.setenv("RELANALYTICS_DUCKDB_MEMORY_LIMIT", "abc")
    result = dg.materialize(
        defs.assets, resources=defs.resources, selection="*", partition_key="2026-11-26",
        raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    assert not [event for event in result.all_events if event.is_step_start]
    (failure,) = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    error = failure.event_specific_data.error
    assert error.message == (
        "dagster._core.definitions.events.Failure: RELANALYTICS_DUCKDB_MEMORY_LIMIT='abc' is not "
        "valid: give a size such as 8GB or 4GiB, or a share of the RAM such as 50% (DuckDB: "
        "Parser Error: Memory must have a number (e.g. 1GB))\n"
    )
    assert error.cause is None and error.context is None
    assert not (tmp_path / "home").exists()


# --- the settings reach the assets as the run's resource `settings` -----------------------------


def test_every_asset_and_check_gets_the_settings_resource():
    from relanalytics_pipeline.definitions import defs
    from relanalytics_pipeline.defs.learn.resources import MODEL_IO_MANAGER

    for definition in [*defs.assets, *defs.asset_checks]:
        assert "settings" in definition.required_resource_keys, definition.op.name
    # One resource, shared by key with the model store that nests it: set up once per run.
    settings = defs.resources["settings"]
    assert settings.resource_cls is RunSettings
    assert defs.resources[MODEL_IO_MANAGER].settings is settings


URL = f"postgresql://bi:{SECRET}@db/analytics"


@dg.asset(partitions_def=nightly_partitions)
def sees_the_settings(settings: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"as_of": settings.as_of.isoformat(), "url": settings.publish_postgres_url == URL}
    )


@dg.asset
def sees_the_settings_unpartitioned(settings: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"as_of": settings.as_of.isoformat()})


def _seen(result: dg.ExecuteInProcessResult, node: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(node)
    return {name: value.value for name, value in materialization.metadata.items()}


def test_a_run_gets_its_settings_and_day_from_the_resource_and_records_no_value(monkeypatch):
    """The asset gets the plain settings, read as the run starts, with the run's day: its
    partition's (RELANALYTICS_AS_OF unread), else RELANALYTICS_AS_OF. The values never enter
    Dagster's config or records: the PostgreSQL URL's password is in none of them."""
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-13-45")
    monkeypatch.setenv("RELANALYTICS_PUBLISH_POSTGRES_URL", URL)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [sees_the_settings], resources={"settings": RunSettings()}, instance=instance,
            partition_key="2026-01-15",
        )  # fmt: skip
        assert _seen(result, "sees_the_settings") == {"as_of": "2026-01-15", "url": True}
        records = [dg.serialize_value(e) for e in instance.all_logs(result.run_id)]
        records.append(dg.serialize_value(instance.get_run_by_id(result.run_id)))
    assert all(SECRET not in record for record in records)
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-03-31")
    result = dg.materialize(
        [sees_the_settings_unpartitioned], resources={"settings": RunSettings()}
    )
    assert _seen(result, "sees_the_settings_unpartitioned") == {"as_of": "2026-03-31"}

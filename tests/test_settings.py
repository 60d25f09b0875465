import datetime as dt
from pathlib import Path

import pytest

from relanalytics_pipeline.defs.partitions import as_of_for_run
from relanalytics_pipeline.settings import (
    PROJECT_ROOT,
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


def test_the_freshness_age_is_read_and_checked():
    assert Settings.from_env({}).max_activity_age_hours == 72.0
    assert (
        Settings.from_env({"RELANALYTICS_MAX_ACTIVITY_AGE_HOURS": "36.5"}).max_activity_age_hours
        == 36.5
    )
    for wrong in ("0", "-3", "two days", "nan"):
        with pytest.raises(ValueError, match="must be a positive number of hours"):
            Settings.from_env({"RELANALYTICS_MAX_ACTIVITY_AGE_HOURS": wrong})


def test_a_malformed_as_of_is_a_clear_error():
    with pytest.raises(ValueError, match="RELANALYTICS_AS_OF must be a date as YYYY-MM-DD"):
        Settings.from_env({"RELANALYTICS_AS_OF": "31/03/2026"})


def test_the_run_partition_wins_over_the_environment():
    settings = Settings.from_env({"RELANALYTICS_AS_OF": "2026-03-31"})
    assert as_of_for_run({}, settings) == dt.date(2026, 3, 31)
    assert as_of_for_run({"dagster/partition": "2026-01-15"}, settings) == dt.date(2026, 1, 15)


def test_environ_overrides_restore_what_was_there(monkeypatch):
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-01-01")
    monkeypatch.delenv("RELANALYTICS_HOME", raising=False)
    import os

    with environ_overrides({"RELANALYTICS_AS_OF": "2026-02-02", "RELANALYTICS_HOME": "/x"}):
        assert os.environ["RELANALYTICS_AS_OF"] == "2026-02-02"
        assert Path(os.environ["RELANALYTICS_HOME"]) == Path("/x")
    assert os.environ["RELANALYTICS_AS_OF"] == "2026-01-01"
    assert "RELANALYTICS_HOME" not in os.environ


def test_domains_are_normalised():
    assert parse_domains("") == ()
    assert parse_domains("B.example,a.example, @B.EXAMPLE") == ("a.example", "b.example")

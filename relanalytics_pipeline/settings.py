"""Run-time configuration, read from environment variables when a run or command needs it.

Nothing here runs at import time: every caller asks for `Settings.from_env()` inside the function
that needs it, so a changed variable takes effect on the next run without reloading code.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

ENV_HOME = "RELANALYTICS_HOME"
ENV_LANDING_DIR = "RELANALYTICS_LANDING_DIR"
ENV_WAREHOUSE = "RELANALYTICS_WAREHOUSE"
ENV_AS_OF = "RELANALYTICS_AS_OF"
ENV_ORG_DOMAINS = "RELANALYTICS_ORG_DOMAINS"
ENV_MEMORY_LIMIT = "RELANALYTICS_DUCKDB_MEMORY_LIMIT"
ENV_MAX_ACTIVITY_AGE = "RELANALYTICS_MAX_ACTIVITY_AGE_HOURS"
ENV_PUBLISH_DIR = "RELANALYTICS_PUBLISH_DIR"
ENV_PUBLISH_POSTGRES_URL = "RELANALYTICS_PUBLISH_POSTGRES_URL"
# CRM exports: a JSON file overriding code and stage maps, and the CRMs' addresses for record_url.
ENV_EXPORT_MAPS = "RELANALYTICS_EXPORT_MAPS"
ENV_DATAVERSE_URL = "RELANALYTICS_DATAVERSE_URL"
ENV_SALESFORCE_URL = "RELANALYTICS_SALESFORCE_URL"
# The freshness check warns when the newest activity is older than this at the end of the as-of
# day: three days span a weekend without CRM traffic and still catch a feed stopped since Friday.
DEFAULT_MAX_ACTIVITY_AGE_HOURS = 72.0
# DuckDB spills to disk beyond this (DuckDB's own default is 80% of the RAM). Half leaves room for
# Dagster, dbt and the Python steps. At 10M activities, relationship_kpis built alone took 87 s and
# spilled 5 GB at 4 GB, against 56 s and no spill at half of this machine's 24 GiB.
DEFAULT_MEMORY_LIMIT = "50%"


def default_as_of(now: dt.datetime | None = None) -> dt.date:
    """The last complete day in UTC: yesterday."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).date() - dt.timedelta(days=1)


def parse_as_of(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as error:
        raise ValueError(f"{ENV_AS_OF} must be a date as YYYY-MM-DD, got {text!r}") from error


def parse_hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not hours > 0:
        raise ValueError(f"{ENV_MAX_ACTIVITY_AGE} must be a positive number of hours, got {text!r}")
    return hours


def parse_domains(text: str) -> tuple[str, ...]:
    """`"Example.com, @corp.example"` -> `("example.com", "corp.example")`."""
    parts = (part.strip().lower().lstrip("@") for part in text.split(","))
    return tuple(sorted({part for part in parts if part}))


@dataclass(frozen=True)
class Settings:
    home: Path
    landing_dir: Path | None
    warehouse: Path
    as_of: dt.date
    org_domains: tuple[str, ...]
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    max_activity_age_hours: float = DEFAULT_MAX_ACTIVITY_AGE_HOURS
    publish_dir: Path | None = None
    publish_postgres_url: str | None = None
    export_maps: Path | None = None
    dataverse_url: str | None = None
    salesforce_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get(ENV_HOME) or PROJECT_ROOT / "data").expanduser().resolve()
        landing = env.get(ENV_LANDING_DIR)
        warehouse = env.get(ENV_WAREHOUSE)
        as_of = env.get(ENV_AS_OF)
        max_age = env.get(ENV_MAX_ACTIVITY_AGE)
        publish = env.get(ENV_PUBLISH_DIR)
        return cls(
            home=home,
            landing_dir=Path(landing).expanduser().resolve() if landing else None,
            warehouse=(
                Path(warehouse).expanduser().resolve() if warehouse else home / "warehouse.duckdb"
            ),
            as_of=parse_as_of(as_of) if as_of else default_as_of(),
            org_domains=parse_domains(env.get(ENV_ORG_DOMAINS, "")),
            memory_limit=env.get(ENV_MEMORY_LIMIT) or DEFAULT_MEMORY_LIMIT,
            max_activity_age_hours=(
                parse_hours(max_age) if max_age else DEFAULT_MAX_ACTIVITY_AGE_HOURS
            ),
            publish_dir=Path(publish).expanduser().resolve() if publish else None,
            publish_postgres_url=env.get(ENV_PUBLISH_POSTGRES_URL) or None,
            export_maps=(
                Path(env[ENV_EXPORT_MAPS]).expanduser().resolve()
                if env.get(ENV_EXPORT_MAPS)
                else None
            ),
            dataverse_url=env.get(ENV_DATAVERSE_URL) or None,
            salesforce_url=env.get(ENV_SALESFORCE_URL) or None,
        )

    @property
    def sample_landing_dir(self) -> Path:
        """Where `relanalytics demo` generates data when no landing folder is configured."""
        return self.home / "sample-landing"

    @property
    def effective_landing_dir(self) -> Path:
        return self.landing_dir or self.sample_landing_dir

    @property
    def effective_publish_dir(self) -> Path:
        """Where the marts are published for BI tools (never the warehouse itself)."""
        return self.publish_dir or self.home / "published"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def as_environ(self) -> dict[str, str]:
        """The same settings as absolute values, for child processes (dbt, dagster)."""
        return {
            ENV_HOME: str(self.home),
            ENV_LANDING_DIR: str(self.effective_landing_dir),
            ENV_WAREHOUSE: str(self.warehouse),
            ENV_AS_OF: self.as_of.isoformat(),
            ENV_ORG_DOMAINS: ",".join(self.org_domains),
            ENV_MEMORY_LIMIT: self.memory_limit,
            ENV_MAX_ACTIVITY_AGE: str(self.max_activity_age_hours),
        }


@contextmanager
def environ_overrides(values: Mapping[str, str]) -> Iterator[None]:
    """Set variables for a child process started inside the block, then restore them.

    dagster-dbt hands dbt a copy of `os.environ` and has no parameter of its own for more, so the
    dbt asset resolves relative paths here once and lets dbt inherit the absolute ones.
    """
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

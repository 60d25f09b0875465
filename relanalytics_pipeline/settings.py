"""Run-time configuration, read from environment variables when a run or command needs it.

Nothing here runs at import time: a command calls `Settings.from_env()` when it starts, a run gets
them from its resource `settings` (defs/run_settings.py), read as the run starts, so a changed
variable takes effect on the next run without reloading code. (The one exception, the first
partition day, is read where the partitions are defined: defs/partitions.py.) Every variable is
checked there, before any work: a wrong one raises SettingError, one line naming the variable, its
value and what it accepts.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

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
ENV_PUBLISH_FILE_MODE = "RELANALYTICS_PUBLISH_FILE_MODE"
ENV_FIRST_DAY = "RELANALYTICS_FIRST_DAY"
# A TOML file of exclusion rules: addresses, domains, opted-out users, subject patterns.
ENV_PRIVACY_RULES = "RELANALYTICS_PRIVACY_RULES"
# CRM exports: a JSON file overriding code and stage maps, and the CRMs' addresses for record_url.
ENV_EXPORT_MAPS = "RELANALYTICS_EXPORT_MAPS"
ENV_DATAVERSE_URL = "RELANALYTICS_DATAVERSE_URL"
ENV_SALESFORCE_URL = "RELANALYTICS_SALESFORCE_URL"
# The engine of the warehouse: DuckDB (one file) or Spark (Parquet tables in a Hive metastore).
ENV_ENGINE = "RELANALYTICS_ENGINE"
ENGINES = ("duckdb", "spark")
# Local Spark: the folder of its tables and the memory of its driver (the one JVM that computes).
ENV_SPARK_WAREHOUSE = "RELANALYTICS_SPARK_WAREHOUSE"
ENV_SPARK_DRIVER_MEMORY = "RELANALYTICS_SPARK_DRIVER_MEMORY"
# The freshness check warns when the newest activity is older than this at the end of the as-of
# day: three days span a weekend without CRM traffic and still catch a feed stopped since Friday.
DEFAULT_MAX_ACTIVITY_AGE_HOURS = 72.0
# DuckDB spills to disk beyond this (DuckDB's own default is 80% of the RAM). The limit bounds
# DuckDB's buffers, not the process around them: dbt's or Dagster's interpreter and what DuckDB
# allocates outside its buffers held 0.75-1.8 GiB more at 10M activities, so 40% keeps dbt's
# process within half the RAM. (The ingest also holds the landing file it loads, read whole.) A
# fixed size would make large marts spill on a machine with memory to spare.
DEFAULT_MEMORY_LIMIT = "40%"
# The first partition day when RELANALYTICS_FIRST_DAY is unset.
DEFAULT_FIRST_DAY = dt.date(2020, 1, 1)
# Published marts and the fitted model hold people's names and addresses: readable by the owner
# and its group only (folders get the matching search bits: 0750).
DEFAULT_PUBLISH_FILE_MODE = 0o640
# Local Spark computes in its driver: a quarter of a 16 GB machine, beyond which it spills.
DEFAULT_SPARK_DRIVER_MEMORY = "4g"


class SettingError(ValueError):
    """A variable whose value cannot be used: one line naming it, its value and what it accepts."""


def _invalid(name: str, value: str, accepted: str) -> SettingError:
    return SettingError(f"{name}={value!r} is not valid: {accepted}")


def default_as_of(now: dt.datetime | None = None) -> dt.date:
    """The last complete day in UTC: yesterday."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).date() - dt.timedelta(days=1)


def parse_day(text: str, name: str) -> dt.date:
    """A date as YYYY-MM-DD; a wrong one is a SettingError naming `name`."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise _invalid(name, text, "give a date as YYYY-MM-DD, or unset it") from None


def parse_as_of(text: str) -> dt.date:
    return parse_day(text, ENV_AS_OF)


def first_day(environ: Mapping[str, str]) -> dt.date:
    """The first partition day: RELANALYTICS_FIRST_DAY, else DEFAULT_FIRST_DAY."""
    text = environ.get(ENV_FIRST_DAY)
    return parse_day(text, ENV_FIRST_DAY) if text else DEFAULT_FIRST_DAY


def parse_hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not hours > 0:
        raise _invalid(ENV_MAX_ACTIVITY_AGE, text, "give a positive number of hours, e.g. 72")
    return hours


def parse_domains(text: str) -> tuple[str, ...]:
    """`"Example.com, @corp.example"` -> `("example.com", "corp.example")`."""
    parts = (part.strip().lower().lstrip("@") for part in text.split(","))
    return tuple(sorted({part for part in parts if part}))


def read_memory_limit(environ: Mapping[str, str] | None = None) -> str:
    """RELANALYTICS_DUCKDB_MEMORY_LIMIT, checked (parse_memory_limit), else the default: what
    every DuckDB connection of the project is opened with (Settings, and warehouse.connect for
    the code that opens a file without them), as dbt's profile opens its own."""
    text = (os.environ if environ is None else environ).get(ENV_MEMORY_LIMIT)
    return parse_memory_limit(text) if text else DEFAULT_MEMORY_LIMIT


@cache
def parse_memory_limit(text: str) -> str:
    """A memory limit DuckDB accepts (`8GB`, `4GiB`, `50%`), asked of DuckDB itself (once per
    value): dbt reads the same variable, and would otherwise only fail after the ingest, without
    naming it."""
    import duckdb

    with duckdb.connect() as connection:
        try:
            connection.execute("SET memory_limit = ?", [text])
        except duckdb.Error as error:
            reason = str(error).splitlines()[0]
            raise _invalid(
                ENV_MEMORY_LIMIT, text, f"give a size such as 8GB or 4GiB, or a share of the RAM "
                f"such as 50% (DuckDB: {reason})"
            ) from None  # fmt: skip
    return text


def parse_engine(text: str) -> str:
    engine = text.strip().lower()
    if engine not in ENGINES:
        raise _invalid(ENV_ENGINE, text, "give " + " or ".join(ENGINES))
    return engine


def parse_driver_memory(text: str) -> str:
    """A JVM memory size as Spark takes it: `4g`, `512m`, `8192k`."""
    size = text.strip().lower()
    if not re.fullmatch(r"[1-9]\d*[kmgt]", size):
        raise _invalid(ENV_SPARK_DRIVER_MEMORY, text, "give a size such as 4g or 512m")
    return size


def parse_file_mode(text: str) -> int:
    """`0640`, `640` or `0o640`: permission bits that leave the owner reading and writing."""
    digits = text.strip().lower().removeprefix("0o")
    mode = int(digits, 8) if re.fullmatch(r"[0-7]{3,4}", digits) else -1
    if not 0 <= mode <= 0o777 or mode & 0o600 != 0o600:
        raise _invalid(
            ENV_PUBLISH_FILE_MODE, text, "give octal permissions that let the owner read and "
            "write, e.g. 0640 (owner and group) or 0600 (owner only)"
        )  # fmt: skip
    return mode


def parse_postgres_url(text: str) -> str:
    """A libpq connection string (URL or key=value) that libpq can parse, with numeric ports.
    Errors show it with its password masked, and chain nothing that holds it."""
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    from relanalytics_pipeline.conninfo import mask_password, redact

    def invalid(reason: str) -> SettingError:
        return _invalid(ENV_PUBLISH_POSTGRES_URL, mask_password(text), reason)

    try:
        parts = conninfo_to_dict(text)
    except Error as error:
        reason = redact(str(error).strip(), text)
        raise invalid(
            f"give a libpq URL such as postgresql://user@host:5432/db ({reason})"
        ) from None
    ports = str(parts.get("port") or "").split(",")
    if not all(port == "" or (port.isdigit() and 0 < int(port) < 65536) for port in ports):
        raise invalid("its port must be a number from 1 to 65535")
    return text


def parse_web_address(name: str, text: str) -> str:
    """A CRM's address, from which record_url links are built: http(s) and a host."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid(name, text, "give the address as https://host, e.g. https://contoso.example")
    return text.strip()


def writable_folder(path: Path, name: str, value: str) -> Path:
    """The path, if no file stands where it or one of its parents must be a folder."""
    blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise _invalid(name, value, f"{blocking} is a file, where a folder must be")
    return path


def _web_address(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return parse_web_address(name, value) if value else None


def _path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name)
    return Path(value).expanduser().resolve() if value else None


@dataclass(frozen=True)
class Settings:
    home: Path
    landing_dir: Path | None
    warehouse: Path
    # The day computed. A run of partitions computes theirs (defs/run_settings.py) and leaves the
    # variable unread: None until then (`read_as_of=False`).
    as_of: dt.date | None
    org_domains: tuple[str, ...]
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    max_activity_age_hours: float = DEFAULT_MAX_ACTIVITY_AGE_HOURS
    publish_dir: Path | None = None
    # Out of the repr: it may hold a password.
    publish_postgres_url: str | None = field(default=None, repr=False)
    publish_file_mode: int = DEFAULT_PUBLISH_FILE_MODE
    export_maps: Path | None = None
    dataverse_url: str | None = None
    salesforce_url: str | None = None
    first_day: dt.date = DEFAULT_FIRST_DAY
    privacy_rules: Path | None = None
    engine: str = "duckdb"
    spark_warehouse: Path | None = None
    spark_driver_memory: str = DEFAULT_SPARK_DRIVER_MEMORY

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, read_as_of: bool = True
    ) -> Settings:
        """Every setting, checked. `read_as_of=False` for a run of partitions: RELANALYTICS_AS_OF
        is then neither read nor checked (`as_of` is None)."""
        env = os.environ if environ is None else environ
        home = _path(env, ENV_HOME) or PROJECT_ROOT / "data"
        writable_folder(home, ENV_HOME, env.get(ENV_HOME, ""))
        warehouse = _path(env, ENV_WAREHOUSE)
        if warehouse is not None:
            writable_folder(warehouse.parent, ENV_WAREHOUSE, env[ENV_WAREHOUSE])
            if warehouse.is_dir():
                raise _invalid(ENV_WAREHOUSE, env[ENV_WAREHOUSE], "it is a folder: name a file")
        publish = _path(env, ENV_PUBLISH_DIR)
        if publish is not None:
            writable_folder(publish, ENV_PUBLISH_DIR, env[ENV_PUBLISH_DIR])
        export_maps = _path(env, ENV_EXPORT_MAPS)
        if export_maps is not None and not export_maps.is_file():
            raise _invalid(ENV_EXPORT_MAPS, env[ENV_EXPORT_MAPS], "name an existing JSON file")
        privacy_rules = _path(env, ENV_PRIVACY_RULES)
        if privacy_rules is not None:
            from relanalytics_pipeline.defs.privacy.rules import RulesError, read_rules

            try:
                read_rules(privacy_rules)
            except RulesError as error:
                raise _invalid(ENV_PRIVACY_RULES, env[ENV_PRIVACY_RULES], str(error)) from None
        as_of = env.get(ENV_AS_OF)
        max_age = env.get(ENV_MAX_ACTIVITY_AGE)
        postgres_url = env.get(ENV_PUBLISH_POSTGRES_URL)
        file_mode = env.get(ENV_PUBLISH_FILE_MODE)
        spark_warehouse = _path(env, ENV_SPARK_WAREHOUSE)
        if spark_warehouse is not None:
            writable_folder(spark_warehouse, ENV_SPARK_WAREHOUSE, env[ENV_SPARK_WAREHOUSE])
        driver_memory = env.get(ENV_SPARK_DRIVER_MEMORY)
        return cls(
            home=home,
            landing_dir=_path(env, ENV_LANDING_DIR),
            warehouse=warehouse or home / "warehouse.duckdb",
            as_of=(parse_as_of(as_of) if as_of else default_as_of()) if read_as_of else None,
            org_domains=parse_domains(env.get(ENV_ORG_DOMAINS, "")),
            memory_limit=read_memory_limit(env),
            max_activity_age_hours=(
                parse_hours(max_age) if max_age else DEFAULT_MAX_ACTIVITY_AGE_HOURS
            ),
            publish_dir=publish,
            publish_postgres_url=parse_postgres_url(postgres_url) if postgres_url else None,
            publish_file_mode=(
                parse_file_mode(file_mode) if file_mode else DEFAULT_PUBLISH_FILE_MODE
            ),
            export_maps=export_maps,
            dataverse_url=_web_address(env, ENV_DATAVERSE_URL),
            salesforce_url=_web_address(env, ENV_SALESFORCE_URL),
            first_day=first_day(env),
            privacy_rules=privacy_rules,
            engine=parse_engine(env[ENV_ENGINE]) if env.get(ENV_ENGINE) else "duckdb",
            spark_warehouse=spark_warehouse,
            spark_driver_memory=(
                parse_driver_memory(driver_memory) if driver_memory else DEFAULT_SPARK_DRIVER_MEMORY
            ),
        )

    def check_as_of(self) -> dt.date:
        """The as-of day, if it has a partition: a command computing an earlier day says which
        setting to change, rather than let Dagster refuse the partition key."""
        if self.as_of is not None and self.as_of < self.first_day:
            raise SettingError(
                f"{ENV_AS_OF}={self.as_of.isoformat()} is before the first partition day "
                f"{self.first_day.isoformat()}: set {ENV_FIRST_DAY} to the first day of your "
                "history (or earlier)"
            )
        return self.as_of

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
    def effective_spark_warehouse(self) -> Path:
        """The folder of local Spark's tables (`<database>.db/<table>/`)."""
        return self.spark_warehouse or self.home / "spark-warehouse"

    @property
    def spark_metastore(self) -> Path:
        """Local Spark's Hive metastore: an embedded Derby database, one JVM at a time."""
        return self.home / "spark-metastore"

    @property
    def spark_scratch(self) -> Path:
        """Where local Spark spills and shuffles (spark.local.dir)."""
        return self.home / "spark-tmp"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def as_environ(self) -> dict[str, str]:
        """The same settings as absolute values, for child processes (dbt, dagster)."""
        optional = {ENV_AS_OF: self.as_of.isoformat()} if self.as_of else {}
        if self.privacy_rules:
            optional[ENV_PRIVACY_RULES] = str(self.privacy_rules)
        return optional | {
            ENV_HOME: str(self.home),
            ENV_LANDING_DIR: str(self.effective_landing_dir),
            ENV_WAREHOUSE: str(self.warehouse),
            ENV_ORG_DOMAINS: ",".join(self.org_domains),
            ENV_MEMORY_LIMIT: self.memory_limit,
            ENV_MAX_ACTIVITY_AGE: str(self.max_activity_age_hours),
            ENV_FIRST_DAY: self.first_day.isoformat(),
            ENV_ENGINE: self.engine,
            ENV_SPARK_WAREHOUSE: str(self.effective_spark_warehouse),
            ENV_SPARK_DRIVER_MEMORY: self.spark_driver_memory,
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

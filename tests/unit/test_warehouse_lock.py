"""Someone else holding the warehouse (a DuckDB CLI, a notebook): the Python steps wait for it,
with back-off and for a bounded time, then fail naming the process. A real second process."""

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from support.profiles import rendered

from relanalytics_pipeline.settings import DEFAULT_MEMORY_LIMIT, SettingError
from relanalytics_pipeline.warehouse import WarehouseLockedError, connect

# A reader as a data engineer opens it: read-only, which still keeps every writer out.
HOLD = (
    "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
    "print('held', flush=True); time.sleep(float(sys.argv[2]))"
)


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE TABLE t AS SELECT 1 AS n")
    return path


def hold(path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_writer_waits_until_the_reader_lets_go(warehouse):
    holder = hold(warehouse, 2)
    try:
        started = time.monotonic()
        with connect(warehouse, wait_seconds=30) as connection:
            connection.execute("INSERT INTO t VALUES (2)")
            waited = time.monotonic() - started
    finally:
        holder.wait()
    # The reader held the file for 2 s after saying so: the writer got it only then, at one of
    # its retries (0.1, 0.3, 0.7, 1.5, 3.1, 6.3 s: pauses doubling from 0.1 s).
    assert 1.8 < waited < 10
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute("SELECT list(n ORDER BY n) FROM t").fetchone() == ([1, 2],)


def test_a_reader_that_stays_fails_the_step_naming_its_process(warehouse):
    holder = hold(warehouse, 60)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError) as raised:
            with connect(warehouse, wait_seconds=1.5):
                pass
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    # Linux names a process after its executable, cut to 15 characters.
    name = Path(sys.executable).name[:15]
    assert str(raised.value) == (
        f"The warehouse {warehouse} is locked by another process, PID {holder.pid} ({name}), "
        "still after 1.5 s: close its connection to the file (BI tools and readers use the "
        "published copy, see docs/serving-bi.md)."
    )
    assert 1.5 <= waited < 3
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_the_python_steps_take_the_memory_limit_dbt_takes(warehouse, monkeypatch):
    """RELANALYTICS_DUCKDB_MEMORY_LIMIT (default 40% of the RAM) bounds the Python steps' DuckDB as
    it bounds dbt's (profiles.yml); DuckDB's own default is 80% of the RAM."""

    def limit(**config) -> str:
        with duckdb.connect(config=config) as reference:
            return reference.execute("SELECT current_setting('memory_limit')").fetchone()[0]

    def limit_in_a_step() -> str:
        with connect(warehouse, read_only=True) as connection:
            return connection.execute("SELECT current_setting('memory_limit')").fetchone()[0]

    monkeypatch.delenv("RELANALYTICS_DUCKDB_MEMORY_LIMIT", raising=False)
    assert limit_in_a_step() == limit(memory_limit="40%") != limit()
    monkeypatch.setenv("RELANALYTICS_DUCKDB_MEMORY_LIMIT", "1GB")
    assert limit_in_a_step() == "953.6 MiB"  # 10^9 bytes


def test_dbt_run_by_hand_takes_the_pipelines_default_memory_limit():
    """dbt run without the pipeline (no RELANALYTICS_DUCKDB_MEMORY_LIMIT in its environment) falls
    back to the profile's default, which must be the pipeline's."""
    limit = rendered("duckdb", "settings", "memory_limit", environ={})
    assert limit == DEFAULT_MEMORY_LIMIT == "40%"


def test_a_wrong_memory_limit_is_the_settings_one_line_error_wherever_a_file_opens(
    warehouse, monkeypatch
):
    """Code that opens the warehouse without the run's settings (the sensor, the ingest's own
    functions) checks the variable as settings.py does, rather than pass DuckDB its value."""
    monkeypatch.setenv("RELANALYTICS_DUCKDB_MEMORY_LIMIT", "abc")
    with pytest.raises(
        SettingError, match="^RELANALYTICS_DUCKDB_MEMORY_LIMIT='abc' is not valid: "
    ):
        with connect(warehouse, read_only=True):
            pass

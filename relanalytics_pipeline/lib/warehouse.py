"""Short-lived DuckDB connections to the warehouse file.

DuckDB allows one writing process per file and fails at once with "Could not set lock on file"
otherwise. The pipeline serialises its writers (one Dagster pool, see `defs/pools.py`); this module
makes sure no writer keeps the file locked longer than its block, even when the block raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

SCHEMAS = ("crm", "ingest", "quarantine")


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(
        str(path),
        read_only=read_only,
        config={
            # Timestamps without an offset are UTC (raw contract), whatever the machine's zone.
            "TimeZone": "UTC",
            # Only built-in extensions exist offline; fail at once instead of trying a download.
            "autoinstall_known_extensions": False,
        },
    )
    try:
        yield connection
    finally:
        connection.close()

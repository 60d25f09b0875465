"""What every target of a publication shares: the marts' schema, the record `_publication` that
each target carries (version, run, as-of date, time, rows per mart), and the error that leaves
every target as it was."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# The warehouse's schema of the marts, and the published PostgreSQL schema. In the published
# DuckDB file the marts are in its main schema: opened as `marts.duckdb` its catalog is `marts`,
# so `marts.relationship_kpis` reads the same there as in the warehouse.
SCHEMA = "marts"
RECORD = "_publication"
RECORD_COLUMNS = (
    "version varchar, run_id varchar, as_of_date date, published_at timestamp, "
    "mart varchar, row_count bigint, build_id varchar"
)


class PublicationError(RuntimeError):
    """A publication that could not land; every target is left as it was."""


@dataclass(frozen=True)
class Publication:
    """What one publication published: the same record lands in every target."""

    version: str
    run_id: str
    as_of_date: dt.date
    published_at: dt.datetime
    rows: dict[str, int] = field(default_factory=dict)
    # The dbt build (invocation id) whose rows a mart with `writes` holds.
    builds: dict[str, str] = field(default_factory=dict)
    # The marts of the DuckDB file updated in a copy of the previous one rather than copied whole.
    updated: frozenset[str] = frozenset()

    def record(self) -> list[tuple]:
        """Rows of `_publication` (RECORD_COLUMNS): one per mart."""
        return [
            (self.version, self.run_id, self.as_of_date, self.published_at, mart, rows,
             self.builds.get(mart))
            for mart, rows in self.rows.items()
        ]  # fmt: skip

    def as_json(self) -> dict:
        return {
            "version": self.version,
            "run_id": self.run_id,
            "as_of_date": self.as_of_date.isoformat(),
            "published_at": self.published_at.isoformat(),
            "rows": self.rows,
            "builds": self.builds,
        }


def new_version(published_at: dt.datetime, run_id: str) -> str:
    """Sortable by time, unique per run: `20261127T180102123456Z-1a2b3c4d`."""
    return f"{published_at:%Y%m%dT%H%M%S%fZ}-{run_id[:8]}"

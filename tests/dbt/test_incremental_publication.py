"""Incremental dbt models: a night's publication replaces only the history rows the night
wrote (the nights: support/two_nights.py)."""

import datetime as dt
import struct
from pathlib import Path

from conftest import query
from support.nightly import NIGHT, D, tables_differing
from support.two_nights import HISTORY, WRITES

from relanalytics_pipeline.defs.serve.publish import publish
from relanalytics_pipeline.warehouse import connect


def parquet_views(folder, version: str, marts: list[str], database: Path) -> Path:
    """A DuckDB file of views, one per mart, over the Parquet files of the publication `version`
    in `folder` (those `current` pointed to when it was published)."""
    database.unlink(missing_ok=True)
    with connect(database) as connection:
        for mart in marts:
            files = folder / "parquet" / "versions" / version / mart / "*.parquet"
            connection.execute(f"CREATE VIEW {mart} AS FROM read_parquet('{files}')")
    return database


def test_the_published_history_takes_only_what_the_night_wrote(nights, tmp_path):
    """Published after night 1, night 2's publication copies the file and replaces the history's
    rows night 2 wrote: the file then holds night 2's marts row for row, still in storage
    v1.2.0. The rerun of night 2 did not keep night 1's rows: published after night 1, its
    history is copied whole, with the same result; and so on Sundays."""
    marts = [m for (m,) in query(nights["night_1"], "SELECT table_name FROM duckdb_tables() "
                                 "WHERE schema_name = 'marts'")]  # fmt: skip
    writes = {HISTORY.split(".")[1]: WRITES}
    for sequence in (("night_1", "night_2"), ("night_1", "rerun")):
        folder = tmp_path / "-".join(sequence)
        first = publish(nights[sequence[0]], marts, folder, "run-first", D, writes=writes)
        assert first.updated == frozenset()
        second = publish(nights[sequence[1]], marts, folder, "run-second", NIGHT, writes=writes)
        assert second.updated == (
            {"relationship_health_history"} if sequence[1] == "night_2" else frozenset()
        )
        published = folder / "marts.duckdb"
        differing = tables_differing(published, nights[sequence[1]], built_schema="main")
        assert "relationship_health_history" in differing
        assert differing == dict.fromkeys(differing, 0)
        # Parquet readers see the same rows, after the full build (night 1) and after the night.
        for name, published_parquet in (
            (sequence[0], parquet_views(folder, first.version, marts, tmp_path / "first.duckdb")),
            (sequence[1], parquet_views(folder, second.version, marts, tmp_path / "second.duckdb")),
        ):
            assert tables_differing(published_parquet, nights[name], built_schema="main") == (
                dict.fromkeys(marts, 0)
            ), name
        assert struct.unpack("<8x4sQ", published.read_bytes()[:20]) == (b"DUCK", 65)
        builds = "SELECT mart, build_id FROM _publication WHERE build_id IS NOT NULL"
        with connect(nights[sequence[1]], read_only=True) as connection:
            (build,) = connection.execute(f"SELECT max(build_id) FROM {WRITES}").fetchone()
        assert query(published, builds) == [("relationship_health_history", build)]
    # The rerun kept night 2's rows: after night 2's publication it would update the file, but
    # Sundays' publications copy it whole, reclaiming the room of the rows replaced.
    folder = tmp_path / "night_1-night_2"
    sunday = NIGHT + dt.timedelta(days=7 - NIGHT.isoweekday())
    third = publish(nights["rerun"], marts, folder, "run-sunday", sunday, writes=writes)
    assert third.updated == frozenset() and third.builds == {"relationship_health_history": build}
    assert (
        tables_differing(folder / "marts.duckdb", nights["rerun"], built_schema="main") == differing
    )
    monday = publish(nights["rerun"], marts, folder, "run-monday", sunday + dt.timedelta(1),
                     writes=writes)  # fmt: skip
    assert monday.updated == frozenset()  # the file holds the rerun's rows, not those it kept

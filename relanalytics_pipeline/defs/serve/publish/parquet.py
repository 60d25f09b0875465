"""Parquet for BI tools: one folder per mart under `parquet/versions/<version>/`, behind the
symlink `parquet/current`, itself replaced atomically; the previous version stays for readers
that resolved the pointer before the swap."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb

from relanalytics_pipeline.defs.serve.publish.publication import RECORD, Publication

PARQUET_DIR = "parquet"
POINTER = "current"
VERSIONS = "versions"


def version_folder(folder: Path, version: str) -> Path:
    """Where `version` is staged (and stays once pointed to), in the publication `folder`."""
    return folder / PARQUET_DIR / VERSIONS / version


def stage(
    connection: duckdb.DuckDBPyConnection,
    marts: list[str],
    staged: Path,
    publication: Publication,
) -> None:
    """`<staged>/<mart>/data.parquet` for each mart of the staged DuckDB file, and
    `_publication.json`."""
    for mart in marts:
        (staged / mart).mkdir(parents=True)
        connection.execute(
            f"COPY published.main.{mart} TO ? (FORMAT parquet, COMPRESSION zstd)",
            [str(staged / mart / "data.parquet")],
        )
    (staged / f"{RECORD}.json").write_text(json.dumps(publication.as_json(), indent=2) + "\n")


def point_to(parquet: Path, version: str) -> None:
    """Swap `current` to the new version (a relative symlink replaced with os.replace), then
    remove every version but the new one and the one `current` pointed to before."""
    pointer = parquet / POINTER
    previous = os.readlink(pointer) if pointer.is_symlink() else None
    staged_pointer = parquet / f".{POINTER}.{version}"
    staged_pointer.unlink(missing_ok=True)
    staged_pointer.symlink_to(Path(VERSIONS) / version, target_is_directory=True)
    os.replace(staged_pointer, pointer)
    kept = {version} | ({Path(previous).name} if previous else set())
    for old in (parquet / VERSIONS).iterdir():
        if old.name not in kept:
            shutil.rmtree(old, ignore_errors=True)

"""A run of the whole pipeline on a landing folder, as the README runs it, and what it recorded."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from conftest import project_free_environ

from relanalytics_pipeline.settings import PROJECT_ROOT

# The hand-made dataset's as-of day (tests/fixtures/landing).
AS_OF = "2026-03-31"


def environment(tmp_path: Path, landing: Path) -> dict[str, str]:
    return project_free_environ(
        RELANALYTICS_HOME=str(tmp_path / "home"),
        RELANALYTICS_LANDING_DIR=str(landing),
        RELANALYTICS_AS_OF=AS_OF,
        RELANALYTICS_ORG_DOMAINS="acme-help.example",
    )


def materialize_with_the_cli(environ: dict[str, str]) -> None:
    """`dagster asset materialize --select '*'` with the code location's executor, exactly as the
    README runs it."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [
        dagster,
        "asset",
        "materialize",
        "-m",
        "relanalytics_pipeline.definitions",
        "--select",
        "*",
        "--partition",
        AS_OF,
    ]
    result = subprocess.run(command, env=environ, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def latest_metadata(instance: dg.DagsterInstance, key: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def materialize_in_process(
    folder: Path, landing: Path, partition: str, **extra: str
) -> dg.ExecuteInProcessResult:
    """Every asset of the code location, in process, for the night `partition`, with the settings
    of `environment` and `extra` and no other RELANALYTICS_* variable of the shell."""
    from relanalytics_pipeline.definitions import defs

    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("RELANALYTICS_")]:
            patch.delenv(name)
        for name, value in {**environment(folder, landing), **extra}.items():
            if name.startswith("RELANALYTICS_"):
                patch.setenv(name, value)
        result = dg.materialize(
            defs.assets, resources=defs.resources, selection="*", partition_key=partition
        )
    assert result.success
    return result

"""The one DbtProject of the code location, with its manifest ready at load time."""

import importlib.metadata
import json
import logging
import sys
from collections.abc import Sequence
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from dagster import AssetKey
from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from relanalytics_pipeline.settings import DBT_PROJECT_DIR

logger = logging.getLogger(__name__)


def dbt_executable() -> str:
    """dbt from the same environment as this Python, found even when the virtualenv is not
    activated (`.venv/bin/dagster ...`), where `dbt` is not on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


# What dbt parses: a change to any of these makes the manifest stale.
PARSED_FOLDERS = ("models", "macros", "seeds", "snapshots", "tests", "analyses")
PARSED_FILES = ("dbt_project.yml", "packages.yml", "profiles.yml")


def manifest_is_stale(project_dir: Path, manifest_path: Path) -> bool:
    """Whether the manifest is missing or older than a file dbt parses or a folder holding them
    (a folder's time changes when a file in it is added, renamed or deleted)."""
    if not manifest_path.exists():
        return True
    built = manifest_path.stat().st_mtime_ns
    parsed = [project_dir / name for name in PARSED_FILES]
    for folder in PARSED_FOLDERS:
        parsed.extend([project_dir / folder, *(project_dir / folder).rglob("*")])
    return any(path.exists() and path.stat().st_mtime_ns > built for path in parsed)


def load_dbt_project() -> DbtProject:
    """The dbt project; where its manifest is missing (a fresh clone) or older than the project's
    files (a model edited since), build it first.

    dagster-dbt rebuilds the manifest only under `dagster dev`; `dagster asset materialize`,
    pytest and code servers would fail without it, or build the graph and read the models'
    `meta` from a stale one. `dbt parse` needs no data and does not open the warehouse, so it is
    safe here (seconds). Its own preparer would look for `dbt` on PATH, hence the parse through
    our resource.
    """
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    stale = manifest_is_stale(Path(DBT_PROJECT_DIR), project.manifest_path)
    if stale:
        logger.warning(
            "dbt manifest at %s is missing or older than the dbt project: running `dbt parse`",
            project.manifest_path,
        )
    if stale or project.preparer.using_dagster_dev():
        dbt_resource(project).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project


class ProjectDbt(DbtCliResource):
    """dbt as this project runs it: this environment's dbt-core, without two preliminaries
    dagster-dbt takes before every invocation and that cost a run seconds each: asking the dbt
    executable its version (a process that imports dbt, to tell dbt-core from the Fusion engine)
    and opening a dbt adapter in Dagster's own process (it serves only the column metadata and
    row counts an asset may fetch, which none of ours does)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def dbt_resource(project: DbtProject) -> DbtCliResource:
    return ProjectDbt(project_dir=project, dbt_executable=dbt_executable())


dbt_project = load_dbt_project()


@cache
def manifest() -> dict[str, Any]:
    """dbt's manifest of the project, read once."""
    return json.loads(dbt_project.manifest_path.read_text())


# The dbt sources whose tables a Python asset writes after dbt has run: the similar-deals model's
# neighbours (models/marts/_learn__sources.yml), read by views (docs/metrics.md#similar-won-deals).
WRITTEN_AFTER_DBT = ("learn",)


def read_after_dbt(nodes: dict[str, Any], unique_id: str) -> set[AssetKey]:
    """The asset keys of the tables written after dbt (WRITTEN_AFTER_DBT) that the dbt node
    `unique_id` reads, directly or through other models; `nodes` are the manifest's nodes and
    sources."""
    found: set[AssetKey] = set()
    seen: set[str] = set()
    pending = [unique_id]
    while pending:
        node = nodes.get(pending.pop(), {})
        if node.get("resource_type") == "source" and node["source_name"] in WRITTEN_AFTER_DBT:
            found.add(AssetKey([node["source_name"], node["name"]]))
        for parent in node.get("depends_on", {}).get("nodes", []):
            if parent not in seen:
                seen.add(parent)
                pending.append(parent)
    return found


def model_reads_after_dbt(model: str) -> set[AssetKey]:
    """`read_after_dbt` of the project's model named `model`, from the manifest."""
    nodes = {**manifest()["nodes"], **manifest()["sources"]}
    return read_after_dbt(nodes, f"model.{manifest()['metadata']['project_name']}.{model}")


def models_meta(key: str) -> dict[str, Any]:
    """The models' `meta` entry `key` (`config: meta:` in a model's YAML) by model name, for the
    models that set it."""
    return {
        node["name"]: node["config"]["meta"][key]
        for node in manifest()["nodes"].values()
        if node["resource_type"] == "model" and key in node["config"].get("meta", {})
    }

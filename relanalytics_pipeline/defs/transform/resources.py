"""The one DbtProject of the code location, with its manifest ready at load time."""

from __future__ import annotations

import logging

from dagster_dbt import DbtCliResource, DbtProject

from relanalytics_pipeline.settings import DBT_PROJECT_DIR

logger = logging.getLogger(__name__)


def load_dbt_project() -> DbtProject:
    """The dbt project; where its manifest is missing (a fresh clone), build it once.

    dagster-dbt rebuilds the manifest only under `dagster dev`; `dagster asset materialize`,
    pytest and code servers would fail without it. `dbt parse` needs no data and does not open
    the warehouse, so it is safe here (about 10 s, once).
    """
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    if project.manifest_path.exists():
        project.prepare_if_dev()
    else:
        logger.warning(
            "dbt manifest not found at %s: running `dbt parse` once to build it",
            project.manifest_path,
        )
        project.preparer.prepare(project)
    return project


dbt_project = load_dbt_project()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project)

"""Transform: the dbt project (staging -> intermediate -> marts) as Dagster assets.

`dbt build` runs models and their tests together; the tests appear as asset checks. dbt opens the
warehouse itself, so this step holds no connection of its own while dbt runs.
"""

import json
import os
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from pydantic import Field

from relanalytics_pipeline.defs.partitions import nightly_partitions, window_for_run
from relanalytics_pipeline.defs.privacy.assets import TABLES as EXCLUSION_TABLES
from relanalytics_pipeline.defs.privacy.rules import digest, read_rules
from relanalytics_pipeline.defs.transform.resources import dbt_project, read_after_dbt
from relanalytics_pipeline.settings import DBT_PROJECT_DIR, Settings, environ_overrides
from relanalytics_pipeline.warehouse import WAREHOUSE_POOL

# Vars that come from the run itself (its partitions, the environment), never from run config.
RUN_VARS = ("as_of_date", "org_domains", "window_start", "window_end", "privacy_rules")
# Where dbt finds the run's values of RUN_VARS: a JSON object (dbt_project/macros/run_settings.sql).
ENV_RUN_VARS = "RELANALYTICS_RUN_VARS"


class DbtBuildConfig(dg.Config):
    vars: dict[str, Any] = Field(
        default={},
        description=(
            "dbt vars overriding dbt_project.yml for this run only, for example "
            '{"health_signal_weights": {"recency": 0.4, "frequency": 0.2, "reciprocity": 0.2, '
            '"responsiveness": 0.1, "breadth": 0.1}}. The defaults and the meaning of every var '
            "are in dbt_project.yml. The as-of date and the window come from the run's partitions "
            f"(else RELANALYTICS_AS_OF), not from here: none of {RUN_VARS} may be set."
        ),
    )


def project_vars() -> dict[str, Any]:
    """The vars dbt_project.yml declares, with their defaults."""
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]


def var_problem(value: Any, default: Any) -> str | None:
    """Why `value` cannot replace a var whose default is `default`, else None. The SQL quotes text
    (sql_string in dbt_project/macros/run_settings.sql) but takes numbers as they are: a number
    must stay a number, at every level of a list or mapping (a new key takes the shape of the
    default's first)."""
    if isinstance(default, bool) or default is None:
        return None
    if isinstance(default, int | float):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return None if number else f"{value!r} is not a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else f"{value!r} is not text"
    if isinstance(default, list):
        if not isinstance(value, list):
            return f"{value!r} is not a list"
        return next((p for item in value if (p := var_problem(item, default[0]))), None)
    if isinstance(default, dict):
        if not isinstance(value, dict):
            return f"{value!r} is not a mapping"
        first = next(iter(default.values()))
        return next(
            (p for k, v in value.items() if (p := var_problem(v, default.get(k, first)))), None
        )
    return None


def dbt_build_args(settings: Settings, build_vars: dict[str, Any]) -> list[str]:
    """The night's `dbt build`: on the profile's target named after the engine
    (dbt_project/profiles.yml: duckdb, spark), without dbt's unit tests."""
    return ["build", "--target", settings.engine, "--vars", json.dumps(build_vars),
            "--exclude-resource-type", "unit_test"]  # fmt: skip


def dbt_vars(settings: Settings, tags, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    fixed = sorted(set(overrides or {}) & set(RUN_VARS))
    if fixed:
        raise dg.Failure(
            f"Run config may not set {', '.join(fixed)}: the as-of date and the window are the "
            "run's partitions (else RELANALYTICS_AS_OF), the domains RELANALYTICS_ORG_DOMAINS, "
            "the rules' digest RELANALYTICS_PRIVACY_RULES."
        )
    if overrides:
        defaults = project_vars()
        problems = []
        for name, value in overrides.items():
            problem = var_problem(value, defaults[name]) if name in defaults else "not a var of it"
            if problem:
                problems.append(f"{name}: {problem}")
        if problems:
            raise dg.Failure(
                f"Run config vars not taken (see dbt_project.yml): {'; '.join(problems)}."
            )
    window = window_for_run(tags)
    return {
        **(overrides or {}),
        "as_of_date": settings.as_of.isoformat(),
        "org_domains": ",".join(settings.org_domains),
        # Changed rules rebuild the incremental models in full (docs/privacy.md).
        "privacy_rules": digest(read_rules(settings.privacy_rules)),
        # The days whose rows incremental models recompute; none (the default) means all of them.
        "window_start": window.start.isoformat() if window else None,
        "window_end": window.end.isoformat() if window else None,
    }


class OneBuildPerRun(DagsterDbtTranslator):
    """The dependencies that keep a run's models in one `dbt build` (each more costs dbt's
    start-up and tests once more):

    - every model that reads the raw `crm` tables waits for the exclusion lists too, not only
      the staging models that read them: otherwise Dagster runs the models that can start at once
      in a `dbt build` of their own;
    - a model over a table a Python asset writes after dbt (WRITTEN_AFTER_DBT: the similar-deals
      model's neighbours, which it computes from dbt's features) does not wait for that asset: it
      is a view, which reads the table whenever it is queried. What reads such a view's rows (its
      great-expectations check, the publication) waits for the asset instead.
    """

    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id, {})
        parents = node.get("depends_on", {}).get("nodes", [])
        if any(parent.startswith("source.") and ".crm." in parent for parent in parents):
            waits_for = {dep.asset_key for dep in spec.deps}
            exclusions = [dg.AssetKey(["privacy", table]) for table in EXCLUSION_TABLES]
            spec = spec.merge_attributes(deps=[k for k in exclusions if k not in waits_for])
        later = read_after_dbt({**manifest["nodes"], **manifest["sources"]}, unique_id)
        if later and node.get("resource_type") == "model":
            if node["config"]["materialized"] != "view":
                raise ValueError(
                    f"dbt model {node['name']} reads {', '.join(k.to_user_string() for k in later)}"
                    ", which a Python asset writes after dbt has run: it must be a view"
                )
            spec = spec.replace_attributes(deps=[d for d in spec.deps if d.asset_key not in later])
        return spec


def dbt_build_command(
    settings: Settings, build_vars: dict[str, Any], overrides: dict[str, Any]
) -> tuple[list[str], dict[str, str]]:
    """The arguments of the run's `dbt build`, on the profile's target named after the engine
    (dbt_project/profiles.yml: duckdb, spark), and the environment variables it adds: the
    settings' absolute values, and the run's own vars (RUN_VARS, from `build_vars`) as
    ENV_RUN_VARS rather than --vars, which carry only the run config's `overrides`. dbt parses the
    whole project again whenever --vars change (dbt_project/macros/run_settings.sql, run_var).

    dbt's unit tests check the SQL against fixed, hand-worked rows under the documented defaults:
    they say nothing about the night's data (and no longer apply under other vars), so they run in
    CI (tests/pipeline/test_end_to_end.py), not in every run, as dbt recommends."""
    args = ["build", "--target", settings.engine, "--exclude-resource-type", "unit_test"]
    if overrides:
        args += ["--vars", json.dumps(overrides)]
    run_values = {name: build_vars[name] for name in RUN_VARS}
    return args, settings.as_environ() | {ENV_RUN_VARS: json.dumps(run_values)}


# dbt's parse of the project, which the next run reads instead of parsing it all again.
PARSE_FILE = "partial_parse.msgpack"


def start_from_saved_parse(runs: Path, target: Path) -> None:
    """Give the run's dbt target folder the parse the last successful run saved (save_parse), if
    any. dbt checks that it still holds (same project files, dbt version, profile and --vars)
    and parses again what does not."""
    saved = runs / PARSE_FILE
    if saved.exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(saved, target / PARSE_FILE)


def save_parse(target: Path, runs: Path) -> None:
    """Keep the parse of a successful run for the next one: the folder's own is removed with it.
    The parse is the warehouse's and its settings' (dbt's profile): one per data folder."""
    parsed = target / PARSE_FILE
    if parsed.exists():
        os.replace(parsed, runs / PARSE_FILE)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=OneBuildPerRun(),
    # A range of days (a backfill) runs as one `dbt build` with the window as vars.
    partitions_def=nightly_partitions,
    pool=WAREHOUSE_POOL,
)
def relanalytics_dbt(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    config: DbtBuildConfig,
    settings: dg.ResourceParam[Settings],
):
    build_vars = dbt_vars(settings, context.run.tags, config.vars)
    into = settings.effective_spark_warehouse if settings.engine == "spark" else settings.warehouse
    context.log.info(f"dbt build as of {build_vars['as_of_date']} on {settings.engine}: {into}")
    if config.vars:
        context.log.info(f"dbt vars overridden by the run's config: {json.dumps(config.vars)}")
    # Each invocation writes its artefacts to a folder of its own; under the project's data folder
    # rather than dbt_project/target, and removed once the run succeeded (kept for a failed one),
    # so that nightly runs do not pile them up.
    runs = settings.home / "dbt-runs"
    target = runs / context.run.run_id
    start_from_saved_parse(runs, target)
    args, environ = dbt_build_command(settings, build_vars, config.vars)
    if settings.engine == "spark":
        from relanalytics_pipeline.spark import clear_killed_writes

        clear_killed_writes(settings)
    # dbt starts inside the block, inheriting absolute paths for the profile's env_var()s.
    with environ_overrides(environ):
        invocation = dbt.cli(args, context=context, target_path=target)
    yield from invocation.stream()
    save_parse(target, runs)
    shutil.rmtree(target, ignore_errors=True)

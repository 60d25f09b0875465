"""dbt's local Spark session (dbt_project/profiles.yml, target `spark`, method `session`) is built
with the Python steps' settings (relanalytics_pipeline/spark.py, spark_conf)."""

import ast
from pathlib import Path

import jinja2
import yaml

from relanalytics_pipeline.settings import Settings
from relanalytics_pipeline.spark import spark_conf

PROFILES = Path(__file__).resolve().parents[2] / "dbt_project" / "profiles.yml"


def session_parameters(environ: dict[str, str]) -> dict[str, str]:
    """The profile's session settings as dbt renders them in `environ`."""
    profile = yaml.safe_load(PROFILES.read_text())
    template = profile["relanalytics"]["outputs"]["spark"]["server_side_parameters"]
    rendered = (
        jinja2.Environment()
        .from_string(template)
        .render(env_var=lambda name, default=None: environ.get(name, default))
    )
    return ast.literal_eval(rendered)


def test_dbt_session_has_the_python_steps_settings(tmp_path):
    settings = Settings.from_env(
        {"RELANALYTICS_HOME": str(tmp_path), "RELANALYTICS_SPARK_DRIVER_MEMORY": "6g"}
    )
    # dbt gets the settings as absolute values (the dbt asset's environ_overrides).
    parameters = session_parameters(settings.as_environ())
    steps = spark_conf(settings)
    # Only the application's name tells dbt's session from a step's in Spark's logs.
    assert parameters.pop("spark.app.name") == "relanalytics-dbt"
    assert steps.pop("spark.app.name") == "relanalytics"
    # The progress bar among them: on dbt's output, it comes before dbt's JSON lines, which
    # dagster-dbt then cannot read, and the models of those lines are not materialized in Dagster.
    assert parameters == steps

"""dbt's local Spark session (dbt_project/profiles.yml, target `spark`, method `session`) is built
with the Python steps' settings (relanalytics_pipeline/spark.py, spark_conf)."""

import ast

from support.profiles import rendered

from relanalytics_pipeline.settings import Settings
from relanalytics_pipeline.spark import spark_conf


def session_parameters(environ: dict[str, str]) -> dict[str, str]:
    """The profile's session settings as dbt renders them in `environ`."""
    return ast.literal_eval(rendered("spark", "server_side_parameters", environ=environ))


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

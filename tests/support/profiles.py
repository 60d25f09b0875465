"""dbt's profile (dbt_project/profiles.yml) as dbt renders it: what the unit tests hold equal to
the pipeline's own settings."""

from pathlib import Path

import jinja2
import yaml

PROFILES = Path(__file__).resolve().parents[2] / "dbt_project" / "profiles.yml"


def rendered(target: str, *keys: str, environ: dict[str, str]) -> str:
    """The value under `keys` of the profile's `target`, rendered as dbt renders it with
    `environ` as its environment (`env_var` falls back to its default)."""
    value = yaml.safe_load(PROFILES.read_text())["relanalytics"]["outputs"][target]
    for key in keys:
        value = value[key]
    return (
        jinja2.Environment()
        .from_string(value)
        .render(env_var=lambda name, default=None: environ.get(name, default))
    )

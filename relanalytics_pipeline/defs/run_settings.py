"""A run's settings as the Dagster resource `settings`: read from the run's environment and
checked once, as the run starts, before any step; every asset and check that needs them gets the
plain `Settings`, whose `as_of` is the run's day.

A resource without config fields, rather than one field per variable set to `dg.EnvVar`: every
RELANALYTICS_* variable is optional, and Dagster fails a run whose `EnvVar` is unset, so such
fields could only name the variables set when the definitions loaded, and a variable set or unset
after that would be ignored or fail the run without its one line. Read here instead, the values
never enter Dagster's config either: neither the UI nor a run's records can show them (the
PostgreSQL URL holds a password).
"""

from collections.abc import Mapping
from dataclasses import replace

import dagster as dg

from relanalytics_pipeline.defs.partitions import window_for_run
from relanalytics_pipeline.settings import SettingError, Settings


def settings_for_run(tags: Mapping[str, str], environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of a run (`environ`: the process's environment unless given), with the day it
    computes as `as_of`: its partition's (the last of a range), else RELANALYTICS_AS_OF. A run of
    partitions leaves RELANALYTICS_AS_OF unread, as documented.

    Every step of a run reads the same tags, the unpartitioned assets too (the model, the reports),
    so a run launched for a night computes that night whenever it runs, retries included.
    """
    window = window_for_run(tags)
    settings = Settings.from_env(environ, read_as_of=window is None)
    return replace(settings, as_of=window.as_of) if window else settings


class RunSettings(dg.ConfigurableResource):
    """The RELANALYTICS_* settings (README, "Configuration") of the run, read from its
    environment as it starts, before any step: a wrong one fails the run with its one line, and
    nothing chained. The `as_of` the assets get is the run's day (`settings_for_run`)."""

    def create_resource(self, context: dg.InitResourceContext) -> Settings:
        run = context.run
        try:
            return settings_for_run(run.tags if run else {})
        except SettingError as error:
            raise dg.Failure(description=str(error)) from None

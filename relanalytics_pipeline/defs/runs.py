"""What a run is about: its as-of date, from the run's tags or the environment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from relanalytics_pipeline.settings import AS_OF_TAG, Settings, parse_as_of


def as_of_for_run(tags: Mapping[str, str], settings: Settings) -> dt.date:
    """The run tag `relanalytics/as_of` (set by the nightly schedule) wins over RELANALYTICS_AS_OF,
    so a night's run computes that night even when it is retried days later."""
    tagged = tags.get(AS_OF_TAG)
    return parse_as_of(tagged) if tagged else settings.as_of

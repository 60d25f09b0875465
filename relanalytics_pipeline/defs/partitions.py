"""Daily partitions: one per night, keyed by the day that night computes (the as-of day).

A partition D stands for "the night after day D": ingest the files that landed by the end of D,
then compute every mart as of D. A range [a, b] (a backfill) is one run: the files up to b, the
marts as of b, and the dbt models given the window [a, b + 1) to recompute.
"""

import datetime as dt
import os
from collections.abc import Mapping
from typing import NamedTuple

import dagster as dg

from relanalytics_pipeline.settings import first_day

# RELANALYTICS_FIRST_DAY (default 2020-01-01), the first day the UI lists and a run may compute;
# the last partition is yesterday: a day is complete only once it has ended (UTC). The one setting
# read at import, against the rule: the partitions definition is part of the code location, and
# Dagster checks a run's partition key against it before any step (or any of our code) runs, so
# it must be known when the definitions load. A wrong value fails the load with its one line.
FIRST_DAY = first_day(os.environ).isoformat()

nightly_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC")

# The tags Dagster gives a run of one partition, or of a range of them (a single-run backfill).
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


class Window(NamedTuple):
    """Days from `start` to `end`, end exclusive (dbt's `window_start` and `window_end`)."""

    start: dt.date
    end: dt.date

    @property
    def as_of(self) -> dt.date:
        return self.end - dt.timedelta(days=1)


def window_for_run(tags: Mapping[str, str]) -> Window | None:
    """The partition window of a run, from its tags; None for a run without partitions."""
    first = tags.get(RANGE_START_TAG) or tags.get(PARTITION_TAG)
    last = tags.get(RANGE_END_TAG) or tags.get(PARTITION_TAG)
    if not first or not last:
        return None
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return Window(start, end + dt.timedelta(days=1))


# Every asset carries it, the unpartitioned ones too (the model, the reports): a range of days is
# then one run, from the UI or `dagster asset materialize --partition-range`, which refuses a
# selection where any asset would need a run per day.
ONE_RUN_PER_RANGE = dg.BackfillPolicy.single_run()

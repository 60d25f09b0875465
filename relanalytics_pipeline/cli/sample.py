"""The sample CRM that `relanalytics demo` runs on when no landing folder is configured."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from relanalytics_pipeline.cli.generator import generate_dataset
from relanalytics_pipeline.settings import Settings

# Tens of thousands of activities build in well under a minute end to end, yet fill every mart.
SAMPLE_ACTIVITIES = 30_000
SAMPLE_SEED = 42


def ensure_sample(
    settings: Settings, as_of: dt.date, log: logging.Logger, activities: int = SAMPLE_ACTIVITIES
) -> Path:
    """The configured landing folder; with none, a sample generated into the sample folder once
    (and reused afterwards, so that a second demo loads nothing new)."""
    if settings.landing_dir is not None:
        return settings.landing_dir
    sample = settings.sample_landing_dir
    if (sample / "activities").is_dir():
        log.info(f"Using the sample dataset in {sample}")
    else:
        log.info(
            f"No RELANALYTICS_LANDING_DIR: generating {activities:,} sample activities "
            f"(seed {SAMPLE_SEED}, ending {as_of}) into {sample}"
        )
        generate_dataset(sample, activities, seed=SAMPLE_SEED, as_of=as_of)
    return sample

"""Opportunities for the similar-deals model, written by hand: each a copy of BASE with the
changes a test names."""

import pandas as pd

from relanalytics_pipeline.defs.learn.similar_deals import FEATURES

COLUMNS = ["opportunity_id", "state_as_of", "actual_value", *FEATURES]
BASE = {"estimated_value": 50_000.0, "account_employees": 100.0,
        "account_annual_revenue": 1e6, "product": "Suite", "account_industry": "Energy",
        "account_country": "US", "owner_team": "East"}  # fmt: skip
# The reason the model gives for the plain distance below its default minimums.
BELOW = "below min_won_deals=30 / min_lost_deals=30: plain distance instead of the learned weights"


def deal(opportunity_id: str, state: str, actual=None, **changes) -> dict:
    return {"opportunity_id": opportunity_id, "state_as_of": state, "actual_value": actual,
            **BASE, **changes}  # fmt: skip


def frame(*deals: dict) -> pd.DataFrame:
    return pd.DataFrame(list(deals), columns=COLUMNS)

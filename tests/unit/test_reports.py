"""The report helpers on small frames whose answers are worked out by hand."""

import datetime as dt

import pandas as pd
import pytest

from relanalytics_pipeline.defs.reports.deal_chart import (
    NO_SCORE_COLOR,
    NO_SCORE_LABEL,
    chart_points,
)
from relanalytics_pipeline.defs.reports.health_diagnostic import diagnose


def deals() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": ["a", "b", "c"],
            "name": ["A", "B", "C"],
            "stage": ["close", "qualify", "develop"],
            "stage_color_hex": ["#7B2CBF", "#1F3A93", "#6CB4EE"],
            "estimated_close_date": [dt.date(2026, 7, 1), dt.date(2026, 8, 1), None],
            "estimated_value": [100.0, 400.0, None],
            "health_score": pd.array([70, None, 20], dtype="Int64"),
            "health_status": ["Good", "Not enough info", "Poor"],
        }
    )


def test_unscored_deals_are_grey_at_zero_and_bubble_area_follows_revenue():
    points = chart_points(deals()).set_index("opportunity_id")
    assert points.loc["b", ["y", "color", "legend"]].tolist() == [
        0.0,
        NO_SCORE_COLOR,
        NO_SCORE_LABEL,
    ]
    assert points.loc["a", ["y", "color", "legend"]].tolist() == [70.0, "#7B2CBF", "close"]
    # Areas relative to the largest deal; a deal without a value gets the smallest bubble.
    assert points["area_share"].to_dict() == {"a": 0.25, "b": 1.0, "c": 0.0}
    # Legend in the order a deal moves through its stages, deals without a score last.
    assert chart_points(deals())["legend"].tolist() == ["develop", "close", NO_SCORE_LABEL]


def test_diagnostic_win_rates_and_auc():
    frame = pd.DataFrame(
        {
            "won": [True, True, False, False, True],
            "in_history": [True, True, True, True, False],
            "health_score": [80, 60, 70, 20, None],
            "health_status": ["Good", "Good", "Good", "Poor", None],
        }
    )
    result = diagnose(frame, 30)
    # Won scores 80 and 60 against lost 70 and 20: 80>70, 80>20, 60<70, 60>20, 3 of 4 pairs.
    assert result.auc == pytest.approx(0.75)
    assert (result.deals_closed, result.deals_in_history, result.deals_scored) == (5, 4, 4)
    assert result.win_rate_by_status == {"Good": (2, 3), "Poor": (0, 1)}
    assert "| Good | 3 | 2 | 67% |" in result.markdown()


def test_diagnostic_without_both_outcomes_has_no_auc():
    frame = pd.DataFrame(
        {"won": [True], "in_history": [True], "health_score": [50], "health_status": ["Fair"]}
    )
    assert diagnose(frame, 30).auc is None

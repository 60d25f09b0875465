"""The report helpers on small frames whose answers are worked out by hand."""

import datetime as dt

import pandas as pd
import pytest

from relanalytics_pipeline.defs.reports.deal_chart import (
    NO_SCORE_COLOR,
    NO_SCORE_LABEL,
    chart_points,
    warning_text,
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


def test_the_hover_names_the_number_of_warnings_and_the_top_ones_reason():
    assert warning_text(0, None) == "none"
    assert warning_text(2, "no two-way activity with the customer in 20 days") == (
        "2, the most severe: no two-way activity with the customer in 20 days"
    )


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


def test_warning_outcomes_count_the_deals_and_wins_with_and_without_each_warning():
    """int_closed_deal_warnings' rows for three deals closed on 05-31, their day 05-01 (30 days
    before): w1 (won) had no warning, w2 (won) had gone dark, l1 (lost) had gone dark and was
    unanswered. going_dark: 2 deals with it, 1 won (50%); 1 without, won (100%). unanswered: 1
    with it, none won (0%); 2 without, both won (100%)."""
    import duckdb

    from relanalytics_pipeline.defs.reports.warning_outcomes import (
        WarningOutcome,
        warning_outcomes,
    )

    connection = duckdb.connect()
    connection.execute("""
        create schema intermediate;
        create table intermediate.int_closed_deal_warnings as
        select opportunity_id, is_won, date '2026-05-31' as actual_close_date,
            date '2026-05-01' as warning_day, warning, is_held
        from (values
            ('w1', true, 'going_dark', false),
            ('w1', true, 'unanswered', false),
            ('w2', true, 'going_dark', true),
            ('w2', true, 'unanswered', false),
            ('l1', false, 'going_dark', true),
            ('l1', false, 'unanswered', true)
        ) as t(opportunity_id, is_won, warning, is_held)
    """)  # fmt: skip
    result = warning_outcomes(connection)
    assert (result.days_before_close, result.deals_in_history) == (30, 3)
    assert result.outcomes == [
        WarningOutcome("going_dark", deals_with=2, won_with=1, deals_without=1, won_without=1),
        WarningOutcome("unanswered", deals_with=1, won_with=0, deals_without=2, won_without=2),
    ]
    assert "| going_dark | 2 | 1 | 50% | 1 | 1 | 100% |" in result.markdown()
    assert "| unanswered | 1 | 0 | 0% | 2 | 2 | 100% |" in result.markdown()


def test_warning_outcomes_without_closed_deals_in_the_history():
    import duckdb

    from relanalytics_pipeline.defs.reports.warning_outcomes import warning_outcomes

    connection = duckdb.connect()
    connection.execute("""
        create schema intermediate;
        create table intermediate.int_closed_deal_warnings (
            opportunity_id varchar, is_won boolean, actual_close_date date, warning_day date,
            warning varchar, is_held boolean
        )
    """)
    result = warning_outcomes(connection)
    assert (result.days_before_close, result.deals_in_history, result.outcomes) == (None, 0, [])

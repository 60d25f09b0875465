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


def test_warning_outcomes_count_the_warnings_held_30_days_before_each_close():
    """Five closed deals, four of them with their day 30 days before the close (05-01) in the
    history: w1 (won) had no warning; w2 (won) had gone dark (20 days) with 1 customer person;
    l1 (lost) had gone dark (14 days, the threshold), declined, and its close date 04-30 had
    passed; l2 (lost) 13 days only, 2 people, declined, its close date 05-01 not yet past. l3
    closed before the history; o1 is open."""
    import duckdb

    from relanalytics_pipeline.defs.reports.warning_outcomes import (
        WarningOutcome,
        closed_deal_warnings,
        warning_outcomes,
    )

    connection = duckdb.connect()
    connection.execute("""
        create schema staging;
        create schema marts;
        create table staging.stg_crm__opportunities as
        select * from (values
            ('w1', 'won', date '2026-06-15', date '2026-05-31'),
            ('w2', 'won', date '2026-06-15', date '2026-05-31'),
            ('l1', 'lost', date '2026-04-30', date '2026-05-31'),
            ('l2', 'lost', date '2026-05-01', date '2026-05-31'),
            ('l3', 'lost', date '2026-01-01', date '2026-01-01'),
            ('o1', 'open', date '2026-04-01', null)
        ) as t(opportunity_id, opportunity_status, estimated_close_date, actual_close_date);
        create table marts.relationship_health_history as
        select 'opportunity' as record_type, * from (values
            ('w1', date '2026-05-01', 2, 3, 'Steady'),
            ('w2', date '2026-05-01', 20, 1, 'Steady'),
            ('l1', date '2026-05-01', 14, 2, 'Declining'),
            ('l2', date '2026-05-01', 13, 2, 'Declining'),
            ('l2', date '2026-05-02', 30, 1, 'Declining'),
            ('o1', date '2026-05-01', 30, 1, 'Declining')
        ) as t(record_id, as_of_date, days_since_two_way, customer_people, health_trend)
    """)  # fmt: skip
    result = warning_outcomes(closed_deal_warnings(connection, 30, 14, 1), 30)
    assert (result.deals_closed, result.deals_in_history) == (5, 4)
    assert result.outcomes == [
        WarningOutcome("going_dark", deals_with=2, won_with=1, deals_without=2, won_without=1),
        WarningOutcome("single_threaded", deals_with=1, won_with=1, deals_without=3, won_without=1),
        WarningOutcome(
            "health_declining", deals_with=2, won_with=0, deals_without=2, won_without=2
        ),
        WarningOutcome("past_close_date", deals_with=1, won_with=0, deals_without=3, won_without=2),
    ]
    assert "| health_declining | 2 | 0 | 0% | 2 | 2 | 100% |" in result.markdown()

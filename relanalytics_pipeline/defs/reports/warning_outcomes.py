"""Does a deal warning mean anything on the data at hand?

For every closed opportunity (won or lost) whose day `days_before_close` before its actual close
lies within `marts.relationship_health_history`: which warnings held on that day, and the win rate
of the deals with and without each. A warning whose deals are won less often than the others
predicts losses here.

The warnings are those `marts.deal_warnings` computes that the health history can tell for a past
day: going_dark (days without two-way activity), single_threaded (customer people), health_declining
(the trend) and past_close_date (the estimated close date before that day), with the thresholds of
`dbt_project.yml`. The others need activities or record versions as of that day, which the history
does not keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

WARNINGS = ("going_dark", "single_threaded", "health_declining", "past_close_date")


@dataclass(frozen=True)
class WarningOutcome:
    warning: str
    deals_with: int
    won_with: int
    deals_without: int
    won_without: int

    @staticmethod
    def rate(won: int, deals: int) -> float | None:
        return won / deals if deals else None


@dataclass(frozen=True)
class WarningOutcomes:
    days_before_close: int
    deals_closed: int
    deals_in_history: int
    outcomes: list[WarningOutcome] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [
            "| warning | deals with it | won | win rate | deals without | won | win rate |",
            "|---|---|---|---|---|---|---|",
        ]
        for o in self.outcomes:
            with_rate, without_rate = (
                _percent(WarningOutcome.rate(won, deals))
                for won, deals in ((o.won_with, o.deals_with), (o.won_without, o.deals_without))
            )
            lines.append(
                f"| {o.warning} | {o.deals_with} | {o.won_with} | {with_rate} "
                f"| {o.deals_without} | {o.won_without} | {without_rate} |"
            )
        return "\n".join(lines)


def closed_deal_warnings(
    connection: duckdb.DuckDBPyConnection,
    days_before_close: int,
    going_dark_days: int,
    single_threaded_people: int,
) -> pd.DataFrame:
    """One row per closed opportunity: won or not, whether its day `days_before_close` before the
    close is in the history, and each warning of WARNINGS on that day (false outside it)."""
    return connection.execute(
        """
        select
            opportunities.opportunity_id,
            opportunities.opportunity_status = 'won' as won,
            history.as_of_date is not null as in_history,
            coalesce(history.days_since_two_way >= $going_dark, false) as going_dark,
            coalesce(history.customer_people = $single_threaded, false) as single_threaded,
            coalesce(history.health_trend = 'Declining', false) as health_declining,
            coalesce(opportunities.estimated_close_date < history.as_of_date, false)
                as past_close_date
        from staging.stg_crm__opportunities as opportunities
        left join marts.relationship_health_history as history
            on history.record_type = 'opportunity'
            and history.record_id = opportunities.opportunity_id
            and history.as_of_date = opportunities.actual_close_date - cast($days as integer)
        where opportunities.opportunity_status in ('won', 'lost')
            and opportunities.actual_close_date is not null
        order by opportunities.opportunity_id
        """,
        {
            "going_dark": going_dark_days,
            "single_threaded": single_threaded_people,
            "days": days_before_close,
        },
    ).df()


def warning_outcomes(deals: pd.DataFrame, days_before_close: int) -> WarningOutcomes:
    """The win rate with and without each warning, over the deals in the history."""
    seen = deals[deals["in_history"].astype(bool)]
    outcomes = []
    for warning in WARNINGS:
        held = seen[warning].astype(bool)
        outcomes.append(
            WarningOutcome(
                warning=warning,
                deals_with=int(held.sum()),
                won_with=int(seen.loc[held, "won"].sum()),
                deals_without=int((~held).sum()),
                won_without=int(seen.loc[~held, "won"].sum()),
            )
        )
    return WarningOutcomes(
        days_before_close=days_before_close,
        deals_closed=len(deals),
        deals_in_history=len(seen),
        outcomes=outcomes,
    )


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"

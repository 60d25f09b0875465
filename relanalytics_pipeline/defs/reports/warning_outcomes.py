"""Does a deal warning mean anything on the data at hand?

For every opportunity won or lost by D whose day `deal_warning_outcome_days_before_close` (a dbt
var, default 30) before its actual close lies within the health history: which warnings held on
that day, and the win rate of the deals with and without each. A warning whose deals are won less
often than the others predicts losses here.

The warnings, all of `marts.deal_warnings`' with its thresholds, come from the dbt model
`intermediate.int_closed_deal_warnings`, which applies deal_warnings' own rules as of that day;
this module only counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb


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
    days_before_close: int | None
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


def warning_outcomes(connection: duckdb.DuckDBPyConnection) -> WarningOutcomes:
    """The deals and wins with and without each warning, counted in
    `intermediate.int_closed_deal_warnings` (one row per deal and warning)."""
    outcomes = [
        WarningOutcome(*row)
        for row in connection.execute("""
            select
                warning,
                count(*) filter (where is_held),
                count(*) filter (where is_held and is_won),
                count(*) filter (where not is_held),
                count(*) filter (where not is_held and is_won)
            from intermediate.int_closed_deal_warnings
            group by warning
            order by warning
        """).fetchall()
    ]
    deals, days_before_close = connection.execute("""
        select
            count(distinct opportunity_id),
            -- Days in both engines (Spark's difference of dates is an interval of days).
            max(cast(actual_close_date - warning_day as integer))
        from intermediate.int_closed_deal_warnings
    """).fetchone()
    return WarningOutcomes(
        days_before_close=days_before_close, deals_in_history=deals, outcomes=outcomes
    )


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"

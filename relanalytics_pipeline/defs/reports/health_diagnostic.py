"""Does the health score mean anything on the data at hand?

For every closed opportunity (won or lost) whose day `days_before_close` before its actual close
lies within `marts.relationship_health_history`, its health on that day against the outcome: the
win rate by status, and the AUC of the score as a predictor of winning (0.5: no better than a coin;
1: every won deal scored above every lost one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

STATUSES = ("Good", "Fair", "Poor", "Not enough info")


@dataclass(frozen=True)
class Diagnostic:
    days_before_close: int
    deals_closed: int
    deals_in_history: int
    deals_scored: int
    win_rate_by_status: dict[str, tuple[int, int]] = field(default_factory=dict)  # won, deals
    auc: float | None = None

    def markdown(self) -> str:
        lines = ["| status | deals | won | win rate |", "|---|---|---|---|"]
        for status, (won, deals) in self.win_rate_by_status.items():
            rate = f"{won / deals:.0%}" if deals else "–"
            lines.append(f"| {status} | {deals} | {won} | {rate} |")
        return "\n".join(lines)


def closed_deal_health(connection: duckdb.DuckDBPyConnection, days_before_close: int):
    """One row per closed opportunity: won or not, and its health days_before_close earlier
    (empty health columns when that day is outside the history)."""
    return connection.execute(
        """
        select
            opportunities.opportunity_id,
            opportunities.opportunity_status = 'won' as won,
            history.as_of_date is not null as in_history,
            history.health_score,
            history.health_status
        from staging.stg_crm__opportunities as opportunities
        left join marts.relationship_health_history as history
            on history.record_type = 'opportunity'
            and history.record_id = opportunities.opportunity_id
            and history.as_of_date = opportunities.actual_close_date - cast(? as integer)
        where opportunities.opportunity_status in ('won', 'lost')
            and opportunities.actual_close_date is not null
        order by opportunities.opportunity_id
        """,
        [days_before_close],
    ).df()


def diagnose(deals: pd.DataFrame, days_before_close: int) -> Diagnostic:
    from sklearn.metrics import roc_auc_score

    seen = deals[deals["in_history"]]
    scored = seen[seen["health_score"].notna()]
    by_status = {
        status: (int(group["won"].sum()), len(group))
        for status in STATUSES
        if len(group := seen[seen["health_status"] == status])
    }
    both_outcomes = scored["won"].nunique() == 2
    auc = (
        float(roc_auc_score(scored["won"].astype(int), scored["health_score"].astype(float)))
        if both_outcomes
        else None
    )
    return Diagnostic(
        days_before_close=days_before_close,
        deals_closed=len(deals),
        deals_in_history=len(seen),
        deals_scored=len(scored),
        win_rate_by_status=by_status,
        auc=auc,
    )

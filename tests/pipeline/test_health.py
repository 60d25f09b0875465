"""Relationship health end to end: a small CRM written for it, run through the real pipeline.

Each opportunity has an account and contacts of its own, so that its activities are all it sees:
- `od` decays: the customer talks with us every week until 2 March, then we only chase them;
- `or` recovers: a few exchanges in November, silence, then weekly talks again from 25 May;
- `oh` has a handful of activities in June whose score is worked out by hand below;
- `on` has two two-way activities only (not enough for a score);
- `ow` (won) and `ol` (lost) closed in May, one healthy and one chased in vain, for the diagnostic;
- `op` (close date already past) and `oq` (no close date) are open but not on the deal chart.
"""

import csv
import datetime as dt
import itertools
import math
import os
from pathlib import Path
from unittest import mock

import dagster as dg
import pytest
from conftest import query

D = dt.date(2026, 6, 30)
EARLIER = dt.date(2026, 6, 10)  # a first run as of this date, recomputed by the run as of D
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)
OPPORTUNITIES = {
    # id: stage, status, estimated close, actual close, estimated value
    "od": ("develop", "open", "2026-08-15", "", 50000),
    "or": ("propose", "open", "2026-09-01", "", 120000),
    "oh": ("qualify", "open", "2026-07-20", "", 8000),
    "on": ("close", "open", "2026-07-10", "", 30000),
    "ow": ("close", "won", "2026-05-10", "2026-05-15", 40000),
    "ol": ("close", "lost", "2026-05-10", "2026-05-20", 40000),
    "op": ("develop", "open", "2026-06-01", "", 10000),
    "oq": ("qualify", "open", "", "", 10000),
}
ON_CHART = ("od", "or", "oh", "on")


class Crm:
    """Activities and parties of the scenario, as canonical rows."""

    def __init__(self):
        self.activities: list[dict] = []
        self.parties: list[tuple] = []
        self.ids = itertools.count(1)

    def email(self, opp, at: dt.datetime, sender, to, subject, in_reply_to=None) -> str:
        activity_id = f"{opp}-{next(self.ids)}"
        outgoing = sender == "u1"
        self.activities.append(
            {"activity_id": activity_id, "activity_type": "email", "subject": subject,
             "direction": "outgoing" if outgoing else "incoming", "status": "completed",
             "regarding_id": opp, "occurred_at": at, "message_id": f"<{activity_id}@x>",
             "in_reply_to": f"<{in_reply_to}@x>" if in_reply_to else ""}
        )  # fmt: skip
        self._party(activity_id, "from", sender)
        self._party(activity_id, "to", to)
        return activity_id

    def meeting(self, opp, at: dt.datetime, attendees) -> str:
        activity_id = f"{opp}-{next(self.ids)}"
        self.activities.append(
            {"activity_id": activity_id, "activity_type": "appointment", "subject": "Review",
             "status": "completed", "regarding_id": opp, "occurred_at": at,
             "duration_minutes": 60}
        )  # fmt: skip
        self._party(activity_id, "organizer", "u1")
        for contact in attendees:
            self._party(activity_id, "required_attendee", contact)
        return activity_id

    def other(self, opp, at: dt.datetime, activity_type, direction="", to=None) -> str:
        activity_id = f"{opp}-{next(self.ids)}"
        self.activities.append(
            {"activity_id": activity_id, "activity_type": activity_type, "subject": activity_type,
             "direction": direction, "status": "completed", "regarding_id": opp,
             "occurred_at": at, "duration_minutes": 15}
        )  # fmt: skip
        self._party(activity_id, "from" if to else "owner", "u1")
        if to:
            self._party(activity_id, "to", to)
        return activity_id

    def healthy(self, opp, contacts, first: dt.date, last: dt.date) -> None:
        """Every week an exchange, started by us and by the customer in turn, answered within
        hours; every other week a meeting with all the contacts."""
        for week, day in enumerate(_mondays(first, last)):
            at = _at(day, 10)
            if week % 2 == 0:
                ours = self.email(opp, at, "u1", contacts[0], f"Plan {week}")
                self.email(opp, at + 4 * HOUR, contacts[0], "u1", f"RE: Plan {week}", ours)
                self.meeting(opp, _at(day + 2 * DAY, 15), contacts)
            else:
                theirs = self.email(opp, at, contacts[-1], "u1", f"Question {week}")
                self.email(opp, at + 2 * HOUR, "u1", contacts[-1], f"RE: Question {week}", theirs)

    def chase(self, opp, contact, first: dt.date, last: dt.date) -> None:
        """An email of ours every week that nobody answers."""
        for week, day in enumerate(_mondays(first, last)):
            self.email(opp, _at(day, 9), "u1", contact, f"Following up {week}")

    def _party(self, activity_id, role, person) -> None:
        if person == "u1":
            self.parties.append((activity_id, role, "user", "u1", "ann@acme.example"))
        else:
            self.parties.append(
                (activity_id, role, "contact", person, f"{person}@customer.example")
            )


HOUR = dt.timedelta(hours=1)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute)


def _mondays(first: dt.date, last: dt.date):
    day = first
    while day <= last:
        yield day
        day += WEEK


def hand_worked(crm: Crm) -> None:
    """oh's June, whose figures are worked out by hand in test_one_score_worked_out_by_hand."""
    h1 = crm.email("oh", dt.datetime(2026, 6, 2, 9), "u1", "k4", "Proposal")
    crm.email("oh", dt.datetime(2026, 6, 3, 9), "k4", "u1", "RE: Proposal", h1)  # 24 h later
    crm.meeting("oh", dt.datetime(2026, 6, 16, 10), ["k4", "k5"])
    h3 = crm.email("oh", dt.datetime(2026, 6, 20, 12), "k5", "u1", "Question")
    crm.email("oh", dt.datetime(2026, 6, 21, 0), "u1", "k5", "RE: Question", h3)  # 12 h later
    crm.other("oh", dt.datetime(2026, 6, 25, 11), "phone_call", "outgoing", to="k4")
    crm.other("oh", dt.datetime(2026, 6, 26, 11), "task")
    crm.email("oh", dt.datetime(2026, 6, 27, 10), "u1", "k4", "Checking in")  # window still open


def scenario() -> Crm:
    crm = Crm()
    crm.healthy("od", ["k1", "k2"], dt.date(2026, 1, 5), dt.date(2026, 3, 2))
    crm.chase("od", "k1", dt.date(2026, 3, 9), D)
    crm.healthy("or", ["k3"], dt.date(2025, 11, 3), dt.date(2025, 11, 24))
    crm.healthy("or", ["k3"], dt.date(2026, 5, 25), D)
    hand_worked(crm)
    crm.email("on", dt.datetime(2026, 6, 10, 9), "k6", "u1", "Hello")
    crm.email("on", dt.datetime(2026, 6, 20, 9), "k6", "u1", "Hello again")
    crm.healthy("ow", ["k7", "k8"], dt.date(2026, 1, 5), dt.date(2026, 5, 11))
    crm.healthy("ol", ["k9"], dt.date(2026, 1, 5), dt.date(2026, 1, 26))
    crm.chase("ol", "k9", dt.date(2026, 2, 2), dt.date(2026, 5, 18))
    return crm


CONTACT_ACCOUNTS = {"k1": "od", "k2": "od", "k3": "or", "k4": "oh", "k5": "oh", "k6": "on",
                    "k7": "ow", "k8": "ow", "k9": "ol"}  # fmt: skip


def write_landing(folder: Path) -> Path:
    crm = scenario()
    stamp = "2025-10-01T00:00:00Z"

    def write(entity: str, header: list[str], rows) -> None:
        (folder / entity).mkdir(parents=True)
        with open(folder / entity / f"{entity}.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            writer.writerows(rows)

    write("users", ["user_id", "full_name", "email", "team", "modified_at"],
          [("u1", "Ann Seller", "ann@acme.example", "East", stamp)])  # fmt: skip
    write("accounts", ["account_id", "name", "owner_id", "modified_at"],
          [(f"a-{opp}", f"Company {opp}", "u1", stamp) for opp in OPPORTUNITIES])  # fmt: skip
    write("contacts", ["contact_id", "account_id", "full_name", "email", "modified_at"],
          [(c, f"a-{opp}", f"Contact {c}", f"{c}@customer.example", stamp)
           for c, opp in CONTACT_ACCOUNTS.items()])  # fmt: skip
    write(
        "opportunities",
        ["opportunity_id", "name", "account_id", "owner_id", "stage", "status",
         "estimated_value", "estimated_close_date", "actual_close_date", "modified_at",
         "record_url"],
        [(opp, f"Deal {opp}", f"a-{opp}", "u1", stage, status, value, close, actual, stamp,
          f"https://crm.example/opportunity/{opp}?tab=main&x=1")
         for opp, (stage, status, close, actual, value) in OPPORTUNITIES.items()],
    )  # fmt: skip
    columns = ["activity_id", "activity_type", "subject", "direction", "status", "owner_id",
               "regarding_type", "regarding_id", "occurred_at", "duration_minutes",
               "message_id", "in_reply_to", "modified_at"]  # fmt: skip
    write("activities", columns, [
        [{**a, "owner_id": "u1", "regarding_type": "opportunity", "modified_at": stamp,
          "occurred_at": a["occurred_at"].isoformat() + "Z"}.get(c, "") for c in columns]
        for a in crm.activities
    ])  # fmt: skip
    write("activity_parties", ["activity_id", "role", "party_type", "party_id", "address"],
          crm.parties)  # fmt: skip
    return folder


def materialize(environ: dict[str, str], as_of: dt.date, dbt_vars: dict | None = None):
    from relanalytics_pipeline.definitions import defs

    run_config = {"ops": {"relanalytics_dbt": {"config": {"vars": dbt_vars}}}} if dbt_vars else None
    with mock.patch.dict(os.environ, environ):
        result = dg.materialize(
            defs.assets,
            resources=defs.resources,
            selection="*",
            partition_key=as_of.isoformat(),
            run_config=run_config,
        )
    assert result.success
    return result


HISTORY = "SELECT * FROM marts.relationship_health_history"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The pipeline as of EARLIER, then as of D: the history of both, and D's run."""
    tmp_path = tmp_path_factory.mktemp("health")
    environ = {
        "RELANALYTICS_HOME": str(tmp_path / "home"),
        "RELANALYTICS_LANDING_DIR": str(write_landing(tmp_path / "landing")),
    }
    warehouse = tmp_path / "home" / "warehouse.duckdb"
    materialize(environ, EARLIER)
    earlier_history = query(warehouse, HISTORY)
    result = materialize(environ, D)
    return environ, warehouse, earlier_history, result


def health(warehouse: Path, opp: str, day: dt.date | None = None):
    (row,) = query(
        warehouse,
        "SELECT health_score, health_status, health_trend, signal_recency, signal_frequency, "
        "signal_reciprocity, signal_responsiveness, signal_breadth, has_enough_history "
        "FROM marts.relationship_health_history "
        f"WHERE record_type = 'opportunity' AND record_id = '{opp}' "
        f"AND as_of_date = DATE '{day or D}'",
    )
    return row


def reasons(warehouse: Path, opp: str) -> str:
    """The reasons of an opportunity's health as of D, in relationship_health."""
    ((text,),) = query(
        warehouse,
        "SELECT reasons FROM marts.relationship_health "
        f"WHERE record_type = 'opportunity' AND record_id = '{opp}'",
    )
    return text


def history(warehouse: Path, opp: str) -> list[tuple]:
    return query(
        warehouse,
        "SELECT as_of_date, health_score, health_status, health_trend "
        "FROM marts.relationship_health_history "
        f"WHERE record_type = 'opportunity' AND record_id = '{opp}' ORDER BY as_of_date",
    )


def test_one_score_worked_out_by_hand(runs):
    """oh as of 2026-06-30.
    Two-way: h2 (incoming, 06-03), the meeting (06-16), h3 (incoming, 06-20): 3, enough.
    recency: 10 days since 06-20: 0.5 ^ (10 / 14).
    frequency: 5 emails x 1 + meeting 3 + call 2 + task 1 = 11 touches in 30 days >= 4: 1.
    reciprocity: our emails whose window closed: h1 (answered by h2) and h4 (sent 06-21 00:00,
      window closed at 06-28 00:00, unanswered); the 06-27 one is still open: rate 1/2.
      Started by the customer: h2, h3 of 7 (h1, meeting, h4, call, 06-27 ours): 2 x 2/7 = 4/7.
      (1/2 + 4/7) / 2.
    responsiveness: they answered in 24 h (target 48), we in 12 h (target 24): both 1.
    breadth: k4 and k5 in two-way activities: 2/3.
    score: 100 x (.25 recency + .25 + .25 reciprocity + .15 + .1 x 2/3) = 75.3: 75, Good.
    Costs: reciprocity .25 x (1 - .5357) = .116, recency .25 x (1 - .6095) = .098, breadth .033.
    """
    _, warehouse, _, _ = runs
    recency = 0.5 ** (10 / 14)
    reciprocity = (1 / 2 + 4 / 7) / 2
    row = health(warehouse, "oh")
    assert row[3:8] == pytest.approx((recency, 1.0, reciprocity, 1.0, 2 / 3))
    assert round(100 * (0.25 * recency + 0.25 + 0.25 * reciprocity + 0.15 + 0.1 * 2 / 3)) == 75
    assert row[:3] == (75, "Good", "Not enough info")  # 14 days earlier: 2 two-way activities
    assert reasons(warehouse, "oh") == (
        "the customer answered 50% of our emails and started 29% of the conversations in the "
        "last 90 days; no reply from the customer in 10 days; 2 customer people engaged in the "
        "last 90 days (target 3)"
    )
    assert row[8] is True


def test_when_the_customer_stops_replying_health_declines_to_poor(runs):
    _, warehouse, _, _ = runs
    days = history(warehouse, "od")
    statuses = [status for _, _, status, _ in days]
    # Good while they talk; after the silence starts it declines through Fair to Poor and stays.
    silence = dt.date(2026, 3, 2)
    assert {s for day, _, s, _ in days if dt.date(2026, 1, 20) <= day <= silence} == {"Good"}
    first_fair = statuses.index("Fair")
    first_poor = statuses.index("Poor")
    assert days[first_fair][0] > silence and first_fair < first_poor
    assert set(statuses[first_poor:]) == {"Poor"}
    declining = [day for day, _, _, trend in days if trend == "Declining"]
    assert declining and min(declining) > silence and min(declining) < days[first_poor][0]
    # It never picks up again: no Improving trend, and far below where it was.
    assert "Improving" not in {trend for day, _, _, trend in days if day > silence}
    assert days[-1][1] <= min(s for day, s, *_ in days if day <= silence and s is not None) - 40
    assert health(warehouse, "od")[1] == "Poor"
    # The customer last acted at the meeting of 4 March (the exchange of the week of 2 March
    # was ours, answered the same day, with a meeting two days later): 118 days before D.
    assert "no reply from the customer in 118 days" in reasons(warehouse, "od").split("; ")


def test_when_the_customer_comes_back_health_recovers(runs):
    _, warehouse, _, _ = runs
    days = history(warehouse, "or")
    before = {status for day, _, status, _ in days if day < dt.date(2026, 5, 25)}
    assert before == {"Poor"}
    assert "Improving" in {trend for day, _, _, trend in days if day >= dt.date(2026, 5, 25)}
    assert health(warehouse, "or")[1] == "Good"


def test_not_enough_history(runs):
    _, warehouse, _, _ = runs
    assert health(warehouse, "on")[:3] == (None, "Not enough info", "Not enough info")
    assert reasons(warehouse, "on") == (
        "only 2 two-way activities with the customer so far (3 needed for a score)"
    )


def test_history_recomputed_later_gives_the_same_values(runs):
    """Every row of the history as of EARLIER is in the history as of D, identical."""
    _, warehouse, earlier_history, _ = runs
    later = {row[:3]: row for row in query(warehouse, HISTORY)}
    first_day = D - 179 * DAY
    overlap = [row for row in earlier_history if row[2] >= first_day]
    records = len(OPPORTUNITIES) * 2 + len(CONTACT_ACCOUNTS)  # opportunities, accounts, contacts
    assert len(overlap) == records * ((EARLIER - first_day).days + 1)
    assert [later[row[:3]] for row in overlap] == overlap


def test_health_as_of_d_agrees_with_the_kpis(runs):
    """Second method: reciprocity and responsiveness as of D from relationship_kpis' trailing 90
    days (the same period as the health signals), for every record."""
    _, warehouse, _, _ = runs
    kpis = query(
        warehouse,
        "SELECT k.record_type, k.record_id, k.customer_response_rate, k.customer_initiated, "
        "k.team_initiated, k.team_response_hours, k.customer_response_hours, "
        "h.signal_reciprocity, h.signal_responsiveness "
        "FROM marts.relationship_kpis AS k JOIN marts.relationship_health AS h "
        "USING (record_type, record_id) WHERE k.period = 'trailing'",
    )
    assert len(kpis) == len(OPPORTUNITIES) * 2 + len(CONTACT_ACCOUNTS)

    def mean(*parts):
        present = [p for p in parts if p is not None]
        return sum(present) / len(present) if present else None

    for _, _, rate, theirs, ours, team_hours, their_hours, reciprocity, responsiveness in kpis:
        share = min(1, 2 * theirs / (theirs + ours)) if theirs + ours else None
        assert reciprocity == pytest.approx(mean(rate, share))
        assert responsiveness == pytest.approx(
            mean(
                None if team_hours is None else min(1, 24 / team_hours) if team_hours else 1,
                None if their_hours is None else min(1, 48 / their_hours) if their_hours else 1,
            )
        )
    assert {row[7] is None for row in kpis} == {True, False}  # both cases occur


def test_relationship_health_is_the_last_day_of_the_history(runs):
    _, warehouse, _, _ = runs
    columns = "record_type, record_id, as_of_date, health_score, health_status, health_trend, " \
        "signal_recency, signal_frequency, signal_reciprocity, signal_responsiveness, " \
        "signal_breadth, has_enough_history, two_way_activities, days_since_two_way, " \
        "weighted_touches, customer_response_rate, customer_initiated_share, " \
        "team_response_hours, customer_response_hours, customer_people"  # fmt: skip
    current = query(warehouse, f"SELECT {columns} FROM marts.relationship_health ORDER BY 1, 2")
    last = query(
        warehouse,
        f"SELECT {columns} FROM marts.relationship_health_history "
        f"WHERE as_of_date = DATE '{D}' ORDER BY 1, 2",
    )
    assert current == last and len(current) == len(OPPORTUNITIES) * 2 + len(CONTACT_ACCOUNTS)


def test_deal_tracking_mart_chart_and_links(runs):
    environ, warehouse, _, result = runs
    deals = query(
        warehouse,
        "SELECT d.opportunity_id, d.stage, d.stage_color, d.stage_color_hex, "
        "d.estimated_close_date, d.estimated_value, d.health_score, d.health_status, "
        "h.health_score, d.record_url, d.name "
        "FROM marts.deal_tracking AS d JOIN marts.relationship_health AS h "
        "ON h.record_type = 'opportunity' AND h.record_id = d.opportunity_id ORDER BY 1",
    )
    assert [d[0] for d in deals] == sorted(ON_CHART)
    colors = {"qualify": ("dark blue", "#1F3A93"), "develop": ("light blue", "#6CB4EE"),
              "propose": ("red", "#D62828"), "close": ("purple", "#7B2CBF")}  # fmt: skip
    for opp, stage, color, hex_code, close, value, score, _, scored, url, _ in deals:
        stage_, _, close_, _, value_ = OPPORTUNITIES[opp]
        assert (stage, (color, hex_code)) == (stage_, colors[stage_])
        assert (close.isoformat(), float(value)) == (close_, value_)
        assert score == scored and url == f"https://crm.example/opportunity/{opp}?tab=main&x=1"
    assert {d[0]: d[7] for d in deals}["on"] == "Not enough info"

    reports = Path(environ["RELANALYTICS_HOME"]) / "reports"
    html = (reports / "deal_tracking.html").read_text()
    for *_, url, name in deals:
        assert name in html and (url in html or url.replace("&", "&amp;") in html), name
    assert "Deal op" not in html and "Deal ow" not in html
    assert "<script src=" not in html  # self-contained: bokeh's JavaScript is inlined
    from PIL import Image

    with Image.open(reports / "deal_tracking.png") as image:
        assert image.format == "PNG" and image.size == (1100, 600)
    (event,) = [
        e for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["reports", "deal_tracking_chart"])
    ]  # fmt: skip
    metadata = event.materialization.metadata
    assert metadata["deals"].value == 4 and metadata["deals_without_score"].value == 1
    assert metadata["chart"].value.startswith("![deal tracking](data:image/png;base64,")


def test_diagnostic_compares_health_before_close_with_the_outcome(runs):
    """ow (won, closed 05-15) talked every week; ol (lost, closed 05-20) was chased in vain since
    February. Their health 30 days before closing: ow above ol, so the AUC is 1."""
    _, warehouse, _, result = runs
    won = health(warehouse, "ow", dt.date(2026, 4, 15))
    lost = health(warehouse, "ol", dt.date(2026, 4, 20))
    assert won[1] == "Good" and lost[1] != "Good" and won[0] > lost[0]
    (event,) = [
        e for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["reports", "health_score_diagnostic"])
    ]  # fmt: skip
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert (metadata["deals_closed"], metadata["deals_in_history"], metadata["deals_scored"]) == (
        2, 2, 2
    )  # fmt: skip
    assert metadata["auc"] == 1.0
    assert "| Good | 1 | 1 | 100% |" in metadata["win_rate_by_status"]
    assert f"| {lost[1]} | 1 | 0 | 0% |" in metadata["win_rate_by_status"]


def test_changing_a_weight_changes_the_scores_on_the_next_run(runs):
    """Recency alone weighs: every score becomes 100 x its recency signal, which the weights do
    not change. Runs last: it leaves the marts computed with these weights."""
    environ, warehouse, _, _ = runs
    sql = ("SELECT record_type, record_id, signal_recency, health_score "
           "FROM marts.relationship_health WHERE has_enough_history ORDER BY 1, 2")  # fmt: skip
    before = query(warehouse, sql)
    weights = {"recency": 1, "frequency": 0, "reciprocity": 0, "responsiveness": 0, "breadth": 0}
    materialize(environ, D, {"health_signal_weights": weights})
    after = query(warehouse, sql)
    assert [row[:3] for row in after] == [row[:3] for row in before]
    assert [row[3] for row in after] == [math.floor(100 * row[2] + 0.5) for row in before]
    assert [row[3] for row in after] != [row[3] for row in before]

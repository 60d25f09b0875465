"""Deal warnings and who knows whom, built by dbt on real DuckDB warehouses.

The hand-made dataset (tests/fixtures/landing, as of 2026-03-31) with every row worked out by
hand; a generated CRM on which the warnings must agree with relationship_health.
"""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import query, write_hand_made_landing
from support.runs import AS_OF

from relanalytics_pipeline.cli.generator import generate_dataset
from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.raw_contract import LOAD_ORDER
from relanalytics_pipeline.settings import DBT_PROJECT_DIR

D = dt.date
T = dt.datetime
# similar_won_deals and won_deal_benchmarks read the similar-deals model's table (a Python asset).
WITHOUT_THE_MODEL = ["--exclude", "similar_won_deals+"]


def build(landing: Path, warehouse: Path, as_of: str, org_domains: str = "") -> Path:
    """The landing folder ingested and every dbt model but the similar-deals marts run."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    for entity in LOAD_ORDER:
        ingest_entity(warehouse, landing, entity, "insights")
    env = os.environ | {
        "RELANALYTICS_WAREHOUSE": str(warehouse),
        "RELANALYTICS_ORG_DOMAINS": org_domains,
    }
    command = [
        str(Path(sys.executable).with_name("dbt")), "run",
        "--target-path", str(warehouse.parent / "dbt-target"), *WITHOUT_THE_MODEL,
        "--vars", json.dumps({"as_of_date": as_of}),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]
    return warehouse


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hand_made")
    landing = write_hand_made_landing(folder / "landing")
    return build(landing, folder / "warehouse.duckdb", AS_OF, "acme-help.example")


def test_deal_warnings_of_the_hand_made_dataset(hand_made):
    """o1 (open): its last two-way activity is Carol's e2 of 03-02, 29 days before D: going dark
    since 03-02 + 14 = 03-16. No meeting regards it (m1 regards the account, m2 is still open):
    no recent meeting since it was created on 2025-12-01. Not unanswered: of our last 2 emails
    (e3, e1), e1 got Carol's e2. Not single-threaded: Carol and Dan (cc on e2) took part. One
    version, close date 05-15 after D, no score (so no trend), e2 answered in 23 hours: nothing
    else. o2 is won: no warning."""
    assert query(
        hand_made,
        "SELECT opportunity_id, warning, severity, priority, since, reason, figure, figure_unit, "
        "threshold FROM marts.deal_warnings ORDER BY priority",
    ) == [
        ("o1", "going_dark", "high", 1, D(2026, 3, 16),
         "no two-way activity with the customer in 29 days", 29.0, "days", 14.0),
        ("o1", "no_recent_meeting", "low", 208, D(2025, 12, 1),
         "no meeting with the customer in the last 30 days (none yet)", None, "days", 30.0),
    ]  # fmt: skip
    assert query(
        hand_made,
        "SELECT opportunity_id, warnings, top_warning, top_warning_reason FROM marts.deal_tracking",
    ) == [("o1", 2, "going_dark", "no two-way activity with the customer in 29 days")]


def test_who_knows_whom_of_the_hand_made_dataset(hand_made):
    """Half-life 90 days, D = 03-31. Carol (c1) and Ann (u1): e1 and e3 from Ann, e2 from Carol
    (03-02, 29 days: 0.5 ^ (29 / 90) = 0.799837). Dan (c2): cc on e2 (no two-way interaction:
    Carol sent it) and m1 of 03-10 (21 days: 0.850667) with Ann and Bob, tied; Ann's id first.
    Erin (c3) and Bob (u2): calls p1 (ours) and p2 (hers, 03-20, 11 days: 0.918771), meeting m3
    (03-12, 19 days: 0.863871), e6 of 03-31 23:30 from Bob; e7 is after D, e8 deleted, e9 went
    to a support address, no user: 1.782643. Bob's cc on e3 went with its replaced party set."""
    assert query(
        hand_made,
        "SELECT contact_id, user_id, rank, strength, interactions, two_way_interactions, "
        "emails_sent, emails_received, calls, meetings, last_interaction_at "
        "FROM marts.who_knows_whom ORDER BY contact_id, rank",
    ) == [
        ("c1", "u1", 1, 0.799837, 3, 1, 2, 1, 0, 0, T(2026, 3, 3, 8)),
        ("c2", "u1", 1, 0.850667, 2, 1, 0, 0, 0, 1, T(2026, 3, 10, 14)),
        ("c2", "u2", 2, 0.850667, 1, 1, 0, 0, 0, 1, T(2026, 3, 10, 14)),
        ("c3", "u2", 1, 1.782643, 4, 2, 1, 0, 2, 1, T(2026, 3, 31, 23, 30)),
    ]  # fmt: skip
    # Globex (a1): Ann's strongest tie is Dan (0.850667 over Carol's 0.799837), and she knows 2
    # people there against Bob's 1: she leads the tie at 0.850667. Initech (a2): Bob and Erin.
    assert query(
        hand_made,
        "SELECT account_id, user_id, rank, strongest_contact_id, strongest_strength, "
        "contacts_known, two_way_interactions FROM marts.account_connections ORDER BY ALL",
    ) == [
        ("a1", "u1", 1, "c2", 0.850667, 2, 2),
        ("a1", "u2", 2, "c2", 0.850667, 1, 1),
        ("a2", "u2", 1, "c3", 1.782643, 1, 2),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    as_of = D(2026, 3, 31)
    generate_dataset(folder / "landing", 4000, seed=11, as_of=as_of)
    return build(folder / "landing", folder / "warehouse.duckdb", as_of.isoformat())


OPEN_OPPORTUNITIES = (
    "SELECT opportunity_id FROM staging.stg_crm__opportunities WHERE opportunity_status = 'open'"
)


def warned(warehouse: Path, warning: str) -> set[str]:
    rows = query(warehouse, "SELECT opportunity_id FROM marts.deal_warnings WHERE warning = ?",
                 [warning])  # fmt: skip
    return {opportunity for (opportunity,) in rows}


def open_health(warehouse: Path, condition: str) -> set[str]:
    rows = query(
        warehouse,
        "SELECT record_id FROM marts.relationship_health WHERE record_type = 'opportunity' "
        f"AND record_id IN ({OPEN_OPPORTUNITIES}) AND {condition}",
    )
    return {opportunity for (opportunity,) in rows}


def test_going_dark_exactly_where_relationship_health_says_so(generated):
    expected = open_health(generated, "days_since_two_way >= 14")
    assert expected and open_health(generated, "days_since_two_way < 14")
    assert warned(generated, "going_dark") == expected


def test_single_threaded_exactly_where_one_customer_person_took_part(generated):
    expected = open_health(generated, "customer_people = 1")
    assert expected and open_health(generated, "customer_people > 1")
    assert warned(generated, "single_threaded") == expected


def test_every_warning_holds_on_d_and_deal_tracking_counts_them(generated):
    assert query(
        generated,
        "SELECT count(*) FROM marts.deal_warnings WHERE since > as_of_date "
        f"OR opportunity_id NOT IN ({OPEN_OPPORTUNITIES})",
    ) == [(0,)]
    # Each deal's count and its top warning: the most severe, ties in the configured order.
    assert query(
        generated,
        "SELECT count(*) FROM marts.deal_tracking AS d LEFT JOIN (SELECT opportunity_id, "
        "count(*) AS n, arg_min(warning, priority) AS top FROM marts.deal_warnings "
        "GROUP BY ALL) AS w USING (opportunity_id) "
        "WHERE d.warnings <> coalesce(w.n, 0) OR d.top_warning IS DISTINCT FROM w.top",
    ) == [(0,)]
    assert query(generated, "SELECT count(DISTINCT warning) > 3 FROM marts.deal_warnings") == [
        (True,)
    ]


def test_account_connections_name_each_users_strongest_contact_there(generated):
    assert query(
        generated,
        "SELECT count(*) FROM marts.account_connections AS a WHERE strongest_strength <> ("
        "SELECT max(strength) FROM marts.who_knows_whom AS w "
        "WHERE w.account_id = a.account_id AND w.user_id = a.user_id)",
    ) == [(0,)]
    assert query(generated, "SELECT count(*) > 0 FROM marts.account_connections") == [(True,)]


def test_since_starts_the_current_run_of_days_in_the_history(generated):
    """For the warnings read from the health history: the warning held on every day from `since`
    to D, and not on the day before (unless `since` is the history's first day)."""
    rows = query(
        generated,
        """
        WITH held AS (
            SELECT record_id AS opportunity_id, as_of_date, unnest([
                {'warning': 'going_dark', 'held': coalesce(days_since_two_way >= 14, false)},
                {'warning': 'single_threaded', 'held': coalesce(customer_people = 1, false)},
                {'warning': 'health_declining', 'held': health_trend = 'Declining'}
            ], recursive := true)
            FROM marts.relationship_health_history WHERE record_type = 'opportunity'
        )
        SELECT w.warning, count(DISTINCT w.opportunity_id),
            count(*) FILTER (WHERE h.as_of_date >= w.since AND NOT h.held),
            count(*) FILTER (WHERE h.as_of_date = w.since - 1 AND h.held),
            count(*) FILTER (WHERE h.as_of_date = w.since - 1)
                + count(DISTINCT w.opportunity_id) FILTER (WHERE w.since = (
                    SELECT min(as_of_date) FROM marts.relationship_health_history))
        FROM marts.deal_warnings AS w
        JOIN held AS h USING (opportunity_id, warning)
        WHERE w.warning IN ('going_dark', 'single_threaded', 'health_declining')
        GROUP BY ALL ORDER BY ALL
        """,
    )
    assert {"going_dark", "single_threaded"} <= {warning for warning, *_ in rows}
    for warning, deals, broken_in_the_run, held_the_day_before, bounded in rows:
        assert (broken_in_the_run, held_the_day_before, bounded) == (0, 0, deals), warning

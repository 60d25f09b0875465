"""The whole pipeline on CRMs with no deal to learn from, as a data engineer runs it: every mart
is built, checked and published; the deal marts are empty or have no similar won deal, and the
model says why.

Both shapes share a support organisation's CRM, worked out by hand: one account (a1, Globex),
nine contacts of it (c1-c9) and thirty completed tasks of 15 minutes by its owner (u1), one a day
from 2026-03-01 to 2026-03-30, each regarding one contact in turn (c1, c2, ..., c9, c1, ...):
c1, c2 and c3 four tasks each, the six others three. An account holds its contacts' activities.
- "no opportunities": no opportunities folder at all.
- "nothing closed": two open opportunities of a1 without any activity (o1, develop, 20,000,
  expected 2026-06-30; o2, propose, 8,000, expected 2026-05-15) and o3, won on 2026-04-10: after
  the as-of date, so not closed as of D.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from support.runs import environment, latest_metadata, materialize_with_the_cli

from relanalytics_pipeline.cli.instance import ensure_dagster_home
from relanalytics_pipeline.defs.learn.assets import BASELINES_CHECK, NEIGHBOURS_CHECK

NO_OPPORTUNITIES, NOTHING_CLOSED = "no opportunities", "nothing closed"
CONTACTS = [f"c{n}" for n in range(1, 10)]
TASKS_OF = {contact: 4 if contact in ("c1", "c2", "c3") else 3 for contact in CONTACTS}
OPPORTUNITIES = """\
opportunity_id,name,account_id,primary_contact_id,owner_id,product,stage,status,estimated_value,\
actual_value,estimated_close_date,actual_close_date,created_at,modified_at,record_url,is_deleted
o1,Globex Renewal,a1,c1,u1,Support Plan,develop,open,20000,,2026-06-30,,2026-02-01T00:00:00Z,\
2026-03-01T00:00:00Z,https://crm.example/o1,false
o2,Globex Upgrade,a1,c2,u1,Support Plan,propose,open,8000,,2026-05-15,,2026-02-15T00:00:00Z,\
2026-03-15T00:00:00Z,https://crm.example/o2,false
o3,Globex Training,a1,c3,u1,Training,close,won,3000,2900,2026-04-10,2026-04-10,\
2026-01-10T00:00:00Z,2026-04-10T00:00:00Z,https://crm.example/o3,false
"""


def write_support_landing(folder: Path, shape: str) -> Path:
    for entity in ("users", "accounts", "contacts", "activities"):
        (folder / entity).mkdir(parents=True)
    (folder / "users" / "users.csv").write_text(
        "user_id,full_name,email,team,manager_id,is_active,modified_at,is_deleted\n"
        "u1,Sam Support,sam@acme-help.example,Support,,true,2025-01-01T00:00:00Z,false\n"
    )
    (folder / "accounts" / "accounts.csv").write_text(
        "account_id,name,industry,annual_revenue,employees,country,parent_account_id,owner_id,"
        "modified_at,is_deleted\na1,Globex,Energy,5000000,120,US,,u1,2025-01-02T00:00:00Z,false\n"
    )
    (folder / "contacts" / "contacts.csv").write_text(
        "contact_id,account_id,full_name,email,job_title,modified_at,is_deleted\n"
        + "".join(
            f"{c},a1,Person {c},{c}@globex.example,,2025-01-02T00:00:00Z,false\n" for c in CONTACTS
        )
    )
    tasks = [
        f"t{day:02},task,Follow up,,completed,u1,contact,{CONTACTS[(day - 1) % 9]},"
        f"2026-03-{day:02}T10:00:00Z,,,15,,,,2026-03-{day:02}T09:00:00Z,"
        f"2026-03-{day:02}T10:00:00Z,false\n"
        for day in range(1, 31)
    ]
    (folder / "activities" / "tasks.csv").write_text(
        "activity_id,activity_type,subject,direction,status,owner_id,regarding_type,regarding_id,"
        "occurred_at,scheduled_start,scheduled_end,duration_minutes,conversation_id,message_id,"
        "in_reply_to,created_at,modified_at,is_deleted\n" + "".join(tasks)
    )
    if shape == NOTHING_CLOSED:
        (folder / "opportunities").mkdir()
        (folder / "opportunities" / "opportunities.csv").write_text(OPPORTUNITIES)
    return folder


@pytest.fixture(scope="module", params=[NO_OPPORTUNITIES, NOTHING_CLOSED])
def run(request, tmp_path_factory):
    """One `dagster asset materialize --select '*'` per shape, shared by the tests below."""
    tmp_path = tmp_path_factory.mktemp("few-deals")
    landing = write_support_landing(tmp_path / "landing", request.param)
    environ = environment(tmp_path, landing)
    environ["DAGSTER_HOME"] = str(ensure_dagster_home(tmp_path / "home" / "dagster"))
    materialize_with_the_cli(environ)
    return request.param, tmp_path / "home", environ


def published(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_the_run_succeeds_and_every_check_passes(run):
    _, _, environ = run
    with dg.DagsterInstance.from_config(environ["DAGSTER_HOME"]) as instance:
        (record,) = instance.get_runs()
        assert record.status == dg.DagsterRunStatus.SUCCESS
        checks = instance.get_records_for_run(
            record.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    outcomes = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in (r.event_log_entry.dagster_event.event_specific_data for r in checks)
    }
    # The empty deal marts are validated like the others (no rows to break an expectation).
    assert {
        ("marts/deal_tracking", "great_expectations"),
        ("marts/similar_won_deals", "great_expectations"),
        ("marts/won_deal_benchmarks", "great_expectations"),
        ("learn/similar_deals_model", BASELINES_CHECK),
        ("learn/won_deal_neighbours", NEIGHBOURS_CHECK),
    } <= outcomes.keys()
    # Every check of the definitions ran and passed.
    from relanalytics_pipeline.definitions import defs

    every_check = {
        (c.asset_key.to_user_string(), c.name) for c in defs.resolve_asset_graph().asset_check_keys
    }
    assert all(outcomes.values()) and outcomes.keys() == every_check


def test_the_model_says_why_it_has_nothing_to_learn_from(run):
    shape, _, environ = run
    with dg.DagsterInstance.from_config(environ["DAGSTER_HOME"]) as instance:
        model = latest_metadata(instance, "learn/similar_deals_model")
        neighbours = latest_metadata(instance, "learn/won_deal_neighbours")
        (record,) = instance.get_runs()
        logged = [entry.user_message for entry in instance.all_logs(record.run_id)]
    reason = {
        NO_OPPORTUNITIES: "as of 2026-03-31: no opportunities: nothing to learn from; "
        "similar_won_deals is empty",
        # o3 was won after D: not a won deal as of D.
        NOTHING_CLOSED: "as of 2026-03-31: no won deals among 3 opportunities: no open "
        "opportunity has a similar won deal; similar_won_deals is empty",
    }[shape]
    opportunities = {NO_OPPORTUNITIES: 0, NOTHING_CLOSED: 3}[shape]
    assert (model["method"], model["reason"], model["training_opportunities"],
            model["training_won_deals"], model["training_lost_deals"]) == (
        "plain_distance", reason, opportunities, 0, 0
    )  # fmt: skip
    assert f"similar deals, plain_distance: {reason}" in logged
    assert (neighbours["rows"], neighbours["open_opportunities"]) == (
        0,
        {NO_OPPORTUNITIES: 0, NOTHING_CLOSED: 2}[shape],
    )


def test_the_published_marts(run):
    shape, home, _ = run
    # Every mart is published, the empty ones too; a1 and its nine contacts (and o1-o3) have
    # figures for both periods, the trailing one (from 2026-01-01) holding all of March.
    records = {NO_OPPORTUNITIES: 10, NOTHING_CLOSED: 13}[shape]
    open_deals = {NO_OPPORTUNITIES: 0, NOTHING_CLOSED: 2}[shape]
    counts = dict(published(home, "SELECT mart, row_count FROM marts._publication"))
    assert {mart: counts[mart] for mart in ("relationship_kpis", "record_summary",
            "deal_tracking", "similar_won_deals", "won_deal_benchmarks")} == {
        "relationship_kpis": 2 * records, "record_summary": records, "deal_tracking": open_deals,
        "similar_won_deals": 0, "won_deal_benchmarks": 5 * open_deals,
    }  # fmt: skip
    assert published(home, "SELECT COUNT(*) FROM marts.similar_won_deals") == [(0,)]
    parquet = home / "published" / "parquet" / "current"
    with duckdb.connect() as reader:
        assert reader.execute(
            f"SELECT COUNT(*) FROM read_parquet('{parquet}/similar_won_deals/*.parquet')"
        ).fetchall() == [(0,)]
        assert reader.execute(
            f"SELECT COUNT(*) FROM read_parquet('{parquet}/deal_tracking/*.parquet')"
        ).fetchall() == [(open_deals,)]

    # Thirty tasks of 15 minutes each: 450 person-minutes of the owner's, none a contact.
    kpis = published(
        home,
        "SELECT record_type, record_id, period, past_activities, upcoming_activities, "
        "team_time_minutes, customer_time_minutes FROM marts.relationship_kpis "
        "WHERE record_type IN ('account', 'contact')",
    )
    assert sorted(kpis) == sorted(
        [("account", "a1", period, 30, 0, 450.0, 0.0) for period in ("all", "trailing")]
        + [("contact", c, period, n, 0, 15.0 * n, 0.0)
           for c, n in TASKS_OF.items() for period in ("all", "trailing")]
    )  # fmt: skip
    assert published(home, "SELECT summary FROM marts.record_summary WHERE record_id = 'a1'") == [
        ("In the last 90 days: 0 emails sent and 0 received, 0 meetings, 0 calls and 30 tasks. "
         "Not contacted in this period. No contact scheduled. Time invested: 7.5 hours by our "
         "team, 0.0 by the customer.",)
    ]  # fmt: skip

    # The open deals are tracked (o3, won, is not), each with its benchmarks' own values and no
    # similar won deal to compare them with.
    tracked = published(
        home,
        "SELECT opportunity_id, stage, estimated_close_date, estimated_value::DOUBLE, "
        "health_status, company_name FROM marts.deal_tracking ORDER BY opportunity_id",
    )
    assert (
        tracked
        == {
            NO_OPPORTUNITIES: [],
            NOTHING_CLOSED: [
                ("o1", "develop", dt.date(2026, 6, 30), 20000.0, "Not enough info", "Globex"),
                ("o2", "propose", dt.date(2026, 5, 15), 8000.0, "Not enough info", "Globex"),
            ],
        }[shape]
    )
    benchmarks = published(
        home,
        "SELECT opportunity_id, measure, value, similar_won_avg, similar_won_deals "
        "FROM marts.won_deal_benchmarks WHERE measure IN ('team_initiated', 'team_time_minutes')",
    )
    assert sorted(benchmarks) == [
        (deal, measure, 0.0, None, 0)
        for deal in ("o1", "o2")[:open_deals]
        for measure in ("team_initiated", "team_time_minutes")
    ]

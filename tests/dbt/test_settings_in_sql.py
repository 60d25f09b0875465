"""Settings reach the SQL as quoted text or checked numbers, never pasted in.

dbt runs on the hand-made dataset (tests/fixtures/landing) with organisation domains and stage
colours holding a quote, a semicolon and a backslash, and two more emails, each between a
customer's contact and one address in such a domain: an email counts only when both sides take
part, so it counts exactly when that domain is found to be ours.
"""

import json

import dagster as dg
import pytest
from conftest import query
from support.warehouses import build, load_landing

from relanalytics_pipeline.defs.transform.assets import dbt_vars
from relanalytics_pipeline.settings import Settings

DOMAINS = "o'brien.example, x;y\\z.example"
EMAILS = [
    # e30: Carol (c1) writes about o1 to pat@o'brien.example on 24 March.
    {"activity_id": "e30", "activity_type": "email", "subject": "Terms", "direction": "incoming",
     "status": "completed", "owner_id": "u1", "regarding_type": "opportunity",
     "regarding_id": "o1", "occurred_at": "2026-03-24T10:00:00Z", "message_id": "<m30@x>",
     "modified_at": "2026-03-24T10:00:00Z"},
    # e31: Erin (c3) writes about o2 to kim@x;y\z.example on 26 March.
    {"activity_id": "e31", "activity_type": "email", "subject": "Invoice", "direction": "incoming",
     "status": "completed", "owner_id": "u2", "regarding_type": "opportunity",
     "regarding_id": "o2", "occurred_at": "2026-03-26T10:00:00Z", "message_id": "<m31@x>",
     "modified_at": "2026-03-26T10:00:00Z"},
]  # fmt: skip
PARTIES = """activity_id,role,party_type,party_id,address
e30,from,contact,c1,carol@globex.example
e30,to,unresolved,,pat@o'brien.example
e31,from,contact,c3,erin@initech.example
e31,to,unresolved,,kim@x;y\\z.example
"""
STAGE_COLORS = {
    "qualify": {"name": "dark blue", "hex": "#1F3A93"},
    "develop": {"name": "Ocean's blue; \\deep", "hex": "#6CB4EE"},
    "propose": {"name": "red", "hex": "#D62828"},
    "close": {"name": "purple", "hex": "#7B2CBF"},
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    warehouse = load_landing(tmp_path_factory.mktemp("settings"), EMAILS, PARTIES)
    result, _ = build(
        warehouse,
        "--select", "+relationship_activity_daily", "+deal_tracking",
        "--vars", json.dumps({"deal_stage_colors": STAGE_COLORS}),
        environ={"RELANALYTICS_ORG_DOMAINS": DOMAINS},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    return warehouse


def test_addresses_in_the_configured_domains_are_ours(warehouse):
    rows = query(
        warehouse,
        "SELECT record_id, activity_date, activity_kind, activity_count "
        "FROM marts.relationship_activity_daily WHERE record_type = 'opportunity' "
        "AND activity_date IN ('2026-03-24', '2026-03-26')",
    )
    assert sorted((r[0], r[1].isoformat(), *r[2:]) for r in rows) == [
        ("o1", "2026-03-24", "received_email", 1),
        ("o2", "2026-03-26", "received_email", 1),
    ]
    sides = query(
        warehouse,
        "SELECT person_id, side FROM intermediate.int_activity_people_classified "
        "WHERE activity_id IN ('e30', 'e31') AND party_type = 'unresolved' ORDER BY 1",
    )
    assert sides == [("kim@x;y\\z.example", "internal"), ("pat@o'brien.example", "internal")]


def test_stage_colours_are_text_whatever_they_hold(warehouse):
    # o1 is open in the stage develop, expected to close after D.
    assert query(
        warehouse, "SELECT opportunity_id, stage, stage_color, stage_color_hex FROM "
        "marts.deal_tracking"
    ) == [("o1", "develop", "Ocean's blue; \\deep", "#6CB4EE")]  # fmt: skip


def test_run_config_vars_keep_the_shape_of_their_defaults():
    settings = Settings.from_env({"RELANALYTICS_AS_OF": "2026-03-31"})
    taken = dbt_vars(settings, {}, {"deal_stage_colors": STAGE_COLORS, "email_read_minutes": 3})
    assert taken["deal_stage_colors"] == STAGE_COLORS and taken["email_read_minutes"] == 3
    for overrides, problem in [
        ({"email_write_minutes": "5); drop table marts.deal_tracking; --"}, "is not a number"),
        ({"health_signal_weights": {"recency": "1"}}, "'1' is not a number"),
        ({"deal_stage_colors": {"won": {"name": "gold", "hex": 1}}}, "1 is not text"),
        ({"reply_prefixes": "re"}, "'re' is not a list"),
        ({"health_expected_cadence": ["weekly"]}, "is not text"),
        ({"period_day": 30}, "period_day: not a var of it"),
    ]:
        with pytest.raises(dg.Failure, match="Run config vars not taken") as raised:
            dbt_vars(settings, {}, overrides)
        assert problem in str(raised.value)

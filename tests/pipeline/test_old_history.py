"""History before the default first partition day: a 2016–2017 CRM computed as of 2017-12-31.

The landing folder is made here, by hand; the expected figures are worked out in the comments
(the trailing period is the 90 days ending on D: 2017-10-03 to 2017-12-31; the activity history
the 60 days from 2017-11-02).
"""

import datetime as dt
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import project_free_environ

from relanalytics_pipeline.cli.instance import ensure_dagster_home
from relanalytics_pipeline.settings import PROJECT_ROOT

AS_OF = "2017-12-31"
ACTIVITY_COLUMNS = (
    "activity_id,activity_type,subject,direction,status,owner_id,regarding_type,regarding_id,"
    "occurred_at,scheduled_start,scheduled_end,duration_minutes,conversation_id,message_id,"
    "in_reply_to,created_at,modified_at,is_deleted"
)
LANDING = {
    "users/users.csv": """\
user_id,full_name,email,team,manager_id,is_active,modified_at,is_deleted
u1,Ann Seller,ann@acme.example,East,,true,2016-01-01T00:00:00Z,false
""",
    "accounts/accounts.csv": """\
account_id,name,industry,annual_revenue,employees,country,owner_id,modified_at,is_deleted
a1,Globex,Energy,5000000,120,US,u1,2016-01-01T00:00:00Z,false
""",
    "contacts/contacts.csv": """\
contact_id,account_id,full_name,email,job_title,modified_at,is_deleted
c1,a1,Carol Buyer,carol@globex.example,Buyer,2016-01-01T00:00:00Z,false
""",
    "leads/leads.csv": """\
lead_id,full_name,company_name,email,status,owner_id,created_at,modified_at,is_deleted
l1,Liz Lead,Hooli,liz@hooli.example,Open,u1,2017-06-01T00:00:00Z,2017-06-01T00:00:00Z,false
""",
    "opportunities/opportunities.csv": """\
opportunity_id,name,account_id,primary_contact_id,owner_id,product,stage,status,estimated_value,actual_value,estimated_close_date,actual_close_date,created_at,modified_at,record_url,is_deleted
o1,Globex Analytics,a1,c1,u1,Analytics Suite,develop,open,50000,,2018-03-31,,2016-04-01T00:00:00Z,2017-06-01T00:00:00Z,,false
""",
    # e1 (May 2016) is before the trailing period and the 60 days; e3 is after D.
    "activities/activities.csv": ACTIVITY_COLUMNS
    + """
e1,email,Pricing,outgoing,completed,u1,opportunity,o1,2016-05-10T10:00:00Z,,,,k1,<m1@x>,,2016-05-10T10:00:00Z,2016-05-10T10:00:00Z,false
e2,email,RE: Pricing,incoming,completed,u1,opportunity,o1,2017-11-20T09:00:00Z,,,,k1,<m2@x>,<m1@x>,2017-11-20T09:00:00Z,2017-11-20T09:00:00Z,false
m1,appointment,Workshop,,completed,u1,opportunity,o1,2017-12-05T14:00:00Z,2017-12-05T14:00:00Z,2017-12-05T15:00:00Z,60,,,,2017-11-01T00:00:00Z,2017-12-05T15:00:00Z,false
t1,task,Send proposal,,open,u1,opportunity,o1,,2018-01-10T09:00:00Z,2018-01-10T09:30:00Z,,,,,2017-12-06T00:00:00Z,2017-12-06T00:00:00Z,false
e3,email,Follow-up,outgoing,completed,u1,opportunity,o1,2018-01-05T10:00:00Z,,,,k1,<m3@x>,<m2@x>,2018-01-05T10:00:00Z,2018-01-05T10:00:00Z,false
""",
    "activity_parties/activity_parties.csv": """\
activity_id,role,party_type,party_id,address
e1,from,user,u1,ann@acme.example
e1,to,contact,c1,carol@globex.example
e2,from,contact,c1,carol@globex.example
e2,to,user,u1,ann@acme.example
m1,organizer,user,u1,ann@acme.example
m1,required_attendee,contact,c1,carol@globex.example
t1,owner,user,u1,ann@acme.example
e3,from,user,u1,ann@acme.example
e3,to,contact,c1,carol@globex.example
""",
}
KPIS = (
    "past_activities", "emails_sent", "emails_received", "meetings", "customer_initiated",
    "team_initiated", "upcoming_activities", "last_contacted_at", "last_contacted_by",
    "next_contact_at", "email_send_ratio", "customer_email_send_ratio",
)  # fmt: skip
M1 = (dt.datetime(2017, 12, 5, 14), "u1")  # the workshop, our latest contact
# o1: e1, e2, m1 done (Ann organised m1, Carol attended: a meeting we initiated), t1 upcoming (a
# task: no next contact). a1 holds its opportunity's activities. c1 took part in e1, e2, m1.
# In the trailing period only e2 and m1: nothing sent, so no customer send ratio.
EXPECTED = {
    ("opportunity", "o1", "all"): (3, 1, 1, 1, 1, 2, 1, *M1, None, 1.0, 1.0),
    ("opportunity", "o1", "trailing"): (2, 0, 1, 1, 1, 1, 1, *M1, None, 0.0, None),
    ("account", "a1", "all"): (3, 1, 1, 1, 1, 2, 1, *M1, None, 1.0, 1.0),
    ("account", "a1", "trailing"): (2, 0, 1, 1, 1, 1, 1, *M1, None, 0.0, None),
    ("contact", "c1", "all"): (3, 1, 1, 1, 1, 2, 0, *M1, None, 1.0, 1.0),
    ("contact", "c1", "trailing"): (2, 0, 1, 1, 1, 1, 0, *M1, None, 0.0, None),
}


@pytest.fixture(scope="module")
def run_of_2017(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("old-history")
    for name, text in LANDING.items():
        (tmp_path / "landing" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "landing" / name).write_text(text)
    home = tmp_path / "home"
    environ = project_free_environ(
        RELANALYTICS_HOME=str(home),
        RELANALYTICS_LANDING_DIR=str(tmp_path / "landing"),
        RELANALYTICS_FIRST_DAY="2016-01-01",
        # Unused by a run of a partition (docs/nights.md): even a wrong value changes nothing.
        RELANALYTICS_AS_OF="2026-13-45",
        DAGSTER_HOME=str(ensure_dagster_home(home / "dagster")),
    )
    command = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize",
               "-m", "relanalytics_pipeline.definitions", "--select", "*", "--partition", AS_OF]  # fmt: skip
    result = subprocess.run(command, env=environ, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return home


def published(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_the_published_marts_hold_the_2017_figures(run_of_2017):
    rows = published(
        run_of_2017,
        f"SELECT record_type, record_id, period, {', '.join(KPIS)} FROM relationship_kpis "
        "WHERE record_id IN ('o1', 'a1', 'c1')",
    )
    assert {row[:3]: row[3:] for row in rows} == EXPECTED
    assert published(
        run_of_2017,
        "SELECT activity_date, activity_kind, activity_count FROM relationship_activity_daily "
        "WHERE record_id = 'o1' ORDER BY activity_date",
    ) == [(dt.date(2017, 11, 20), "received_email", 1), (dt.date(2017, 12, 5), "sent_meeting_invite", 1)]  # fmt: skip
    assert published(run_of_2017, "SELECT DISTINCT as_of_date FROM relationship_health") == [
        (dt.date(2017, 12, 31),)
    ]
    assert published(run_of_2017, "SELECT DISTINCT as_of_date FROM _publication") == [
        (dt.date(2017, 12, 31),)
    ]


def test_published_files_and_the_model_are_private_to_owner_and_group(run_of_2017):
    home = run_of_2017
    files = [home / "published" / "marts.duckdb",
             *(home / "published" / "parquet" / "current").resolve().rglob("*.*"),
             home / "models" / "learn" / "similar_deals_model"]  # fmt: skip
    assert len(files) > 3
    assert {path: stat.S_IMODE(path.stat().st_mode) for path in files} == dict.fromkeys(
        files, 0o640
    )
    folders = [(home / "published" / "parquet" / "current").resolve(),
               home / "published" / "parquet", home / "models" / "learn", home / "models"]  # fmt: skip
    assert {path: stat.S_IMODE(path.stat().st_mode) for path in folders} == dict.fromkeys(
        folders, 0o750
    )

"""One small CRM written once as Python data and rendered in the three landing shapes (canonical
files, a Dataverse export, a Salesforce export): each gives the same relationship marts.

Ids follow Salesforce's key prefixes (005 user, 001 account, 003 contact, 006 opportunity) so one
set of ids serves all three shapes. Each shape carries one row that is no canonical row by
design: a Dataverse party of mask 8 (regarding) and a Salesforce email Task that an EmailMessage
already carries; both are skipped and counted.
"""

import csv
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from unittest import mock

import dagster as dg
import pytest
from conftest import query

from relanalytics_pipeline.settings import Settings

AS_OF = "2026-03-31"
MODIFIED = "2026-03-31T08:00:00Z"
USERS = [{"id": "005U1", "name": "Ann Seller", "email": "ann@acme.example", "team": "Sales"}]
ACCOUNT = {"id": "001A1", "name": "Globex", "industry": "Manufacturing", "employees": "250"}
CONTACT = {"id": "003C1", "account": "001A1", "name": "Carol Buyer",
           "email": "carol@globex.example", "title": "Buyer"}  # fmt: skip
OPPORTUNITY = {"id": "006O1", "name": "Globex renewal", "stage": "develop", "value": "50000.00",
               "close": "2026-04-30", "created": "2026-01-05T09:00:00Z"}  # fmt: skip
# (id, type, direction, status, occurred_at, scheduled start, end, minutes, subject, parties)
# parties: (role, id or None, address)
ACTIVITIES = [
    ("e1", "email", "outgoing", "completed", "2026-03-02T09:00:00Z", None, None, None,
     "Renewal terms", [("from", "005U1", None), ("to", "003C1", None)]),
    # Carol's answer, her party known only by address (resolved to her: by the canonical
    # producer, by dbt in the exports).
    ("e2", "email", "incoming", "completed", "2026-03-03T10:00:00Z", None, None, None,
     "RE: Renewal terms", [("from", None, "carol@globex.example"), ("to", "005U1", None)]),
    ("m1", "appointment", None, "completed", "2026-03-10T14:00:00Z", "2026-03-10T14:00:00Z",
     "2026-03-10T15:00:00Z", "60", "Review",
     [("required_attendee", "005U1", None), ("required_attendee", "003C1", None)]),
    ("p1", "phone_call", "outgoing", "completed", "2026-03-12T11:00:00Z", None, None, "12",
     "Follow-up call", [("from", "005U1", None), ("to", "003C1", None)]),
    ("t1", "task", None, "open", None, "2026-04-05T00:00:00Z", None, None, "Send contract", []),
]  # fmt: skip
MARTS = {
    # mart: columns an export does not carry (left out of the comparison)
    "relationship_kpis": (),
    "relationship_health": ("record_url",),
    "relationship_activity_daily": (),
    "record_contacts": (),
    "record_colleagues": (),
}


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def canonical_parties(parties):
    """A canonical file's producer resolves a party it knows by address (the raw contract); the
    exports below leave that to the pipeline."""
    known = {CONTACT["email"]: CONTACT["id"], **{u["email"]: u["id"] for u in USERS}}
    return [(role, pid or known.get(address), address) for role, pid, address in parties]


def write_canonical(landing: Path) -> None:
    write_csv(landing / "users" / "u.csv", [
        {"user_id": u["id"], "full_name": u["name"], "email": u["email"], "team": u["team"],
         "is_active": "true", "modified_at": MODIFIED} for u in USERS])  # fmt: skip
    write_csv(landing / "accounts" / "a.csv", [
        {"account_id": ACCOUNT["id"], "name": ACCOUNT["name"], "industry": ACCOUNT["industry"],
         "employees": ACCOUNT["employees"], "owner_id": "005U1", "modified_at": MODIFIED}])  # fmt: skip
    write_csv(landing / "contacts" / "c.csv", [
        {"contact_id": CONTACT["id"], "account_id": CONTACT["account"], "full_name": CONTACT["name"],
         "email": CONTACT["email"], "job_title": CONTACT["title"], "modified_at": MODIFIED}])  # fmt: skip
    o = OPPORTUNITY
    write_csv(landing / "opportunities" / "o.csv", [
        {"opportunity_id": o["id"], "name": o["name"], "account_id": ACCOUNT["id"],
         "primary_contact_id": CONTACT["id"], "owner_id": "005U1", "stage": o["stage"],
         "status": "open", "estimated_value": o["value"], "estimated_close_date": o["close"],
         "created_at": o["created"], "modified_at": MODIFIED}])  # fmt: skip
    write_csv(landing / "activities" / "a.csv", [
        {"activity_id": a, "activity_type": kind, "subject": subject, "direction": direction or "",
         "status": status, "owner_id": "005U1", "regarding_type": "opportunity",
         "regarding_id": o["id"], "occurred_at": occurred or "", "scheduled_start": start or "",
         "scheduled_end": end or "", "duration_minutes": minutes or "",
         "message_id": a if kind == "email" else "", "in_reply_to": "e1" if a == "e2" else "",
         "modified_at": MODIFIED}
        for a, kind, direction, status, occurred, start, end, minutes, subject, _ in ACTIVITIES
    ])  # fmt: skip
    write_csv(landing / "activity_parties" / "p.csv", [
        {"activity_id": a, "role": role,
         "party_type": {"005": "user", "003": "contact"}[pid[:3]] if pid else "unresolved",
         "party_id": pid or "", "address": address or ""}
        for a, *_, parties in ACTIVITIES for role, pid, address in canonical_parties(parties)
    ])  # fmt: skip


def _page(path: Path, table: str, records: list[dict], next_link: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    page = {"@odata.context": f"https://org.example/api/data/v9.2/$metadata#{table}s",
            "value": records}  # fmt: skip
    if next_link:
        page["@odata.nextLink"] = f"https://org.example/api/data/v9.2/{table}s?$skiptoken=x"
    path.write_text(json.dumps(page), encoding="utf-8")


LOOKUP = "@Microsoft.Dynamics.CRM.lookuplogicalname"
LABEL = "@OData.Community.Display.V1.FormattedValue"
STATES = {"open": 0, "completed": 1}
DV_TABLES = {"email": "email", "appointment": "appointment", "phone_call": "phonecall",
             "task": "task"}  # fmt: skip
MASKS = {"from": 1, "to": 2, "required_attendee": 5}


def write_dataverse(landing: Path) -> None:
    root = landing / "dataverse"
    _page(root / "systemuser" / "page-0001.json", "systemuser", [
        {"systemuserid": u["id"], "fullname": u["name"], "internalemailaddress": u["email"],
         "_businessunitid_value": "bu1", f"_businessunitid_value{LABEL}": u["team"],
         "isdisabled": False, "modifiedon": MODIFIED} for u in USERS])  # fmt: skip
    # Synapse Link CSV with logical names: the industry code's label from the formatted value is
    # absent, so the account travels as a Web API page that carries it.
    _page(root / "account" / "page-0001.json", "account", [
        {"accountid": ACCOUNT["id"], "name": ACCOUNT["name"], "industrycode": 12,
         f"industrycode{LABEL}": ACCOUNT["industry"], "numberofemployees": 250,
         "_ownerid_value": "005U1", f"_ownerid_value{LOOKUP}": "systemuser",
         "modifiedon": MODIFIED}])  # fmt: skip
    write_csv(root / "contact" / "contacts.csv", [
        {"contactid": CONTACT["id"], "parentcustomerid": CONTACT["account"],
         "parentcustomeridtype": "account", "fullname": CONTACT["name"],
         "emailaddress1": CONTACT["email"], "jobtitle": CONTACT["title"],
         "modifiedon": MODIFIED}])  # fmt: skip
    o = OPPORTUNITY
    _page(root / "opportunity" / "page-0001.json", "opportunity", [
        {"opportunityid": o["id"], "name": o["name"], "_parentaccountid_value": ACCOUNT["id"],
         "_parentcontactid_value": CONTACT["id"], "_ownerid_value": "005U1", "salesstage": 1,
         "statecode": 0, "estimatedvalue": float(o["value"]), "estimatedclosedate": o["close"],
         "createdon": o["created"], "modifiedon": MODIFIED}])  # fmt: skip
    parties = []
    for a, kind, direction, status, occurred, start, end, minutes, subject, people in ACTIVITIES:
        record = {
            "activityid": a, "subject": subject, "statecode": STATES[status],
            "_ownerid_value": "005U1", "_regardingobjectid_value": o["id"],
            f"_regardingobjectid_value{LOOKUP}": "opportunity", "scheduledstart": start,
            "scheduledend": end, "actualdurationminutes": int(minutes) if minutes else None,
            "modifiedon": MODIFIED,
        }  # fmt: skip
        if kind == "email":
            record |= {"directioncode": direction == "outgoing", "senton": occurred,
                       "messageid": a, "inreplyto": "e1" if a == "e2" else None}  # fmt: skip
        elif kind == "phone_call":
            record |= {"directioncode": direction == "outgoing", "actualstart": occurred}
        elif kind == "appointment":
            record |= {"actualstart": occurred}
        else:
            record |= {"actualend": occurred}
        _page(root / DV_TABLES[kind] / f"{a}.json", DV_TABLES[kind], [record])
        for role, pid, address in people:
            party = {"_activityid_value": a, "participationtypemask": MASKS[role],
                     "addressused": address}  # fmt: skip
            if pid:
                party |= {"_partyid_value": pid, f"_partyid_value{LOOKUP}":
                          {"005": "systemuser", "003": "contact"}[pid[:3]]}  # fmt: skip
            parties.append(party)
    # The regarding party (mask 8) of e1: skipped and counted.
    parties.append({"_activityid_value": "e1", "participationtypemask": 8,
                    "_partyid_value": o["id"], f"_partyid_value{LOOKUP}": "opportunity"})  # fmt: skip
    # Three pages with a nextLink on all but the last; e1's parties span the first two.
    _page(root / "activityparty" / "page-0001.json", "activityparty", parties[:1], True)
    _page(root / "activityparty" / "page-0002.json", "activityparty", parties[1:4], True)
    _page(root / "activityparty" / "page-0003.json", "activityparty", parties[4:])


def write_salesforce(landing: Path) -> None:
    root = landing / "salesforce"
    write_csv(root / "User" / "User.csv", [
        {"Id": u["id"], "Name": u["name"], "Email": u["email"], "Department": u["team"],
         "IsActive": "true", "LastModifiedDate": MODIFIED} for u in USERS])  # fmt: skip
    write_csv(root / "Account" / "Account.csv", [
        {"Id": ACCOUNT["id"], "Name": ACCOUNT["name"], "Industry": ACCOUNT["industry"],
         "NumberOfEmployees": ACCOUNT["employees"], "OwnerId": "005U1",
         "LastModifiedDate": MODIFIED, "IsDeleted": "false"}])  # fmt: skip
    write_csv(root / "Contact" / "Contact.csv", [
        {"Id": CONTACT["id"], "AccountId": CONTACT["account"], "FirstName": "Carol",
         "LastName": "Buyer", "Email": CONTACT["email"], "Title": CONTACT["title"],
         "LastModifiedDate": MODIFIED}])  # fmt: skip
    o = OPPORTUNITY
    write_csv(root / "Opportunity" / "Opportunity.csv", [
        {"Id": o["id"], "Name": o["name"], "AccountId": ACCOUNT["id"], "ContactId": CONTACT["id"],
         "OwnerId": "005U1", "StageName": "Needs Analysis", "IsClosed": "false", "IsWon": "false",
         "Amount": o["value"], "CloseDate": o["close"], "CreatedDate": o["created"],
         "LastModifiedDate": MODIFIED}])  # fmt: skip
    emails, relations, tasks, events, attendees = [], [], [], [], []
    for a, kind, direction, status, occurred, start, end, minutes, subject, people in ACTIVITIES:
        common = {"Id": a, "Subject": subject, "LastModifiedDate": MODIFIED}
        if kind == "email":
            emails.append({**common, "ActivityId": f"00T{a}", "Incoming": direction == "incoming",
                           "MessageDate": occurred, "Status": "3", "RelatedToId": o["id"],
                           "CreatedById": "005U1", "ThreadIdentifier": "",
                           "ReplyToEmailMessageId": "e1" if a == "e2" else ""})  # fmt: skip
            relations += [
                {"EmailMessageId": a, "RelationId": pid or "", "RelationAddress": address or "",
                 "RelationType": {"from": "FromAddress", "to": "ToAddress"}[role]}
                for role, pid, address in people
            ]  # fmt: skip
            # The same email as Salesforce also logs it: a Task of subtype Email.
            tasks.append({**common, "Id": f"00T{a}", "TaskSubtype": "Email", "Status": "Completed",
                          "OwnerId": "005U1", "WhatId": o["id"]})  # fmt: skip
        elif kind == "appointment":
            events.append({**common, "OwnerId": "005U1", "WhatId": o["id"], "StartDateTime": start,
                           "EndDateTime": end, "DurationInMinutes": minutes})  # fmt: skip
            attendees += [{"EventId": a, "RelationId": pid, "IsInvitee": "true", "IsWhat": "false"}
                          for _, pid, _ in people]  # fmt: skip
            attendees.append({"EventId": a, "RelationId": o["id"], "IsInvitee": "false",
                              "IsWhat": "true"})  # fmt: skip
        else:
            call = kind == "phone_call"
            tasks.append({**common, "TaskSubtype": "Call" if call else "Task",
                          "Status": "Completed" if status == "completed" else "Not Started",
                          "OwnerId": "005U1", "WhatId": o["id"],
                          "WhoId": CONTACT["id"] if call else "",
                          "CallType": "Outbound" if call else "",
                          "CallDurationInSeconds": int(minutes) * 60 if minutes else "",
                          "CompletedDateTime": occurred or "",
                          "ActivityDate": start[:10] if start else ""})  # fmt: skip
    write_csv(root / "EmailMessage" / "EmailMessage.csv", emails)
    write_csv(root / "EmailMessageRelation" / "EmailMessageRelation.csv", relations)
    fields = list(dict.fromkeys(k for t in tasks for k in t))
    write_csv(root / "Task" / "Task.csv", [{k: t.get(k, "") for k in fields} for t in tasks])
    write_csv(root / "Event" / "Event.csv", events)
    write_csv(root / "EventRelation" / "EventRelation.csv", attendees)


SHAPES = {"canonical": write_canonical, "dataverse": write_dataverse,
          "salesforce": write_salesforce}  # fmt: skip


def ingest(folder: Path) -> Settings:
    """One in-process Dagster run of every ingest asset (the exports and `crm/<entity>`)."""
    from relanalytics_pipeline.definitions import defs

    environ = {"RELANALYTICS_HOME": str(folder / "home"),
               "RELANALYTICS_LANDING_DIR": str(folder / "landing"),
               "RELANALYTICS_AS_OF": AS_OF, "RELANALYTICS_ORG_DOMAINS": ""}  # fmt: skip
    with mock.patch.dict(os.environ, environ):
        result = dg.materialize(
            defs.assets,
            resources=defs.resources,
            # The ingest checks (great-expectations) are tested elsewhere.
            selection=dg.AssetSelection.groups("ingest").without_checks(),
            partition_key=AS_OF,
        )
        assert result.success
        return Settings.from_env()


def build_marts(settings: dict[str, Settings], target: Path) -> None:
    """dbt builds the compared marts and what they read in each shape's warehouse, with the vars
    the dbt asset passes. In this process, the project parsed once: the three builds would
    otherwise each spend most of their time parsing the project again. dbt's own tests and unit
    tests run in the end-to-end tests; this one compares what the marts hold."""
    from dbt.cli.main import dbtRunner

    from relanalytics_pipeline.defs.transform.assets import dbt_vars
    from relanalytics_pipeline.settings import DBT_PROJECT_DIR, environ_overrides

    where = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
             "--target-path", str(target), "--quiet"]  # fmt: skip
    parsed = dbtRunner().invoke(["parse", *where])
    assert parsed.success, parsed.exception
    runner = dbtRunner(manifest=parsed.result)
    for shape, shape_settings in settings.items():
        build_vars = dbt_vars(shape_settings, {"dagster/partition": AS_OF})
        with environ_overrides(shape_settings.as_environ()):
            built = runner.invoke(
                [
                    "run",
                    "--select",
                    *(f"+{m}" for m in MARTS),
                    "--vars",
                    json.dumps(build_vars),
                    *where,
                ]  # fmt: skip
            )
        assert built.success, (shape, built.exception)


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory) -> dict[str, Path]:
    settings = {}
    for shape, write in SHAPES.items():
        folder = tmp_path_factory.mktemp(shape)
        write(folder / "landing")
        settings[shape] = ingest(folder)
    # In a process of its own: dbt-duckdb keeps the last warehouse open until its process ends.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as dbt_process:
        dbt_process.submit(build_marts, settings, tmp_path_factory.mktemp("dbt-target")).result()
    return {shape: s.warehouse for shape, s in settings.items()}


def mart_rows(warehouse: Path, mart: str) -> list[tuple]:
    columns = [
        name
        for (name,) in query(
            warehouse,
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'marts' "
            "AND table_name = ? ORDER BY column_index",
            [mart],
        )
        if name not in MARTS[mart]
    ]
    return sorted(query(warehouse, f"SELECT {', '.join(columns)} FROM marts.{mart}"), key=repr)


@pytest.mark.parametrize("mart", MARTS)
def test_every_shape_gives_the_same_mart(warehouses, mart):
    canonical = mart_rows(warehouses["canonical"], mart)
    assert canonical, f"{mart} is empty: the scenario exercises nothing"
    assert mart_rows(warehouses["dataverse"], mart) == canonical
    assert mart_rows(warehouses["salesforce"], mart) == canonical


def test_the_scenario_reaches_the_marts(warehouses):
    """Worked out by hand from ACTIVITIES: e1, m1, p1 ours (e2 the customer's answer after 25 h),
    t1 next; Carol resolved from her address takes part in e1, e2, m1 and p1."""
    rows = query(
        warehouses["canonical"],
        "SELECT past_activities, emails_sent, emails_received, meetings, calls_outgoing, "
        "upcoming_activities, customer_response_rate, customer_response_hours "
        "FROM marts.relationship_kpis WHERE record_id = '006O1' AND period = 'all'",
    )
    assert rows == [(4, 1, 1, 1, 1, 1, 1.0, 25.0)]
    assert query(
        warehouses["canonical"],
        "SELECT contact_id, interactions FROM marts.record_contacts WHERE record_id = '006O1'",
    ) == [("003C1", 4)]


def test_skipped_rows_are_counted_not_quarantined(warehouses):
    # Dataverse: e1's regarding party (mask 8). Salesforce: the two email Tasks; as parties, the
    # three Task rows that are no call (owner and person each: 6); the Event's IsWhat relation.
    for shape, skipped in (("canonical", 0), ("dataverse", 1), ("salesforce", 2 + 6 + 1)):
        files = query(
            warehouses[shape],
            "SELECT SUM(rows_read), SUM(rows_loaded + rows_duplicate + rows_quarantined), "
            "SUM(rows_skipped), SUM(rows_quarantined) FROM ingest.files",
        )
        ((read, kept, skipped_rows, quarantined),) = files
        assert (read - kept, skipped_rows, quarantined) == (skipped, skipped, 0), shape

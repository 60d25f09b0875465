"""Every export mapping rule on the vendor-shaped fixtures (tests/fixtures/dataverse, salesforce;
their READMEs name the documentation each file follows). Expected values are read off the
fixture files and the vendors' documented code meanings by hand; the mapping runs as it does in
the pipeline (`map_rows`: one DuckDB SELECT per table), without Dagster or a warehouse except
where the canonical ingest itself is the subject (paging, quarantine of bad values)."""

import csv
import json
from pathlib import Path

import pytest
from conftest import query

from relanalytics_pipeline.defs.ingest.exports import dataverse, salesforce
from relanalytics_pipeline.defs.ingest.exports.assets import export_settings
from relanalytics_pipeline.defs.ingest.exports.mapping import (
    ExportSettings,
    ingest_export,
    load_maps,
    map_rows,
)
from relanalytics_pipeline.settings import Settings

FIXTURES = Path(__file__).parents[1] / "fixtures"
DEFAULTS = {dataverse.SOURCE: dataverse.DEFAULT_MAPS, salesforce.SOURCE: salesforce.DEFAULT_MAPS}
DV_URL, SF_URL = "https://contoso.crm.dynamics.com/", "https://contoso.lightning.force.com"
SETTINGS = ExportSettings(load_maps(DEFAULTS, None), {"dataverse": DV_URL, "salesforce": SF_URL})
EMAIL_TASKS, _ = salesforce.email_task_ids(FIXTURES)
TABLES = {
    (t.source, t.name, t.entity): t for t in (*dataverse.TABLES, *salesforce.tables(EMAIL_TASKS))
}
READERS = {"dataverse": dataverse.read_file, "salesforce": salesforce.read_file}


def dv(n: int, prefix: str) -> str:
    """A fixture's Dataverse id: `<prefix>000000-0000-4000-8000-00000000000<n>`."""
    return f"{prefix}000000-0000-4000-8000-{n:012d}"


ANN, BEN = dv(1, "5e"), dv(2, "5e")
ACC1, ACC2 = dv(1, "ac"), dv(2, "ac")
C1, C2 = dv(1, "c0"), dv(2, "c0")
L1, O1 = dv(1, "1e"), dv(1, "0b")
E1, E2, E3, E4 = (dv(n, "e0") for n in range(1, 5))
M1, M2, P1, P2 = dv(1, "a7"), dv(2, "a7"), dv(1, "ca"), dv(2, "ca")
THREAD = "01DC8B5E2A7F3C4D5E6F708192A3B4C5D6E7F8091A2B"  # conversationindex's 22-byte header
SF_ANN, SF_BEN = "005Hn00000A1b2CIAR", "005Hn00000A1b2DIAR"
SF_ACC1, SF_ACC2 = "001Hn00001XyZaAIAV", "001Hn00001XyZbAIAV"
SF_C1, SF_L1 = "003Hn00002Q9r1AIAR", "00QHn00000L7p1AMAR"
SF_O = [f"006Hn00000Op00{n}IAA" for n in range(1, 7)]
SF_T = [f"00THn00000Tk00{n}AAA" for n in range(1, 8)]
SF_EV1, SF_EV2 = "00UHn00000Ev001AAA", "00UHn00000Ev002AAA"
SF_EM = [f"02sHn00000Em00{n}AAA" for n in range(1, 5)]


def mapped(source, name, entity, settings=SETTINGS, file=None):
    """(rows as dicts of the given columns' values, {row number: reason}, rows skipped)."""
    table = TABLES[(source, name, entity)]
    folder = FIXTURES / source / name
    path = folder / file if file else next(p for p in sorted(folder.iterdir()))
    result = map_rows(table, READERS[source](path), settings)
    rejected = {r.row_number: r.reason for r in result.rejected}
    return result.table.to_pylist(), rejected, result.rows_skipped


def columns(rows, *names):
    return [tuple(r[n] for n in names) for r in rows]


def overridden(tmp_path, overrides) -> ExportSettings:
    """The settings as the pipeline builds them from RELANALYTICS_EXPORT_MAPS and the URLs."""
    path = tmp_path / "maps.json"
    path.write_text(json.dumps(overrides), encoding="utf-8")
    env = {"RELANALYTICS_HOME": str(tmp_path), "RELANALYTICS_EXPORT_MAPS": str(path),
           "RELANALYTICS_DATAVERSE_URL": DV_URL, "RELANALYTICS_SALESFORCE_URL": SF_URL}  # fmt: skip
    return export_settings(Settings.from_env(env))


# --- Dataverse ----------------------------------------------------------------------------------


def test_dataverse_users_team_from_the_formatted_business_unit_and_active_from_isdisabled():
    rows, rejected, _ = mapped("dataverse", "systemuser", "users")
    assert columns(rows, "user_id", "full_name", "email", "team", "manager_id", "is_active") == [
        (ANN, "Ann Seller", "ann@contoso.example", "Sales", None, "true"),
        (BEN, "Ben Manager", "ben@contoso.example", "Sales", ANN, "false"),
    ]
    assert rejected == {}


def test_dataverse_industry_from_its_formatted_value_else_the_map_else_the_code(tmp_path):
    rows, _, _ = mapped("dataverse", "account", "accounts")
    assert columns(rows, "account_id", "industry", "parent_account_id", "owner_id") == [
        (ACC1, "Durable Manufacturing", None, ANN),  # the label the CRM shows
        (ACC2, "7", ACC1, BEN),  # no label, no map entry: the code
    ]
    settings = overridden(tmp_path, {"dataverse": {"industry": {"7": "Consulting", "12": "x"}}})
    rows, _, _ = mapped("dataverse", "account", "accounts", settings)
    assert columns(rows, "industry") == [("Durable Manufacturing",), ("Consulting",)]


def test_dataverse_csv_contacts_account_only_when_the_parent_customer_is_an_account():
    rows, rejected, _ = mapped("dataverse", "contact", "contacts")
    assert columns(rows, "contact_id", "account_id", "email", "is_deleted") == [
        (C1, ACC1, "carol@fabrikam.example", None),
        (C2, None, "dan@fabrikam.example", None),  # parent customer is a contact
        (dv(3, "c0"), ACC2, "eve@fabrikam.example", "True"),  # Synapse Link's IsDelete
    ]
    assert rejected == {}


def test_dataverse_lead_statecode():
    rows, _, _ = mapped("dataverse", "lead", "leads")
    assert columns(rows, "status") == [("open",), ("qualified",), ("disqualified",)]


def test_dataverse_opportunity_statecode_sales_stage_account_and_record_url():
    rows, rejected, _ = mapped("dataverse", "opportunity", "opportunities")
    assert columns(rows, "opportunity_id", "status", "stage", "account_id", "actual_value") == [
        (O1, "open", "develop", ACC1, None),  # statecode 0, salesstage 1
        (dv(2, "0b"), "won", "close", ACC2, "42000.0"),  # 1, 3; account from the customer
        (dv(3, "0b"), "lost", "develop", None, None),  # 2; no salesstage: stepname 2-Develop
        (dv(4, "0b"), "open", "qualify", ACC1, None),  # 0, 0
    ]
    assert rows[0]["record_url"] == (
        f"https://contoso.crm.dynamics.com/main.aspx?etn=opportunity&id={O1}&pagetype=entityrecord"
    )
    assert rejected == {
        5: "salesstage '7' is not a known sales stage (0 qualify, 1 develop, 2 propose, 3 close)"
    }


def test_dataverse_sales_stage_map_is_configurable_map_by_map(tmp_path):
    # The override replaces the whole map: 7 is known now, 0 no longer.
    stages = {"1": "develop", "2": "propose", "3": "close", "7": "close"}
    settings = overridden(tmp_path, {"dataverse": {"opportunity_stage": stages}})
    rows, rejected, _ = mapped("dataverse", "opportunity", "opportunities", settings)
    assert columns(rows, "stage") == [("develop",), ("close",), ("develop",), ("close",)]
    assert list(rejected) == [4]
    assert rejected[4].startswith("salesstage '0' is not a known sales stage (1 develop, ")


def test_without_a_base_address_there_is_no_record_url():
    rows, _, _ = mapped("dataverse", "opportunity", "opportunities", ExportSettings(SETTINGS.maps))
    assert {r["record_url"] for r in rows} == {None}


def test_dataverse_emails_statecode_directioncode_thread_and_regarding():
    rows, rejected, _ = mapped("dataverse", "email", "activities")
    names = ("activity_id", "activity_type", "direction", "status", "regarding_type",
             "regarding_id", "occurred_at", "conversation_id", "message_id", "in_reply_to")  # fmt: skip
    assert columns(rows, *names) == [
        (E1, "email", "outgoing", "completed", "opportunity", O1, "2026-03-02T09:00:00Z", THREAD,
         "<renewal-1@contoso.example>", None),
        # Not sent by us: no senton, the completion time instead; a child of E1's thread.
        (E2, "email", "incoming", "completed", "account", ACC1, "2026-03-03T10:00:00Z", THREAD,
         "<reply-1@fabrikam.example>", "<renewal-1@contoso.example>"),
        (E3, "email", "outgoing", "open", "lead", L1, None, None, None, None),
        # Canceled: it did not happen, whatever its actualend.
        (E4, "email", "outgoing", "canceled", "contact", C1, None, None, None, None),
    ]  # fmt: skip
    assert rejected == {
        5: "regardingobjectid's table 'incident' is not a known regarding table (opportunity "
        "opportunity, lead lead, account account, contact contact)"
    }


def test_dataverse_appointments_scheduled_is_open_and_calls_have_a_direction():
    rows, _, _ = mapped("dataverse", "appointment", "activities")
    names = ("activity_id", "activity_type", "direction", "status", "occurred_at",
             "scheduled_start", "duration_minutes")  # fmt: skip
    assert columns(rows, *names) == [
        (M1, "appointment", None, "completed", "2026-03-10T14:00:00Z", "2026-03-10T14:00:00Z",
         "60"),
        (M2, "appointment", None, "open", None, "2026-04-07T10:00:00Z", None),  # statecode 3
    ]  # fmt: skip
    rows, _, _ = mapped("dataverse", "phonecall", "activities")
    assert columns(rows, *names) == [
        (P1, "phone_call", "outgoing", "completed", "2026-03-12T11:00:00Z", None, "15"),
        (P2, "phone_call", "incoming", "open", None, "2026-04-02T09:00:00Z", None),
    ]


def test_dataverse_statecodes_of_each_table():
    """Activities 0 open, 1 completed, 2 canceled; appointments also 3 scheduled (open)."""
    activity, appointment = (
        SETTINGS.codes("dataverse", "activity_status"),
        SETTINGS.codes("dataverse", "appointment_status"),
    )
    assert activity == {"0": "open", "1": "completed", "2": "canceled"}
    assert appointment == {**activity, "3": "open"}
    assert SETTINGS.codes("dataverse", "opportunity_status") == {"0": "open", "1": "won",
                                                                 "2": "lost"}  # fmt: skip


PARTY = ("activity_id", "role", "party_type", "party_id", "address")


@pytest.mark.parametrize(
    ("page", "expected", "rejected", "skipped"),
    [
        ("page-0001.json", [(E1, "from", "user", ANN, "ann@contoso.example"),
                            (E1, "to", "contact", C1, "carol@fabrikam.example")], {}, 1),  # 8
        ("page-0002.json", [(E1, "cc", "unresolved", None, "someone@partner.example"),
                            (E1, "bcc", "user", BEN, "ben@contoso.example"),
                            (M1, "required_attendee", "contact", C1, "carol@fabrikam.example"),
                            (M1, "optional_attendee", "contact", C2, "dan@fabrikam.example"),
                            (M1, "organizer", "user", ANN, "ann@contoso.example")], {}, 0),
        ("page-0003.json", [(M1, "owner", "user", ANN, None),
                            (P1, "from", "user", ANN, None), (P1, "to", "contact", C1, None),
                            (E3, "to", "lead", L1, "liam@northwind.example")],
         {6: "partyid's table 'queue' is not a known party table (systemuser user, contact "
             "contact, lead lead, account account)",
          7: "participationtypemask '12' is not a known participation type mask (1 from, 2 to, "
             "3 cc, 4 bcc, 5 required_attendee, 6 optional_attendee, 7 organizer, 9 owner)"},
         2),  # masks 10 and 11
    ],
)  # fmt: skip
def test_dataverse_participation_type_masks(page, expected, rejected, skipped):
    """Masks 1-7 and 9 are roles; 8 regarding, 10 resource, 11 customer are skipped and counted;
    any other mask, or a party of a table that is no person, is quarantined with its reason."""
    rows, reasons, skipped_rows = mapped(
        "dataverse", "activityparty", "activity_parties", file=page
    )
    assert (columns(rows, *PARTY), reasons, skipped_rows) == (expected, rejected, skipped)


def test_dataverse_pages_load_one_after_another_and_a_missing_table_loads_nothing(tmp_path):
    """The three activityparty pages (linked by @odata.nextLink) load in name order into one
    table: E1's parties span the first two pages. The export has no `task` table."""
    warehouse = tmp_path / "w.duckdb"
    for name in ("email", "appointment", "phonecall", "task", "activityparty"):
        entity = "activity_parties" if name == "activityparty" else "activities"
        report = ingest_export(warehouse, FIXTURES, TABLES[("dataverse", name, entity)],
                               dataverse.read_file, SETTINGS, "r1")  # fmt: skip
        if name == "task":
            assert report.files == []
    counts = query(
        warehouse,
        "SELECT source_file, rows_read, rows_loaded, rows_skipped, rows_quarantined "
        "FROM ingest.files WHERE entity = 'activity_parties' ORDER BY source_file",
    )
    assert counts == [
        ("dataverse/activityparty/page-0001.json", 3, 2, 1, 0),
        ("dataverse/activityparty/page-0002.json", 5, 5, 0, 0),
        ("dataverse/activityparty/page-0003.json", 8, 4, 2, 2),
    ]
    assert query(
        warehouse,
        "SELECT role, _source_file FROM crm.activity_parties WHERE activity_id = ? "
        "ORDER BY _source_file, _row_number",
        [E1],
    ) == [
        ("from", "dataverse/activityparty/page-0001.json"),
        ("to", "dataverse/activityparty/page-0001.json"),
        ("cc", "dataverse/activityparty/page-0002.json"),
        ("bcc", "dataverse/activityparty/page-0002.json"),
    ]


# --- Salesforce ---------------------------------------------------------------------------------


def test_salesforce_users_accounts_contacts():
    rows, _, _ = mapped("salesforce", "User", "users")
    assert columns(rows, "user_id", "team", "manager_id", "is_active") == [
        (SF_ANN, "Sales", None, "true"), (SF_BEN, "Sales", SF_ANN, "false")]  # fmt: skip
    rows, _, _ = mapped("salesforce", "Account", "accounts")
    assert columns(rows, "account_id", "industry", "annual_revenue", "parent_account_id") == [
        (SF_ACC1, "Manufacturing", "2500000", None), (SF_ACC2, "Consulting", None, SF_ACC1)]  # fmt: skip
    rows, _, _ = mapped("salesforce", "Contact", "contacts")
    # Dan's Name is empty in the export: FirstName LastName.
    assert columns(rows, "full_name", "account_id") == [
        ("Carol Buyer", SF_ACC1), ("Dan Assistant", SF_ACC1)]  # fmt: skip


def test_salesforce_lead_status_and_conversion():
    rows, _, _ = mapped("salesforce", "Lead", "leads")
    # The fourth is "Working - Contacted" but converted: qualified.
    assert columns(rows, "status") == [("open",), ("qualified",), ("disqualified",),
                                       ("qualified",)]  # fmt: skip


def test_salesforce_opportunity_stage_iswon_isclosed_amount_closedate_and_record_url():
    rows, rejected, _ = mapped("salesforce", "Opportunity", "opportunities")
    names = ("opportunity_id", "stage", "status", "estimated_value", "actual_value",
             "estimated_close_date", "actual_close_date")  # fmt: skip
    assert columns(rows, *names) == [
        (SF_O[0], "qualify", "open", "50000.00", None, "2026-04-30", None),  # Prospecting
        (SF_O[1], "close", "won", "42000.00", "42000.00", "2026-02-27", "2026-02-27"),
        (SF_O[2], "close", "lost", "5000.00", None, "2026-02-20", "2026-02-20"),
        (SF_O[3], "propose", "open", None, None, "2026-05-31", None),  # Proposal/Price Quote
        (SF_O[4], "develop", "open", "12000.00", None, "2026-06-30", None),  # Needs Analysis
    ]
    assert rows[0]["record_url"] == (
        f"https://contoso.lightning.force.com/lightning/r/Opportunity/{SF_O[0]}/view"
    )
    assert list(rejected) == [6]
    assert rejected[6].startswith("StageName 'Discovery' is not a known stage (Prospecting qualify")


def test_salesforce_stage_map_is_configurable(tmp_path):
    stages = {"Discovery": "develop", "Closed Won": "close", "Closed Lost": "close",
              "Proposal/Price Quote": "propose", "Needs Analysis": "develop"}  # fmt: skip
    settings = overridden(tmp_path, {"salesforce": {"opportunity_stage": stages}})
    rows, rejected, _ = mapped("salesforce", "Opportunity", "opportunities", settings)
    assert [r["stage"] for r in rows] == ["close", "close", "propose", "develop", "develop"]
    assert list(rejected) == [1]  # Prospecting is no longer in the map


def test_an_override_of_an_unknown_map_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"no map salesforce\.stages to override; known maps: "):
        overridden(tmp_path, {"salesforce": {"stages": {}}})


def test_salesforce_tasks_subtype_calltype_duration_status_and_the_email_task_counted_once():
    assert EMAIL_TASKS == {SF_T[3]}  # EmailMessage 1's ActivityId
    rows, rejected, skipped = mapped("salesforce", "Task", "activities")
    names = ("activity_id", "activity_type", "direction", "status", "regarding_type",
             "regarding_id", "occurred_at", "scheduled_start", "duration_minutes")  # fmt: skip
    assert columns(rows, *names) == [
        (SF_T[0], "phone_call", "outgoing", "completed", "opportunity", SF_O[0],
         "2026-03-12T11:15:00.000Z", None, "15.0"),  # 900 s
        # No WhatId: regarding the person (Who), a lead.
        (SF_T[1], "phone_call", "incoming", "completed", "lead", SF_L1,
         "2026-03-13T16:05:30.000Z", None, "5.5"),  # 330 s
        (SF_T[2], "task", None, "open", "opportunity", SF_O[0], None, "2026-04-05", None),
        # An email task no EmailMessage carries stays an email.
        (SF_T[4], "email", None, "completed", "opportunity", SF_O[0],
         "2026-03-04T15:00:00.000Z", None, None),
        # Completed without CompletedDateTime: its ActivityDate.
        (SF_T[5], "task", None, "completed", "account", SF_ACC1, "2026-03-20", None, None),
    ]  # fmt: skip
    assert skipped == 1  # SF_T[3], the email EmailMessage 1 carries
    assert list(rejected) == [7]
    assert rejected[7].startswith("Status 'Blocked' is not a known status (Not Started open, ")


def test_salesforce_call_parties_from_owner_and_who_by_call_type():
    rows, rejected, skipped = mapped("salesforce", "Task", "activity_parties")
    assert columns(rows, *PARTY) == [
        (SF_T[0], "from", "user", SF_ANN, None), (SF_T[0], "to", "contact", SF_C1, None),
        (SF_T[1], "to", "user", SF_ANN, None), (SF_T[1], "from", "lead", SF_L1, None),
    ]  # fmt: skip
    # Five tasks that are no call, each as owner and as person.
    assert (rejected, skipped) == ({}, 10)


def test_salesforce_events_happened_by_the_export_time_and_their_attendees():
    rows, _, _ = mapped("salesforce", "Event", "activities")
    names = ("activity_id", "activity_type", "status", "occurred_at", "scheduled_start",
             "scheduled_end", "duration_minutes", "regarding_id")  # fmt: skip
    assert columns(rows, *names) == [
        (SF_EV1, "appointment", "completed", "2026-03-10T14:00:00.000Z",
         "2026-03-10T14:00:00.000Z", "2026-03-10T15:00:00.000Z", "60", SF_O[0]),
        # Starts after the file's newest LastModifiedDate (2026-03-31 08:00): planned.
        (SF_EV2, "appointment", "open", None, "2026-04-07T10:00:00.000Z",
         "2026-04-07T11:00:00.000Z", "60", SF_O[0]),
    ]  # fmt: skip
    rows, rejected, skipped = mapped("salesforce", "EventRelation", "activity_parties")
    assert columns(rows, *PARTY) == [
        (SF_EV1, "required_attendee", "contact", SF_C1, None),
        (SF_EV1, "required_attendee", "user", SF_BEN, None),
        (SF_EV2, "required_attendee", "contact", SF_C1, None),
    ]
    assert (rejected, skipped) == ({}, 2)  # the IsWhat opportunity, Dan not invited


def test_salesforce_email_messages_and_their_relations():
    rows, rejected, _ = mapped("salesforce", "EmailMessage", "activities")
    names = ("activity_id", "direction", "status", "owner_id", "regarding_type", "regarding_id",
             "occurred_at", "conversation_id", "message_id", "in_reply_to")  # fmt: skip
    thread = "<renewal-1@contoso.example>"
    assert columns(rows, *names) == [
        (SF_EM[0], "outgoing", "completed", SF_ANN, "opportunity", SF_O[0],
         "2026-03-02T09:00:00.000Z", thread, SF_EM[0], None),  # Status 3 sent
        (SF_EM[1], "incoming", "completed", SF_ANN, "account", SF_ACC1,
         "2026-03-03T10:00:00.000Z", thread, SF_EM[1], SF_EM[0]),  # 1 read
        (SF_EM[2], "outgoing", "open", SF_ANN, "opportunity", SF_O[0], None, None, SF_EM[2],
         None),  # 5 draft
    ]  # fmt: skip
    assert rejected == {
        4: "RelatedToId '500Hn00000Cs001AAA' has no known key prefix of opportunity, lead, "
        "account, contact"
    }
    rows, rejected, _ = mapped("salesforce", "EmailMessageRelation", "activity_parties")
    assert columns(rows, *PARTY) == [
        (SF_EM[0], "from", "user", SF_ANN, "ann@contoso.example"),
        (SF_EM[0], "to", "contact", SF_C1, "carol@fabrikam.example"),
        (SF_EM[0], "cc", "unresolved", None, "someone@partner.example"),
        (SF_EM[0], "bcc", "lead", SF_L1, "liam@northwind.example"),
        (SF_EM[1], "from", "unresolved", None, "carol@fabrikam.example"),  # dbt resolves it
        (SF_EM[1], "to", "user", SF_ANN, "ann@contoso.example"),
    ]
    assert rejected == {
        7: "RelationType 'OtherAddress' is not a known relation type (FromAddress from, "
        "ToAddress to, CcAddress cc, BccAddress bcc)"
    }


# --- values that map but fail the canonical rules -----------------------------------------------


def first_record(path: Path) -> dict:
    """A fixture file's first record as text, read here with the standard library: the Web API's
    own names (`_x_value@...lookuplogicalname`) without the `@odata.` ones; CSV values as written."""
    if path.suffix == ".json":
        record = json.loads(path.read_text(encoding="utf-8"))["value"][0]
        text = {True: "true", False: "false"}
        return {k: text[v] if isinstance(v, bool) else v if v is None else str(v)
                for k, v in record.items() if not k.startswith("@odata.")}  # fmt: skip
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.DictReader(handle))


@pytest.mark.parametrize(
    ("source", "name", "file", "column", "bad", "reason"),
    [
        ("dataverse", "email", "page-0001.json", "senton", "2026-13-45T09:00:00Z",
         "occurred_at '2026-13-45T09:00:00Z' is not an ISO-8601 timestamp"),
        ("salesforce", "EmailMessage", "EmailMessage.csv", "MessageDate", "02/03/2026 09:00",
         "occurred_at '02/03/2026 09:00' is not an ISO-8601 timestamp"),
    ],
)  # fmt: skip
def test_a_bad_value_is_quarantined_as_the_export_row(tmp_path, source, name, file, column, bad,
                                                      reason):  # fmt: skip
    """The first record's timestamp is broken: the row is quarantined with the canonical reason,
    its raw_record the export's own record (its own column names and values), nothing lost."""
    folder = tmp_path / source / name
    folder.mkdir(parents=True)
    text = (FIXTURES / source / name / file).read_text(encoding="utf-8")
    good = {"senton": "2026-03-02T09:00:00Z", "MessageDate": "2026-03-02T09:00:00.000Z"}[column]
    (folder / file).write_text(text.replace(good, bad, 1), encoding="utf-8")
    table = TABLES[(source, name, "activities")]
    ingest_export(tmp_path / "w.duckdb", tmp_path, table, READERS[source], SETTINGS, "r1")
    ((number, found, record),) = query(
        tmp_path / "w.duckdb",
        "SELECT row_number, reason, raw_record FROM quarantine.rejected_rows WHERE reason LIKE ?",
        [f"%{bad}%"],
    )
    assert (number, found) == (1, reason)
    assert json.loads(record) == {**first_record(FIXTURES / source / name / file), column: bad}

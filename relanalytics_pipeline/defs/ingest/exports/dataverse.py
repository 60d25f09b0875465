"""Dynamics 365 / Dataverse exports: Web API JSON pages and CSV with logical names as headers.

Files under `<landing>/dataverse/<table>/`. A Web API page is `{"@odata.context": ...,
"value": [...], "@odata.nextLink": ...}`, one file per page. Column names are normalised so that
both spellings map alike: a lookup `_x_value` (Web API) is `x` (as in CSV), its
`@Microsoft.Dynamics.CRM.lookuplogicalname` annotation `x@type`, a
`@OData.Community.Display.V1.FormattedValue` annotation `x@label`.
"""

from __future__ import annotations

import json
from pathlib import Path

from relanalytics_pipeline.defs.ingest.exports.mapping import (
    ExportSettings,
    ExportTable,
    RowMapping,
    coded,
    sql_string,
)
from relanalytics_pipeline.defs.ingest.landing import (
    RawFile,
    RowRejection,
    UnreadableFile,
    _json_text,
    _with_row_numbers,
    read_landing_file,
    with_usable_names,
)

SOURCE = "dataverse"
LOOKUP_TYPE = "@Microsoft.Dynamics.CRM.lookuplogicalname"
FORMATTED = "@OData.Community.Display.V1.FormattedValue"

# Defaults from the tables' documented option sets (Dataverse table/column reference).
DEFAULT_MAPS = {
    "activity_status": {"0": "open", "1": "completed", "2": "canceled"},
    # Appointments add statecode 3, Scheduled: planned, not yet happened.
    "appointment_status": {"0": "open", "1": "completed", "2": "canceled", "3": "open"},
    "opportunity_status": {"0": "open", "1": "won", "2": "lost"},
    "lead_status": {"0": "open", "1": "qualified", "2": "disqualified"},
    # opportunity.salesstage: 0 Qualify, 1 Develop, 2 Propose, 3 Close.
    "opportunity_stage": {"0": "qualify", "1": "develop", "2": "propose", "3": "close"},
    # opportunity.stepname (the business process stage's name), used when salesstage is empty.
    "opportunity_step": {
        "1-qualify": "qualify",
        "2-develop": "develop",
        "3-propose": "propose",
        "4-close": "close",
        "qualify": "qualify",
        "develop": "develop",
        "propose": "propose",
        "close": "close",
    },  # fmt: skip
    # activityparty.participationtypemask; 8 regarding, 10 resource, 11 customer are skipped.
    "participation_role": {
        "1": "from",
        "2": "to",
        "3": "cc",
        "4": "bcc",
        "5": "required_attendee",
        "6": "optional_attendee",
        "7": "organizer",
        "9": "owner",
    },  # fmt: skip
    "party_type": {
        "systemuser": "user",
        "contact": "contact",
        "lead": "lead",
        "account": "account",
    },  # fmt: skip
    "regarding_type": {
        "opportunity": "opportunity",
        "lead": "lead",
        "account": "account",
        "contact": "contact",
    },  # fmt: skip
    # account.industrycode, used only where the export carries no formatted value.
    "industry": {},
}
SKIPPED_MASKS = ("8", "10", "11")


def _normalised(name: str) -> str:
    base, _, annotation = name.partition("@")
    if base.startswith("_") and base.endswith("_value"):
        base = base[1:-6]
    if not annotation:
        return base
    short = {LOOKUP_TYPE[1:]: "@type", FORMATTED[1:]: "@label"}
    return base + short.get(annotation, "@" + annotation)


def read_file(path: Path) -> RawFile:
    """A Web API page (`.json`), or a CSV / JSON-lines file, with normalised column names."""
    if path.suffix.lower() == ".json":
        raw = _read_page(path)
    else:
        raw = read_landing_file(path)
    names = [_normalised(n) for n in raw.table.column_names]
    if len(set(names)) != len(names):
        names_seen = raw.table.column_names
        raise UnreadableFile(f"columns repeat once lookups are normalised: {names_seen}")
    # A rejected row is quarantined with the export's own column names.
    raw.records = raw.table
    raw.table = raw.table.rename_columns(names)
    return raw


def _read_page(path: Path) -> RawFile:
    try:
        page = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as error:
        reason = f"file is not UTF-8 text (byte {error.start}: {error.reason})"
        raise UnreadableFile(reason) from error
    except json.JSONDecodeError as error:
        reason = f"file is not valid JSON: {error.msg} at line {error.lineno}"
        raise UnreadableFile(reason) from error
    if not isinstance(page, dict) or not isinstance(page.get("value"), list):
        raise UnreadableFile('file is not a Web API page: no "value" array')
    records, numbers, rejected = [], [], []
    for number, record in enumerate(page["value"], start=1):
        if isinstance(record, dict):
            records.append(record)
            numbers.append(number)
        else:
            rejected.append(RowRejection(number, "record is not a JSON object", json.dumps(record)))
    names = [n for n in dict.fromkeys(n for r in records for n in r) if not n.startswith("@odata.")]
    columns = {name: [_json_text(r.get(name)) for r in records] for name in names}
    return with_usable_names(RawFile(_with_row_numbers(columns, numbers), rejected))


# --- the tables ---------------------------------------------------------------------------------


def _deleted() -> str:
    # Web API pages carry no deletions; Synapse / Fabric Link CSV marks them with IsDelete.
    return '"IsDelete"'


def _lookup_type(name: str, type_column: str) -> str:
    """A lookup's table: its Web API annotation, else the CSV's type-code column."""
    return f'LOWER(COALESCE("{name}@type", "{type_column}"))'


def _record_url(settings: ExportSettings, table: str, id_column: str) -> str:
    base = settings.base_url(SOURCE)
    if not base:
        return "NULL"
    # The documented record-page address: main.aspx?etn=<table>&id=<guid>&pagetype=entityrecord
    return (
        f'{sql_string(base + "/main.aspx?etn=" + table + "&id=")} || "{id_column}" || '
        "'&pagetype=entityrecord'"
    )


def _users(settings: ExportSettings) -> RowMapping:
    return RowMapping(
        {
            "user_id": '"systemuserid"',
            "full_name": '"fullname"',
            "email": '"internalemailaddress"',
            "team": 'COALESCE("businessunitid@label", "businessunitid")',
            "manager_id": '"parentsystemuserid"',
            "is_active": """CASE LOWER("isdisabled") WHEN 'true' THEN 'false' WHEN '1' THEN 'false'
                WHEN 'false' THEN 'true' WHEN '0' THEN 'true' END""",
            "modified_at": '"modifiedon"',
            "is_deleted": _deleted(),
        }
    )


def _accounts(settings: ExportSettings) -> RowMapping:
    industry, _ = coded('"industrycode"', settings.codes(SOURCE, "industry"), "industry code")
    return RowMapping(
        {
            "account_id": '"accountid"',
            "name": '"name"',
            # The label as the CRM shows it; failing that the configured map, else the code.
            "industry": f'COALESCE("industrycode@label", {industry}, "industrycode")',
            "annual_revenue": '"revenue"',
            "employees": '"numberofemployees"',
            "country": '"address1_country"',
            "parent_account_id": '"parentaccountid"',
            "owner_id": '"ownerid"',
            "modified_at": '"modifiedon"',
            "is_deleted": _deleted(),
        }
    )


def _contacts(settings: ExportSettings) -> RowMapping:
    customer_type = _lookup_type("parentcustomerid", "parentcustomeridtype")
    return RowMapping(
        {
            "contact_id": '"contactid"',
            # The parent customer is an account or a contact; only an account is one.
            "account_id": f"""CASE WHEN {customer_type} = 'contact' THEN NULL
                ELSE "parentcustomerid" END""",
            "full_name": '"fullname"',
            "email": '"emailaddress1"',
            "job_title": '"jobtitle"',
            "modified_at": '"modifiedon"',
            "is_deleted": _deleted(),
        }
    )


def _leads(settings: ExportSettings) -> RowMapping:
    status, problem = coded('"statecode"', settings.codes(SOURCE, "lead_status"), "lead statecode")
    return RowMapping(
        {
            "lead_id": '"leadid"',
            "full_name": '"fullname"',
            "company_name": '"companyname"',
            "email": '"emailaddress1"',
            "status": status,
            "owner_id": '"ownerid"',
            "created_at": '"createdon"',
            "modified_at": '"modifiedon"',
            "is_deleted": _deleted(),
        },
        (problem,),
    )


def _opportunities(settings: ExportSettings) -> RowMapping:
    status, status_problem = coded(
        '"statecode"', settings.codes(SOURCE, "opportunity_status"), "opportunity statecode"
    )
    stage, stage_problem = coded(
        '"salesstage"', settings.codes(SOURCE, "opportunity_stage"), "sales stage"
    )
    step, step_problem = coded('"stepname"', settings.codes(SOURCE, "opportunity_step"), "step")
    return RowMapping(
        {
            "opportunity_id": '"opportunityid"',
            "name": '"name"',
            "account_id": """COALESCE("parentaccountid", CASE WHEN LOWER("customerid@type")
                = 'account' THEN "customerid" END)""",
            "primary_contact_id": '"parentcontactid"',
            "owner_id": '"ownerid"',
            "product": "NULL",
            "stage": f'COALESCE({stage}, CASE WHEN "salesstage" IS NULL THEN {step} END)',
            "status": status,
            "estimated_value": '"estimatedvalue"',
            "actual_value": '"actualvalue"',
            "estimated_close_date": '"estimatedclosedate"',
            "actual_close_date": '"actualclosedate"',
            "created_at": '"createdon"',
            "modified_at": '"modifiedon"',
            "record_url": _record_url(settings, "opportunity", "opportunityid"),
            "is_deleted": _deleted(),
        },
        (status_problem, stage_problem, f'CASE WHEN "salesstage" IS NULL THEN {step_problem} END'),
    )


def _activities(table: str, activity_type: str):
    """The mapping of one activity table; `occurred_at` is what each table records as done."""
    happened = {
        "email": 'COALESCE("senton", "actualend")',
        "appointment": '"actualstart"',
        "phonecall": '"actualstart"',
        "task": '"actualend"',
    }[table]

    def mapping(settings: ExportSettings) -> RowMapping:
        status_map = "appointment_status" if table == "appointment" else "activity_status"
        status, status_problem = coded(
            '"statecode"', settings.codes(SOURCE, status_map), f"{table} statecode"
        )
        regarding, regarding_problem = coded(
            _lookup_type("regardingobjectid", "regardingobjecttypecode"),
            settings.codes(SOURCE, "regarding_type"),
            "regarding table",
            "regardingobjectid's table",
        )
        direction = (
            """CASE LOWER("directioncode") WHEN 'true' THEN 'outgoing' WHEN '1' THEN 'outgoing'
                WHEN 'false' THEN 'incoming' WHEN '0' THEN 'incoming' END"""
            if table in ("email", "phonecall")
            else "NULL"
        )
        return RowMapping(
            {
                "activity_id": '"activityid"',
                "activity_type": sql_string(activity_type),
                "subject": '"subject"',
                "direction": direction,
                "status": status,
                "owner_id": '"ownerid"',
                "regarding_type": f'CASE WHEN "regardingobjectid" IS NOT NULL THEN {regarding} END',
                "regarding_id": '"regardingobjectid"',
                "occurred_at": f"CASE WHEN {status} = 'completed' THEN {happened} END",
                "scheduled_start": '"scheduledstart"',
                "scheduled_end": '"scheduledend"',
                "duration_minutes": '"actualdurationminutes"',
                # conversationindex: its first 22 bytes (44 hex digits) name the thread.
                "conversation_id": 'LEFT("conversationindex", 44)' if table == "email" else "NULL",
                "message_id": '"messageid"' if table == "email" else "NULL",
                "in_reply_to": '"inreplyto"' if table == "email" else "NULL",
                "created_at": '"createdon"',
                "modified_at": '"modifiedon"',
                "is_deleted": _deleted(),
            },
            (
                status_problem,
                f'CASE WHEN "regardingobjectid" IS NOT NULL THEN {regarding_problem} END',
            ),
        )

    return mapping


def _parties(settings: ExportSettings) -> RowMapping:
    mask = '"participationtypemask"'
    role, role_problem = coded(
        mask, settings.codes(SOURCE, "participation_role"), "participation type mask"
    )
    party_type, type_problem = coded(
        _lookup_type("partyid", "partyobjecttypecode"),
        settings.codes(SOURCE, "party_type"),
        "party table",
        "partyid's table",
    )
    skipped = ", ".join(sql_string(m) for m in SKIPPED_MASKS)
    return RowMapping(
        {
            "activity_id": '"activityid"',
            "role": role,
            # A party without a record (an address nobody in the CRM has) is unresolved; dbt
            # resolves it by address to a user or contact where one has it.
            "party_type": f"""CASE WHEN "partyid" IS NULL THEN 'unresolved'
                ELSE {party_type} END""",
            "party_id": '"partyid"',
            "address": '"addressused"',
        },
        (
            f"CASE WHEN {mask} NOT IN ({skipped}) THEN {role_problem} END",
            f"""CASE WHEN {mask} NOT IN ({skipped}) AND "partyid" IS NOT NULL
                THEN {type_problem} END""",
        ),
        skip=f"{mask} IN ({skipped})",
    )


_ACTIVITY_TABLES = {"email": "email", "appointment": "appointment", "phonecall": "phone_call",
                    "task": "task"}  # fmt: skip

# In load order: parties are checked against the activities they belong to.
TABLES = (
    ExportTable(SOURCE, "systemuser", "users", _users, "Users (systemuser)."),
    ExportTable(SOURCE, "account", "accounts", _accounts, "Accounts."),
    ExportTable(SOURCE, "contact", "contacts", _contacts, "Contacts."),
    ExportTable(SOURCE, "lead", "leads", _leads, "Leads."),
    ExportTable(SOURCE, "opportunity", "opportunities", _opportunities, "Opportunities."),
    *(
        ExportTable(SOURCE, table, "activities", _activities(table, kind), f"Activities: {table}.")
        for table, kind in _ACTIVITY_TABLES.items()
    ),
    ExportTable(SOURCE, "activityparty", "activity_parties", _parties, "Activity parties."),
)

"""Salesforce exports: CSV with API field names as headers, as the Bulk API or Data Loader write
them, under `<landing>/salesforce/<object>/`.

Record types come from the ids' documented key prefixes (001 Account, 003 Contact, 005 User,
006 Opportunity, 00Q Lead). A `Task` of subtype Email whose Id an `EmailMessage` names as its
`ActivityId` is the same email twice: the task is skipped and counted. An EmailMessage's
`message_id` is its Id and `in_reply_to` its `ReplyToEmailMessageId`, so reply pairing follows
Salesforce's own threading.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from relanalytics_pipeline.defs.ingest.exports.mapping import (
    ExportSettings,
    ExportTable,
    RowMapping,
    coded,
    sql_string,
)
from relanalytics_pipeline.defs.ingest.landing import list_landing_files, read_landing_file

SOURCE = "salesforce"

# Defaults: the standard picklist values of a new org (Object Reference).
DEFAULT_MAPS = {
    "opportunity_stage": {
        "Prospecting": "qualify",
        "Qualification": "qualify",
        "Needs Analysis": "develop",
        "Value Proposition": "develop",
        "Id. Decision Makers": "develop",
        "Perception Analysis": "propose",
        "Proposal/Price Quote": "propose",
        "Negotiation/Review": "close",
        "Closed Won": "close",
        "Closed Lost": "close",
    },  # fmt: skip
    "lead_status": {
        "Open - Not Contacted": "open",
        "Working - Contacted": "open",
        "Closed - Converted": "qualified",
        "Closed - Not Converted": "disqualified",
    },  # fmt: skip
    "task_status": {
        "Not Started": "open",
        "In Progress": "open",
        "Waiting on someone else": "open",
        "Deferred": "open",
        "Completed": "completed",
    },  # fmt: skip
    "task_subtype": {"Call": "phone_call", "Task": "task", "Email": "email"},
    "call_type": {"Outbound": "outgoing", "Inbound": "incoming", "Internal": ""},
    # EmailMessage.Status: 5 is a draft, never sent.
    "email_status": {
        "0": "completed",
        "1": "completed",
        "2": "completed",
        "3": "completed",
        "4": "completed",
        "5": "open",
    },  # fmt: skip
    "relation_type": {
        "FromAddress": "from",
        "ToAddress": "to",
        "CcAddress": "cc",
        "BccAddress": "bcc",
    },  # fmt: skip
    "key_prefix": {
        "005": "user",
        "003": "contact",
        "00Q": "lead",
        "001": "account",
        "006": "opportunity",
    },  # fmt: skip
}
# Bulk API and Data Loader write CSV; the canonical reader numbers rows and keeps ragged ones.
read_file = read_landing_file
RECORD_TYPES = ("opportunity", "lead", "account", "contact")
PARTY_TYPES = ("user", "contact", "lead", "account")


def _deleted() -> str:
    return '"IsDeleted"'


def _type_of(column: str, settings: ExportSettings, allowed: tuple[str, ...]) -> tuple[str, str]:
    """(type, problem) of a record id from its three-character key prefix."""
    codes = {k: v for k, v in settings.codes(SOURCE, "key_prefix").items() if v in allowed}
    prefix, label = f"LEFT({column}, 3)", column.strip('"')
    cases = " ".join(f"WHEN {sql_string(k)} THEN {sql_string(v)}" for k, v in codes.items())
    value = f"CASE {prefix} {cases} END"
    problem = (
        f"CASE WHEN {column} IS NOT NULL AND {value} IS NULL THEN "
        f"{sql_string(label + ' ')} || '''' || {column} || '''' || "
        f"{sql_string(' has no known key prefix of ' + ', '.join(allowed))} END"
    )
    return value, problem


def _truthy(column: str) -> str:
    return f"LOWER({column}) IN ('true', '1')"


def _record_url(settings: ExportSettings, sobject: str) -> str:
    base = settings.base_url(SOURCE)
    if not base:
        return "NULL"
    # Lightning Experience's record page: /lightning/r/<Object>/<Id>/view
    return f"{sql_string(base + '/lightning/r/' + sobject + '/')} || \"Id\" || '/view'"


def _users(settings: ExportSettings) -> RowMapping:
    return RowMapping(
        {
            "user_id": '"Id"',
            "full_name": '"Name"',
            "email": '"Email"',
            "team": '"Department"',
            "manager_id": '"ManagerId"',
            "is_active": '"IsActive"',
            "modified_at": '"LastModifiedDate"',
            "is_deleted": _deleted(),
        }
    )


def _accounts(settings: ExportSettings) -> RowMapping:
    return RowMapping(
        {
            "account_id": '"Id"',
            "name": '"Name"',
            "industry": '"Industry"',
            "annual_revenue": '"AnnualRevenue"',
            "employees": '"NumberOfEmployees"',
            "country": '"BillingCountry"',
            "parent_account_id": '"ParentId"',
            "owner_id": '"OwnerId"',
            "modified_at": '"LastModifiedDate"',
            "is_deleted": _deleted(),
        }
    )


def _name() -> str:
    return 'COALESCE("Name", NULLIF(CONCAT_WS(\' \', "FirstName", "LastName"), \'\'))'


def _contacts(settings: ExportSettings) -> RowMapping:
    return RowMapping(
        {
            "contact_id": '"Id"',
            "account_id": '"AccountId"',
            "full_name": _name(),
            "email": '"Email"',
            "job_title": '"Title"',
            "modified_at": '"LastModifiedDate"',
            "is_deleted": _deleted(),
        }
    )


def _leads(settings: ExportSettings) -> RowMapping:
    status, problem = coded('"Status"', settings.codes(SOURCE, "lead_status"), "lead status")
    return RowMapping(
        {
            "lead_id": '"Id"',
            "full_name": _name(),
            "company_name": '"Company"',
            "email": '"Email"',
            # A converted lead is qualified whatever its status says.
            "status": f"""CASE WHEN {_truthy('"IsConverted"')} THEN 'qualified'
                ELSE {status} END""",
            "owner_id": '"OwnerId"',
            "created_at": '"CreatedDate"',
            "modified_at": '"LastModifiedDate"',
            "is_deleted": _deleted(),
        },
        (problem,),
    )


def _opportunities(settings: ExportSettings) -> RowMapping:
    stage, problem = coded('"StageName"', settings.codes(SOURCE, "opportunity_stage"), "stage")
    closed, won = _truthy('"IsClosed"'), _truthy('"IsWon"')
    return RowMapping(
        {
            "opportunity_id": '"Id"',
            "name": '"Name"',
            "account_id": '"AccountId"',
            "primary_contact_id": '"ContactId"',
            "owner_id": '"OwnerId"',
            "product": "NULL",
            "stage": stage,
            "status": f"CASE WHEN {won} THEN 'won' WHEN {closed} THEN 'lost' "
            "WHEN \"IsClosed\" IS NOT NULL THEN 'open' END",
            # Amount is the deal's value: estimated while open, actual once won.
            "estimated_value": '"Amount"',
            "actual_value": f'CASE WHEN {won} THEN "Amount" END',
            "estimated_close_date": '"CloseDate"',
            "actual_close_date": f'CASE WHEN {closed} THEN "CloseDate" END',
            "created_at": '"CreatedDate"',
            "modified_at": '"LastModifiedDate"',
            "record_url": _record_url(settings, "Opportunity"),
            "is_deleted": _deleted(),
        },
        (problem,),
    )


def _regarding(settings: ExportSettings, what: str, who: str | None) -> tuple[str, str, str]:
    """(regarding_type, regarding_id, problem): the related record (What), else the person (Who)."""
    record = f"COALESCE({what}, {who})" if who else what
    kind, problem = _type_of(record, settings, RECORD_TYPES)
    return kind, record, problem


def email_task_ids(landing_dir: Path, through: dt.date | None = None) -> tuple[set[str], str]:
    """The Task ids the EmailMessages (landed by `through`) name as their ActivityId, and a
    digest of them."""
    ids: set[str] = set()
    for path in list_landing_files(landing_dir / SOURCE / "EmailMessage", through):
        if path.suffix.lower() != ".csv":
            continue
        table = read_landing_file(path).table
        if "ActivityId" in table.column_names:
            ids.update(v.strip() for v in table.column("ActivityId").to_pylist() if v and v.strip())
    return ids, hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def _task(email_tasks: set[str]):
    def mapping(settings: ExportSettings) -> RowMapping:
        kind, kind_problem = coded(
            '"TaskSubtype"', settings.codes(SOURCE, "task_subtype"), "task subtype"
        )
        status, status_problem = coded('"Status"', settings.codes(SOURCE, "task_status"), "status")
        direction, direction_problem = coded(
            '"CallType"', settings.codes(SOURCE, "call_type"), "call type"
        )
        regarding_type, regarding_id, regarding_problem = _regarding(
            settings, '"WhatId"', '"WhoId"'
        )
        duplicates = ", ".join(sql_string(i) for i in sorted(email_tasks)) or "NULL"
        return RowMapping(
            {
                "activity_id": '"Id"',
                "activity_type": f"COALESCE({kind}, 'task')",  # no subtype: a plain task
                "subject": '"Subject"',
                "direction": f"NULLIF({direction}, '')",
                "status": status,
                "owner_id": '"OwnerId"',
                "regarding_type": regarding_type,
                "regarding_id": regarding_id,
                "occurred_at": f"CASE WHEN {status} = 'completed' THEN COALESCE("
                '"CompletedDateTime", "ActivityDate") END',
                "scheduled_start": f"CASE WHEN {status} = 'open' THEN \"ActivityDate\" END",
                "scheduled_end": "NULL",
                "duration_minutes": 'TRY_CAST("CallDurationInSeconds" AS DOUBLE) / 60',
                "conversation_id": "NULL",
                "message_id": "NULL",
                "in_reply_to": "NULL",
                "created_at": '"CreatedDate"',
                "modified_at": '"LastModifiedDate"',
                "is_deleted": _deleted(),
            },
            (kind_problem, status_problem, direction_problem, regarding_problem),
            skip=f"""\"TaskSubtype\" = 'Email' AND "Id" IN ({duplicates})""",
        )

    return mapping


def _call_parties(settings: ExportSettings) -> RowMapping:
    """A call's two parties, from its owner and its person (Who): the caller is `from`."""
    who_type, who_problem = _type_of('"WhoId"', settings, ("contact", "lead"))
    outgoing = "\"CallType\" = 'Outbound'"
    return RowMapping(
        {
            "activity_id": '"Id"',
            "role": f"CASE WHEN (party = 'owner') = ({outgoing}) THEN 'from' ELSE 'to' END",
            "party_type": f"CASE WHEN party = 'owner' THEN 'user' ELSE {who_type} END",
            "party_id": 'CASE WHEN party = \'owner\' THEN "OwnerId" ELSE "WhoId" END',
            "address": "NULL",
        },
        (f"CASE WHEN party = 'who' THEN {who_problem} END",),
        # Only calls with a direction have parties here; tasks' owners take part anyway (dbt).
        skip=""""TaskSubtype" IS DISTINCT FROM 'Call'
            OR "CallType" NOT IN ('Outbound', 'Inbound')
            OR (party = 'owner' AND "OwnerId" IS NULL)
            OR (party = 'who' AND "WhoId" IS NULL)""",
        rows_per_record=("owner", "who"),
    )


def _event(settings: ExportSettings) -> RowMapping:
    regarding_type, regarding_id, regarding_problem = _regarding(settings, '"WhatId"', '"WhoId"')
    # Events have no status: one that started by the export's time (the newest modification in
    # its file) has happened; a later one is planned.
    exported = 'MAX(TRY_CAST("LastModifiedDate" AS TIMESTAMPTZ)) OVER ()'
    started = f'TRY_CAST("StartDateTime" AS TIMESTAMPTZ) <= {exported}'
    return RowMapping(
        {
            "activity_id": '"Id"',
            "activity_type": "'appointment'",
            "subject": '"Subject"',
            "direction": "NULL",
            "status": f"CASE WHEN {started} THEN 'completed' ELSE 'open' END",
            "owner_id": '"OwnerId"',
            "regarding_type": regarding_type,
            "regarding_id": regarding_id,
            "occurred_at": f'CASE WHEN {started} THEN "StartDateTime" END',
            "scheduled_start": '"StartDateTime"',
            "scheduled_end": '"EndDateTime"',
            "duration_minutes": '"DurationInMinutes"',
            "conversation_id": "NULL",
            "message_id": "NULL",
            "in_reply_to": "NULL",
            "created_at": '"CreatedDate"',
            "modified_at": '"LastModifiedDate"',
            "is_deleted": _deleted(),
        },
        (regarding_problem,),
    )


def _event_relations(settings: ExportSettings) -> RowMapping:
    party_type, problem = _type_of('"RelationId"', settings, PARTY_TYPES)
    # IsWhat marks the related record (the event's own regarding column), not a person.
    is_what = _truthy('"IsWhat"')
    return RowMapping(
        {
            "activity_id": '"EventId"',
            "role": "'required_attendee'",
            "party_type": party_type,
            "party_id": '"RelationId"',
            "address": "NULL",
        },
        (f"CASE WHEN NOT {is_what} THEN {problem} END",),
        skip=f"""{is_what} OR ("IsInvitee" IS NOT NULL
            AND NOT {_truthy('"IsInvitee"')})""",
    )


def _email(settings: ExportSettings) -> RowMapping:
    status, status_problem = coded('"Status"', settings.codes(SOURCE, "email_status"), "status")
    regarding_type, regarding_id, regarding_problem = _regarding(settings, '"RelatedToId"', None)
    return RowMapping(
        {
            "activity_id": '"Id"',
            "activity_type": "'email'",
            "subject": '"Subject"',
            "direction": f"""CASE WHEN {_truthy('"Incoming"')} THEN 'incoming'
                WHEN "Incoming" IS NOT NULL THEN 'outgoing' END""",
            "status": f"COALESCE({status}, 'completed')",
            "owner_id": '"CreatedById"',
            "regarding_type": regarding_type,
            "regarding_id": regarding_id,
            "occurred_at": f"CASE WHEN COALESCE({status}, 'completed') = 'completed' "
            'THEN "MessageDate" END',
            "scheduled_start": "NULL",
            "scheduled_end": "NULL",
            "duration_minutes": "NULL",
            "conversation_id": '"ThreadIdentifier"',
            "message_id": '"Id"',
            "in_reply_to": '"ReplyToEmailMessageId"',
            "created_at": '"CreatedDate"',
            "modified_at": '"LastModifiedDate"',
            "is_deleted": _deleted(),
        },
        (status_problem, regarding_problem),
    )


def _email_relations(settings: ExportSettings) -> RowMapping:
    role, role_problem = coded(
        '"RelationType"', settings.codes(SOURCE, "relation_type"), "relation type"
    )
    party_type, type_problem = _type_of('"RelationId"', settings, PARTY_TYPES)
    return RowMapping(
        {
            "activity_id": '"EmailMessageId"',
            "role": role,
            "party_type": f"""CASE WHEN "RelationId" IS NULL THEN 'unresolved'
                ELSE {party_type} END""",
            "party_id": '"RelationId"',
            "address": '"RelationAddress"',
        },
        (role_problem, type_problem),
    )


def tables(email_tasks: set[str] = frozenset()) -> tuple[ExportTable, ...]:
    """The objects in load order (parties after their activities). `email_tasks`: the Task ids
    that an EmailMessage already carries (see `email_task_ids`)."""
    return (
        ExportTable(SOURCE, "User", "users", _users, "Users."),
        ExportTable(SOURCE, "Account", "accounts", _accounts, "Accounts."),
        ExportTable(SOURCE, "Contact", "contacts", _contacts, "Contacts."),
        ExportTable(SOURCE, "Lead", "leads", _leads, "Leads."),
        ExportTable(SOURCE, "Opportunity", "opportunities", _opportunities, "Opportunities."),
        ExportTable(SOURCE, "EmailMessage", "activities", _email, "Emails."),
        ExportTable(SOURCE, "Task", "activities", _task(set(email_tasks)), "Calls and tasks."),
        ExportTable(SOURCE, "Task", "activity_parties", _call_parties, "Calls' parties."),
        ExportTable(SOURCE, "Event", "activities", _event, "Meetings."),
        ExportTable(SOURCE, "EventRelation", "activity_parties", _event_relations, "Attendees."),
        ExportTable(
            SOURCE, "EmailMessageRelation", "activity_parties", _email_relations, "Email parties."
        ),
    )

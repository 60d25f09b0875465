"""The canonical CRM tables (the raw contract every landing file is read against), as data.

Every source adapter ends in these tables and the ingest validates against them, so the contract
is written down once: column order, warehouse type, which columns a file must have, enum values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Timestamps and dates outside these years are quarantined: 0001-01-01 and 9999-12-31 are how some
# CRMs write "no date", and a modified_at in 9999 would win every later version.
PLAUSIBLE_DATES = ("1900-01-01", "2099-12-31")
# An actual duration beyond a week (10,080 minutes) is a data error, and would swamp time invested.
MAX_DURATION_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text | timestamp | date | bool | decimal | integer | double | enum
    values: tuple[str, ...] = ()  # accepted values of an enum
    not_null: bool = False  # a row without a value is quarantined
    # (lowest, highest) accepted value of a number; timestamps and dates take PLAUSIBLE_DATES.
    bounds: tuple[float, float | None] | None = None

    @property
    def sql_type(self) -> str:
        return {
            "text": "VARCHAR",
            "enum": "VARCHAR",
            "timestamp": "TIMESTAMP",  # UTC, without zone: portable to every dbt adapter
            "date": "DATE",
            "bool": "BOOLEAN",
            "decimal": "DECIMAL(18, 2)",
            "integer": "BIGINT",
            "double": "DOUBLE",
        }[self.kind]

    @property
    def accepted_range(self) -> tuple[object, object] | None:
        if self.kind in ("timestamp", "date"):
            return PLAUSIBLE_DATES
        return self.bounds


@dataclass(frozen=True)
class Entity:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # Columns a file must carry to be loadable at all; the others may be absent and load as null.
    required: tuple[str, ...]
    # Versioned entities keep one row per (key, modified_at); the newest version wins downstream.
    versioned: bool = True
    description: str = ""
    column_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(c.name for c in self.columns))

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _id(name: str, not_null: bool = False) -> Column:
    return Column(name, "text", not_null=not_null)


def _enum(name: str, *values: str, not_null: bool = False) -> Column:
    return Column(name, "enum", values=values, not_null=not_null)


_MODIFIED = Column("modified_at", "timestamp", not_null=True)
_DELETED = Column("is_deleted", "bool")

ACTIVITY_TYPES = ("email", "appointment", "phone_call", "task")
PARTY_ROLES = (
    "from", "to", "cc", "bcc", "organizer", "required_attendee", "optional_attendee", "owner",
)  # fmt: skip
PARTY_TYPES = ("user", "contact", "lead", "account", "unresolved")
RECORD_TYPES = ("opportunity", "lead", "account", "contact")

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "users",
            (
                _id("user_id", True),
                Column("full_name", "text"),
                Column("email", "text"),
                Column("team", "text"),
                _id("manager_id"),
                Column("is_active", "bool"),
                _MODIFIED,
                _DELETED,
            ),
            key=("user_id",),
            required=("user_id", "modified_at"),
            description="Internal sellers: the organisation's CRM users, with their teams.",
        ),
        Entity(
            "accounts",
            (
                _id("account_id", True),
                Column("name", "text"),
                Column("industry", "text"),
                Column("annual_revenue", "decimal"),
                Column("employees", "integer", bounds=(0, None)),
                Column("country", "text"),
                _id("parent_account_id"),
                _id("owner_id"),
                _MODIFIED,
                _DELETED,
            ),
            key=("account_id",),
            required=("account_id", "modified_at"),
            description="Customer companies.",
        ),
        Entity(
            "contacts",
            (
                _id("contact_id", True),
                _id("account_id"),
                Column("full_name", "text"),
                Column("email", "text"),
                Column("job_title", "text"),
                _MODIFIED,
                _DELETED,
            ),
            key=("contact_id",),
            required=("contact_id", "modified_at"),
            description="External people at customer accounts.",
        ),
        Entity(
            "leads",
            (
                _id("lead_id", True),
                Column("full_name", "text"),
                Column("company_name", "text"),
                Column("email", "text"),
                _enum("status", "open", "qualified", "disqualified"),
                _id("owner_id"),
                Column("created_at", "timestamp"),
                _MODIFIED,
                _DELETED,
            ),
            key=("lead_id",),
            required=("lead_id", "modified_at"),
            description="Prospects not yet qualified into an account and opportunity.",
        ),
        Entity(
            "opportunities",
            (
                _id("opportunity_id", True),
                Column("name", "text"),
                _id("account_id"),
                _id("primary_contact_id"),
                _id("owner_id"),
                Column("product", "text"),
                _enum("stage", "qualify", "develop", "propose", "close"),
                _enum("status", "open", "won", "lost", not_null=True),
                Column("estimated_value", "decimal"),
                Column("actual_value", "decimal"),
                Column("estimated_close_date", "date"),
                Column("actual_close_date", "date"),
                Column("created_at", "timestamp"),
                _MODIFIED,
                Column("record_url", "text"),
                _DELETED,
            ),
            key=("opportunity_id",),
            required=("opportunity_id", "status", "modified_at"),
            description="Deals: stage, status, values and close dates.",
        ),
        Entity(
            "activities",
            (
                _id("activity_id", True),
                _enum("activity_type", *ACTIVITY_TYPES, not_null=True),
                Column("subject", "text"),
                _enum("direction", "outgoing", "incoming"),
                _enum("status", "open", "completed", "canceled", not_null=True),
                _id("owner_id"),
                _enum("regarding_type", *RECORD_TYPES),
                _id("regarding_id"),
                Column("occurred_at", "timestamp"),
                Column("scheduled_start", "timestamp"),
                Column("scheduled_end", "timestamp"),
                Column("duration_minutes", "double", bounds=(0, MAX_DURATION_MINUTES)),
                Column("conversation_id", "text"),
                Column("message_id", "text"),
                Column("in_reply_to", "text"),
                Column("created_at", "timestamp"),
                _MODIFIED,
                _DELETED,
            ),
            key=("activity_id",),
            required=("activity_id", "activity_type", "status", "modified_at"),
            description="Emails, appointments, phone calls and tasks.",
        ),
        Entity(
            "activity_parties",
            (
                _id("activity_id", True),
                _enum("role", *PARTY_ROLES, not_null=True),
                _enum("party_type", *PARTY_TYPES, not_null=True),
                _id("party_id"),
                Column("address", "text"),
            ),
            key=("activity_id", "role", "party_type", "party_id", "address"),
            required=("activity_id", "role", "party_type"),
            versioned=False,
            description=(
                "Who took part in each activity, in which role. The parties of an activity are "
                "those of the last file (in name order) that lists any for it."
            ),
        ),
    )
}

# Parties are checked against the activities, so activities load first.
LOAD_ORDER = tuple(ENTITIES)

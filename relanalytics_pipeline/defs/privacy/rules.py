"""Exclusion rules: activities and people kept out of every mart, the history and the model.

The rules file (`RELANALYTICS_PRIVACY_RULES`, TOML) lists email addresses, domains, users who
opted out and subject patterns (docs/privacy.md). Each run, `write_exclusions` finds in the raw
tables what they match, whatever version, into `privacy.excluded_activities` and
`privacy.excluded_people`, and the staging models leave those out; so nothing downstream ever
sees them. The rules' digest is a dbt var that the incremental models' settings include: a
changed rules file rebuilds them in full, so a rule added later also removes what it matches from
what earlier nights computed.

Excluded is policy, not bad data: the rows stay in `crm.*`, nothing goes to the quarantine.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import duckdb

KINDS = ("addresses", "domains", "opted_out_users", "subject_patterns")
SCHEMA = "privacy"


class RulesError(ValueError):
    """A rules file that cannot be used; the message never quotes a rule's value."""


@dataclass(frozen=True)
class Rule:
    kind: str
    number: int  # 1-based, within its kind
    value: str  # normalised: addresses and domains lowercase, patterns as SQL LIKE

    @property
    def label(self) -> str:
        """How the run's metadata names the rule: `domains[2]`, never its value."""
        return f"{self.kind}[{self.number}]"


def read_rules(path: Path | None) -> list[Rule]:
    """The rules of the file, checked; none without a file."""
    if path is None:
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RulesError(f"cannot read it ({error.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise RulesError(f"not a TOML file ({str(error).split('(')[0].strip()})") from None
    unknown = sorted(set(data) - set(KINDS))
    if unknown:
        raise RulesError(f"unknown key(s) {', '.join(unknown)}: expected {', '.join(KINDS)}")
    rules = []
    for kind in KINDS:
        values = data.get(kind, [])
        if not isinstance(values, list) or not all(
            isinstance(v, str) and v.strip() for v in values
        ):
            raise RulesError(f"{kind} must be a list of non-empty strings")
        for number, value in enumerate(values, start=1):
            rules.append(Rule(kind, number, _normalised(kind, value.strip(), number)))
    return rules


def _normalised(kind: str, value: str, number: int) -> str:
    if kind == "addresses":
        if "@" not in value:
            raise RulesError(f"{kind}[{number}] is not an email address (it has no @)")
        return value.lower()
    if kind == "domains":
        domain = value.lower().removeprefix("@")
        if "@" in domain or "." not in domain:
            raise RulesError(f"{kind}[{number}] is not a domain such as example.com")
        return domain
    if kind == "subject_patterns":
        # Case-insensitive, anywhere in the subject; `*` stands for any text.
        escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return "%" + escaped.replace("*", "%") + "%"
    return value  # a user id, or a user's address


def digest(rules: list[Rule]) -> str:
    """Changes with what the rules match, not with the file's comments or layout; '' for none."""
    if not rules:
        return ""
    text = json.dumps([[r.kind, r.value] for r in rules])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_exclusion_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """The tables the staging models read, empty until the first run with rules."""
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA}.excluded_activities "
        "(activity_id VARCHAR, rule VARCHAR)"
    )
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA}.excluded_people "
        "(record_type VARCHAR, record_id VARCHAR, rule VARCHAR)"
    )


# The people of the raw tables, any version, with their address.
_PEOPLE = """
    SELECT 'contact' AS record_type, contact_id AS record_id, lower(trim(email)) AS email
    FROM crm.contacts
    UNION ALL SELECT 'lead', lead_id, lower(trim(email)) FROM crm.leads
    UNION ALL SELECT 'user', user_id, lower(trim(email)) FROM crm.users
"""


def _address_matches(address: str) -> str:
    """SQL: the rule `r` (addresses or domains) matches the lowercase address."""
    return (
        f"(r.kind = 'addresses' AND {address} = r.value) OR (r.kind = 'domains' AND "
        f"(ends_with({address}, '@' || r.value) OR ends_with({address}, '.' || r.value)))"
    )


def write_exclusions(
    connection: duckdb.DuckDBPyConnection, rules: list[Rule]
) -> dict[str, dict[str, int]]:
    """Replace the exclusion tables with what the rules match in the raw tables now; return the
    activities and people each rule matched, by its label."""
    ensure_exclusion_tables(connection)
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE exclusion_rules (label VARCHAR, kind VARCHAR, value VARCHAR)"
    )
    if rules:
        connection.executemany(
            "INSERT INTO exclusion_rules VALUES (?, ?, ?)",
            [(r.label, r.kind, r.value) for r in rules],
        )
    connection.begin()
    connection.execute(f"DELETE FROM {SCHEMA}.excluded_people")
    connection.execute(
        f"""
        INSERT INTO {SCHEMA}.excluded_people
        SELECT DISTINCT p.record_type, p.record_id, r.label
        FROM ({_PEOPLE}) AS p JOIN exclusion_rules AS r
            ON {_address_matches("p.email")}
            OR (r.kind = 'opted_out_users' AND p.record_type = 'user'
                AND (p.record_id = r.value OR p.email = lower(r.value)))
        """
    )
    connection.execute(f"DELETE FROM {SCHEMA}.excluded_activities")
    connection.execute(
        f"""
        INSERT INTO {SCHEMA}.excluded_activities
        SELECT DISTINCT activity_id, label FROM (
            SELECT a.activity_id, r.label FROM crm.activities AS a JOIN exclusion_rules AS r
                ON r.kind = 'subject_patterns' AND lower(a.subject) LIKE r.value ESCAPE '\\'
            UNION ALL
            SELECT a.activity_id, e.rule FROM crm.activities AS a
            JOIN {SCHEMA}.excluded_people AS e
                ON e.record_type = 'user' AND a.owner_id = e.record_id
            UNION ALL
            SELECT p.activity_id, r.label FROM crm.activity_parties AS p
            JOIN exclusion_rules AS r ON {_address_matches("lower(trim(p.address))")}
            UNION ALL
            SELECT p.activity_id, e.rule FROM crm.activity_parties AS p
            JOIN {SCHEMA}.excluded_people AS e
                ON p.party_type = e.record_type AND p.party_id = e.record_id
            UNION ALL
            SELECT p.activity_id, e.rule FROM crm.activity_parties AS p
            JOIN ({_PEOPLE}) AS people ON lower(trim(p.address)) = people.email
            JOIN {SCHEMA}.excluded_people AS e
                ON e.record_type = people.record_type AND e.record_id = people.record_id
        )
        """
    )
    connection.commit()
    counts = {r.label: {"activities": 0, "people": 0} for r in rules}
    for table, what in (("excluded_activities", "activities"), ("excluded_people", "people")):
        for label, count in connection.execute(
            f"SELECT rule, count(*) FROM {SCHEMA}.{table} GROUP BY rule"
        ).fetchall():
            counts[label][what] = count
    return counts

"""People as salted hashes: how an erased person is recognised without keeping who they were.

A person is known by identifiers: an email address (`email:ann@x.example`, compared lowercase and
trimmed) and the ids of their records (`contact:c1`, `user:u1`, `lead:l1`). Each is kept only as
`sha256(salt + identifier)`; the salt is a random secret of the installation
(`$RELANALYTICS_HOME/privacy/salt`, readable by its owner only), so a list of hashes does not
reveal an address by hashing guesses without it. The suppression list
(`$RELANALYTICS_HOME/privacy/suppressed`, one hash a line) is outside the warehouse on purpose: a
warehouse rebuilt from the landing folder still leaves the erased people out.

The same hashes are computed in SQL over the raw tables (`person_hashes`), so that the ingest, the
erasure and the search for a person all match rows the same way.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

PRIVACY_DIR = "privacy"
SALT_FILE = "salt"
SUPPRESSION_FILE = "suppressed"

# The columns of each raw table that name a person, as SQL giving the identifier (kind:value) of
# the column `c` of the row: an address is an email, a party's id is of its party type.
_EMAIL = "'email:' || lower(trim({c}))"
PERSON_COLUMNS: dict[str, dict[str, str]] = {
    "contacts": {"contact_id": "'contact:' || trim({c})", "email": _EMAIL},
    "leads": {"lead_id": "'lead:' || trim({c})", "email": _EMAIL},
    "users": {"user_id": "'user:' || trim({c})", "email": _EMAIL},
    "activity_parties": {
        "party_id": "lower(trim({party_type})) || ':' || trim({c})",
        "address": _EMAIL,
    },
}
KINDS = ("email", "contact", "user", "lead")
# An erased person's part in an activity stays, as an anonymous outside party: a meeting they were
# at still counts as one with the customer, and its other attendees keep their time. (.invalid is
# a top-level domain reserved never to exist, RFC 2606.)
ANONYMISED_ENTITY = "activity_parties"
ERASED_ADDRESS = "erased@erased.invalid"


def identifier(kind: str, value: str) -> str:
    """`("email", " Ann@X.example")` -> `"email:ann@x.example"`, as the SQL above spells it."""
    if kind not in KINDS:
        raise ValueError(f"no kind of identifier {kind!r}: one of {', '.join(KINDS)}")
    value = value.strip()
    return f"{kind}:{value.lower() if kind == 'email' else value}"


def privacy_dir(home: Path) -> Path:
    return home / PRIVACY_DIR


def salt(home: Path) -> str:
    """The installation's salt, made on first use (owner-only file in an owner-only folder)."""
    folder = privacy_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / SALT_FILE
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip()


def hash_of(salt_text: str, person_identifier: str) -> str:
    return hashlib.sha256((salt_text + person_identifier).encode()).hexdigest()


def suppressed(home: Path) -> frozenset[str]:
    """The hashes of everyone erased (empty before the first erasure)."""
    path = privacy_dir(home) / SUPPRESSION_FILE
    if not path.exists():
        return frozenset()
    return frozenset(line.strip() for line in path.read_text().splitlines() if line.strip())


def suppress(home: Path, hashes: Iterable[str]) -> None:
    """Add hashes to the suppression list (written whole under a temporary name, then swapped)."""
    path = privacy_dir(home) / SUPPRESSION_FILE
    salt(home)  # the folder, private
    everyone = sorted(suppressed(home) | set(hashes))
    staged = path.with_name(f".{SUPPRESSION_FILE}.tmp")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("".join(f"{h}\n" for h in everyone))
    os.replace(staged, path)


@dataclass(frozen=True)
class Suppression:
    """What the ingest needs to leave the erased people out: the salt and their hashes."""

    salt: str
    hashes: frozenset[str]

    @classmethod
    def of(cls, home: Path) -> Suppression | None:
        """The installation's suppression, or None when nobody was ever erased."""
        hashes = suppressed(home)
        return cls(salt(home), hashes) if hashes else None


def person_hashes(entity: str, json_record: str | None = None) -> list[str]:
    """SQL expressions: the hash of each identifier a row of `entity` holds (NULL where the column
    is empty). `json_record`: read the columns from that JSON text column instead (a quarantined
    row's raw_record). Needs `load_matching` on the connection first (the salt)."""

    def column(name: str) -> str:
        return name if json_record is None else f"({json_record} ->> {_sql_string(name)})"

    return [
        f"sha256(getvariable('privacy_salt') || "
        f"{template.format(c=column(name), party_type=column('party_type'))})"
        for name, template in PERSON_COLUMNS.get(entity, {}).items()
    ]


def matches(entity: str, json_record: str | None = None) -> str:
    """SQL condition: the row names someone in the temp table `sought_hashes` (load_matching)."""
    hashes = person_hashes(entity, json_record)
    if not hashes:
        return "FALSE"
    return " OR ".join(f"{h} IN (SELECT hash FROM sought_hashes)" for h in hashes)


def anonymise(table: str, entity: str = ANONYMISED_ENTITY) -> str:
    """SQL: replace the person in the party rows of `table` that name someone looked for."""
    return (
        f"UPDATE {table} SET party_type = 'unresolved', party_id = NULL, "
        f"address = '{ERASED_ADDRESS}' WHERE {matches(entity)}"
    )


def load_matching(connection: duckdb.DuckDBPyConnection, salt_text: str, hashes) -> None:
    """Make `matches` usable on the connection: the salt, and the hashes to look for."""
    connection.execute("SET VARIABLE privacy_salt = ?", [salt_text])
    look_for(connection, hashes)


def look_for(connection: duckdb.DuckDBPyConnection, hashes: Iterable[str]) -> None:
    """Replace the hashes `matches` looks for on the connection."""
    connection.execute("CREATE OR REPLACE TEMP TABLE sought_hashes (hash VARCHAR PRIMARY KEY)")
    connection.execute("INSERT INTO sought_hashes SELECT DISTINCT UNNEST(?)", [sorted(hashes)])


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

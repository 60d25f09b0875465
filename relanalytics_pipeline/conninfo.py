"""PostgreSQL connection strings (libpq URLs and key=value strings) without their password.

libpq's own errors echo the string they could not parse, password included; every message about
the publication URL goes through `mask_password` or `redact` before anyone sees it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"

# `scheme://user:password@host...`: the password runs to the last `@` (libpq's rule too), and
# a malformed scheme (`postgresql:/`, `pg://`) still counts, since its error echoes it as well.
_URI_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][\w+.-]*:/*[^:/@?]*:)(?P<password>.*)(?=@)")
# `?password=...` in a URL's query, `password=...` (quoted or not) in a key=value string.
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<password>[^&]*)")
_KEYWORD_PASSWORD = re.compile(
    r"(?P<head>(?:^|\s)password\s*=\s*)(?P<password>'(?:[^'\\]|\\.)*(?:'|$)|\S*)"
)
_PATTERNS = (_URI_PASSWORD, _QUERY_PASSWORD, _KEYWORD_PASSWORD)


def passwords(conninfo: str) -> list[str]:
    """Every password written in the string, as written and as libpq decodes it."""
    found = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(conninfo):
            written = match["password"]
            found += [written, unquote(written), written.strip("'")]
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def mask_password(conninfo: str) -> str:
    """The connection string with each password replaced by `***`."""
    for pattern in _PATTERNS:
        conninfo = pattern.sub(lambda match: match["head"] + MASK, conninfo)
    return conninfo


def redact(text: str, conninfo: str) -> str:
    """`text` (an error message) without the connection string's passwords."""
    text = text.replace(conninfo, mask_password(conninfo))
    for secret in passwords(conninfo):
        text = text.replace(secret, MASK)
    return text

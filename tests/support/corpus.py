"""The corpus of difficult landing files: each case is one file with ids of its own, and what the
ingest must make of it (rows loaded with their values, or quarantined with their reasons), worked
out by hand from the file's text. tests/unit/test_bad_input_corpus.py checks each case;
tests/pipeline/test_untouched_records.py lands the whole corpus beside the hand-made dataset.
"""

import datetime as dt
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

T = dt.datetime
M = "2026-03-01T10:00:00Z"  # a modified_at that is fine
ACT = "activity_id,activity_type,status,subject,duration_minutes,occurred_at,modified_at,is_deleted"
INJECTION = "'; DROP TABLE crm.activities; --"


@dataclass
class Case:
    kind: str
    file: str  # <entity>/<name>
    content: bytes
    # (rows read, loaded, duplicate, quarantined) of the file; None: the whole file quarantined
    counts: tuple[int, int, int, int] | None
    reasons: list[tuple[int | None, str]] = field(default_factory=list)  # quarantine rows
    sql: str = ""  # a query over what loaded ...
    rows: list[tuple] = field(default_factory=list)  # ... and its expected rows
    unknown: list[str] = field(default_factory=list)  # columns reported as not in the contract


def csv_text(header: str, *lines: str, newline: str = "\n") -> bytes:
    return newline.join([header, *lines, ""]).encode()


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def jsonl(*records) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def activities(where: str, columns: str = "activity_id, subject") -> str:
    return f"SELECT {columns} FROM crm.activities WHERE {where} ORDER BY ALL"


HUGE = "x" * 1_000_000  # a 1 MB subject: more than the csv module's default field limit (128 KiB)
GOOD_PARQUET = pa.table(
    {
        "activity_id": ["pq1"],
        "activity_type": ["email"],
        "status": ["completed"],
        "modified_at": pa.array([T(2026, 3, 1, 10)], type=pa.timestamp("us", tz="UTC")),
    }
)

CASES = [
    # --- keys
    Case("missing key", "activities/missing_key.csv",
         csv_text(ACT, f",email,completed,no key,,,{M},", f"mk1,email,completed,ok,,,{M},"),
         (2, 1, 0, 1), [(1, "activity_id is missing")], activities("activity_id = 'mk1'"), [("mk1", "ok")]),
    Case("whitespace-only and empty-string keys", "activities/blank_keys.jsonl",
         jsonl({"activity_id": "   ", "activity_type": "task", "status": "open", "modified_at": M},
               {"activity_id": "", "activity_type": "task", "status": "open", "modified_at": M}),
         (2, 0, 0, 2), [(1, "activity_id is missing"), (2, "activity_id is missing")]),
    Case("keys with spaces around them are trimmed", "activities/padded_key.csv",
         csv_text(ACT, f"  pad1  ,email,completed,padded,,,{M},"),
         (1, 1, 0, 0), [], activities("activity_id LIKE '%pad1%'"), [("pad1", "padded")]),
    # --- timestamps
    Case("unparseable timestamps", "activities/unparseable_ts.csv",
         csv_text(ACT, f"ut1,email,completed,s,,yesterday,{M},", f"ut2,email,completed,s,,31/03/2026,{M},",
                  "ut3,email,completed,s,,,1711900000,"),
         (3, 0, 0, 3), [(1, "occurred_at 'yesterday' is not an ISO-8601 timestamp"),
                        (2, "occurred_at '31/03/2026' is not an ISO-8601 timestamp"),
                        (3, "modified_at '1711900000' is not an ISO-8601 timestamp")]),
    Case("impossible timestamps", "activities/impossible_ts.csv",
         csv_text(ACT, f"it1,email,completed,s,,2026-02-30T10:00:00Z,{M},",
                  f"it2,email,completed,s,,2026-03-01T25:00:00Z,{M},", f"it3,email,completed,s,,2026-13-01,{M},"),
         (3, 0, 0, 3), [(1, "occurred_at '2026-02-30T10:00:00Z' is not an ISO-8601 timestamp"),
                        (2, "occurred_at '2026-03-01T25:00:00Z' is not an ISO-8601 timestamp"),
                        (3, "occurred_at '2026-13-01' is not an ISO-8601 timestamp")]),
    Case("year 0001 and 9999 timestamps", "activities/far_years.csv",
         csv_text(ACT, f"fy1,email,completed,s,,0001-01-01T00:00:00,{M},", "fy2,email,completed,s,,,9999-12-31T23:59:59Z,",
                  f"fy3,email,completed,s,,2099-12-31T23:59:59Z,{M},"),
         (3, 1, 0, 2), [(1, "occurred_at '0001-01-01T00:00:00' is not between 1900-01-01 and 2099-12-31"),
                        (2, "modified_at '9999-12-31T23:59:59Z' is not between 1900-01-01 and 2099-12-31")],
         activities("activity_id LIKE 'fy%'", "activity_id, occurred_at"), [("fy3", T(2099, 12, 31, 23, 59, 59))]),
    Case("timestamps with offsets are normalised to UTC", "activities/offsets.csv",
         csv_text(ACT, "of1,email,completed,s,,2026-03-01T10:00:00+05:30,2026-03-01 10:00:00-08:00,",
                  "of2,email,completed,s,,2026-03-01T10:00:00.123456Z,2026-03-01,"),
         (2, 2, 0, 0), [], activities("activity_id LIKE 'of%'", "activity_id, occurred_at, modified_at"),
         [("of1", T(2026, 3, 1, 4, 30), T(2026, 3, 1, 18)), ("of2", T(2026, 3, 1, 10, 0, 0, 123456), T(2026, 3, 1))]),
    Case("completed activity dated after the as-of date", "activities/future.csv",
         csv_text(ACT, "fu1,email,completed,s,,2031-06-01T10:00:00Z,2031-06-01T10:00:00Z,"),
         (1, 1, 0, 0), [], activities("activity_id = 'fu1'", "activity_id, status, occurred_at"),
         [("fu1", "completed", T(2031, 6, 1, 10))]),
    # --- enums, numbers, booleans
    Case("unknown enum values; known ones in any case", "activities/enums.csv",
         csv_text(ACT, f"en1,fax,completed,s,,,{M},", f"en2,EMAIL,Completed,s,,,{M},", f"en3,email,done,s,,,{M},"),
         (3, 1, 0, 2), [(1, "activity_type 'fax' is not one of email, appointment, phone_call, task"),
                        (3, "status 'done' is not one of open, completed, canceled")],
         activities("activity_id LIKE 'en%'", "activity_id, activity_type, status"), [("en2", "email", "completed")]),
    Case("negative, absurd and infinite durations", "activities/durations.csv",
         csv_text(ACT, f"du1,appointment,completed,s,-5,,{M},", f"du2,appointment,completed,s,1000000000,,{M},",
                  f"du3,phone_call,completed,s,Infinity,,{M},", f"du4,task,completed,s,10080,,{M},",
                  f"du5,task,completed,s,nan,,{M},"),
         (5, 2, 0, 3), [(1, "duration_minutes '-5' is not between 0 and 10080"),
                        (2, "duration_minutes '1000000000' is not between 0 and 10080"),
                        (3, "duration_minutes 'Infinity' is not between 0 and 10080")],
         activities("activity_id LIKE 'du%'", "activity_id, duration_minutes"), [("du4", 10080.0), ("du5", None)]),
    Case("numbers with thousands separators", "accounts/thousands.csv",
         csv_text("account_id,annual_revenue,employees,modified_at", f'th1,"1,234,567.50",12,{M}',
                  f'th2,1234567.50,"1,200",{M}', f"th3,1234567.50,-3,{M}", f"th4,1234567.5,1200,{M}"),
         (4, 1, 0, 3), [(1, "annual_revenue '1,234,567.50' is not a decimal number"),
                        (2, "employees '1,200' is not a whole number"),
                        (3, "employees '-3' is not at least 0")],
         "SELECT account_id, annual_revenue, employees FROM crm.accounts WHERE account_id LIKE 'th%'",
         [("th4", Decimal("1234567.50"), 1200)]),
    Case("numbers too large for their column, or infinite, beside good rows", "accounts/huge_numbers.csv",
         csv_text("account_id,annual_revenue,employees,modified_at", f"hn1,,1e30,{M}", f"hn2,,inf,{M}",
                  f"hn3,,1e19,{M}", f"hn4,1e20,5,{M}", f"hn5,-Infinity,,{M}", f"hn6,12.5,1e3,{M}"),
         (6, 1, 0, 5), [(1, "employees '1e30' is out of range (whole numbers up to ±9223372036854775807)"),
                        (2, "employees 'inf' is not a finite number"),
                        (3, "employees '1e19' is out of range (whole numbers up to ±9223372036854775807)"),
                        (4, "annual_revenue '1e20' is out of range (decimals up to ±9999999999999999.99)"),
                        (5, "annual_revenue '-Infinity' is not a finite number")],
         "SELECT account_id, annual_revenue, employees FROM crm.accounts WHERE account_id LIKE 'hn%'",
         [("hn6", Decimal("12.50"), 1000)]),
    Case("Parquet floats that are infinite or huge in number columns", "accounts/float_numbers.parquet",
         parquet(pa.table({"account_id": ["pf1", "pf2", "pf3"], "employees": [float("inf"), 12.0, float("nan")],
                           "annual_revenue": [1.0, 2.5, 1e30], "modified_at": [M] * 3})),
         (3, 1, 0, 2), [(1, "employees 'inf' is not a finite number"),
                        (3, "annual_revenue '1e+30' is out of range (decimals up to ±9999999999999999.99)")],
         "SELECT account_id, annual_revenue, employees FROM crm.accounts WHERE account_id LIKE 'pf%'",
         [("pf2", Decimal("2.50"), 12)]),
    Case("an invalid deletion flag on a newer version", "activities/invalid_deleted.csv",
         csv_text(ACT, f"bd1,email,completed,s,,,{M},false", "bd1,email,completed,s,,,2026-03-02T10:00:00Z,1.0",
                  f"bd2,email,completed,s,,,{M},maybe", f"bd3,email,completed,s,,,{M},", f"bd4,email,completed,s,,,{M},Y"),
         (5, 3, 0, 2), [(2, "is_deleted '1.0' is not a boolean (true/false)"),
                        (3, "is_deleted 'maybe' is not a boolean (true/false)")],
         activities("activity_id LIKE 'bd%'", "activity_id, modified_at, is_deleted"),
         [("bd1", T(2026, 3, 1, 10), False), ("bd3", T(2026, 3, 1, 10), False), ("bd4", T(2026, 3, 1, 10), True)]),
    Case("booleans spelled oddly", "users/booleans.csv",
         csv_text("user_id,is_active,is_deleted,modified_at", f"bo1,YES, n ,{M}", f"bo2,T,0,{M}",
                  f"bo3,oui,false,{M}", f"bo4,,,{M}"),
         (4, 3, 0, 1), [(3, "is_active 'oui' is not a boolean (true/false)")],
         "SELECT user_id, is_active, is_deleted FROM crm.users WHERE user_id LIKE 'bo%' ORDER BY 1",
         [("bo1", True, False), ("bo2", True, False), ("bo4", None, False)]),
    # --- duplicates
    Case("duplicate keys with the same modified_at, same and different content", "users/dup_same.csv",
         csv_text("user_id,team,modified_at", f"ds1,East,{M}", f"ds1,East,{M}", f"ds2,East,{M}", f"ds2,West,{M}"),
         (4, 2, 2, 0), [], "SELECT user_id, team FROM crm.users WHERE user_id LIKE 'ds%' ORDER BY 1",
         [("ds1", "East"), ("ds2", "West")]),  # the later row of a conflict wins
    Case("duplicate keys with different modified_at: two versions", "users/dup_versions.csv",
         csv_text("user_id,team,modified_at", f"dv1,East,{M}", "dv1,West,2026-03-02T10:00:00Z"),
         (2, 2, 0, 0), [], "SELECT user_id, team, modified_at FROM crm.users WHERE user_id = 'dv1' ORDER BY 3",
         [("dv1", "East", T(2026, 3, 1, 10)), ("dv1", "West", T(2026, 3, 2, 10))]),
    # --- whole files
    Case("truncated Parquet", "activities/truncated.parquet", parquet(GOOD_PARQUET)[:-40], None,
         [(None, "cannot read parquet file: Parquet magic bytes not found in footer. Either the file is corrupted or this is not a parquet file.")]),
    Case("Latin-1 instead of UTF-8", "users/latin1.csv", "user_id,full_name,modified_at\nl1,Jürgen,2026-03-01\n".encode("latin-1"),
         None, [(None, "file is not UTF-8 text (byte 34: invalid start byte)")]),
    Case("UTF-16 with its byte order mark", "users/utf16.csv", "user_id,modified_at\nu16,2026-03-01\n".encode("utf-16"),
         None, [(None, "file is not UTF-8 text (byte 0: invalid start byte)")]),
    Case("a required column missing", "activities/no_status.csv",
         csv_text("activity_id,activity_type,modified_at", f"ns1,email,{M}"), None,
         [(None, "file lacks required column(s): status")]),
    Case("optional columns missing", "activities/minimal.csv", csv_text("activity_id,activity_type,status,modified_at", f"mi1,task,open,{M}"),
         (1, 1, 0, 0), [], activities("activity_id = 'mi1'", "activity_id, subject, occurred_at, is_deleted"),
         [("mi1", None, None, False)]),
    Case("extra columns are reported", "activities/extra.csv",
         csv_text("activity_id,activity_type,status,modified_at,crm_flavour,x", f"ex1,task,open,{M},blue,1"),
         (1, 1, 0, 0), [], activities("activity_id = 'ex1'", "activity_id, status"), [("ex1", "open")],
         ["crm_flavour", "x"]),
    Case("misspelt columns are reported as near misses", "activities/misspelt.csv",
         csv_text("activity_id,activity_type,status,modified_at,duraton_minutes,regardingid", f"ms1,task,completed,{M},30,o1"),
         (1, 1, 0, 0), [], activities("activity_id = 'ms1'", "activity_id, duration_minutes, regarding_id"),
         [("ms1", None, None)],
         ["duraton_minutes (did you mean duration_minutes?)", "regardingid (did you mean regarding_id?)"]),
    Case("contract columns written in another case", "activities/upper_case.csv",
         csv_text("Activity_ID,ACTIVITY_TYPE,Status,Modified_At,Subject", f"uc1,task,open,{M},Hi"),
         (1, 1, 0, 0), [], activities("activity_id = 'uc1'"), [("uc1", "Hi")]),
    Case("duplicated header columns", "users/dup_header.csv", csv_text("user_id,team,team,modified_at", f"dh1,A,B,{M}"),
         None, [(None, "the header names column 'team' twice (as 'team'); names are compared ignoring case")]),
    Case("header names equal ignoring case", "activities/case_dup.csv",
         csv_text("activity_id,activity_type,status,modified_at,Subject,subject", f"cd1,task,open,{M},A,B"),
         None, [(None, "the header names column 'Subject' twice (as 'subject'); names are compared ignoring case")]),
    Case("a trailing comma on every line", "accounts/trailing_comma.csv",
         csv_text("account_id,name,modified_at,", f"tc1,Acme,{M},", f"tc2,Beta,{M}, "),
         (2, 2, 0, 0), [], "SELECT account_id, name FROM crm.accounts WHERE account_id LIKE 'tc%' ORDER BY 1",
         [("tc1", "Acme"), ("tc2", "Beta")], ["column 4 (no name and no values)"]),
    Case("a header ending in a comma over values", "accounts/nameless_column.csv",
         csv_text("account_id,name,modified_at,", f"nc1,Acme,{M},oops"),
         None, [(None, 'column 4 has an empty name ("") but holds values: name it in the header or remove it')]),
    Case("a JSON line with an empty key", "activities/empty_key.jsonl",
         jsonl({"activity_id": "ek1", "activity_type": "task", "status": "open", "modified_at": M, "": "x"}),
         None, [(None, 'column 5 has an empty name ("") but holds values')]),
    Case("an empty file", "users/empty.csv", b"", None, [(None, "CSV file has no header row")]),
    Case("a header and no rows", "users/header_only.csv", b"user_id,modified_at\n", (0, 0, 0, 0)),
    Case("an empty JSON lines file", "users/empty.jsonl", b"\n\n", None, [(None, "file holds no records")]),
    Case("a Parquet file with no rows", "activities/no_rows.parquet", parquet(GOOD_PARQUET.slice(0, 0)), (0, 0, 0, 0)),
    Case("an unsupported file type", "users/export.xlsx", b"PK\x03\x04", None,
         [(None, "unsupported file type '.xlsx': expected one of .csv, .parquet, .jsonl")]),
    # --- malformed rows
    Case("malformed JSON lines", "activities/malformed.jsonl",
         jsonl('{"activity_id": "mj1", "activity_type": "task"', '["not", "an", "object"]', "null",
               {"activity_id": "mj2", "activity_type": "task", "status": "open", "modified_at": M}),
         (4, 1, 0, 3), [(1, "line is not valid JSON: Expecting ',' delimiter"), (2, "line is not a JSON object"),
                        (3, "line is not a JSON object")],
         activities("activity_id LIKE 'mj%'"), [("mj2", None)]),
    Case("a JSON lines file without one valid line", "activity_parties/all_malformed.jsonl",
         jsonl("{oops", "[1, 2]"), (2, 0, 0, 2),
         [(1, "line is not valid JSON: Expecting property name enclosed in double quotes"),
          (2, "line is not a JSON object")]),
    Case("JSON values of other types", "activities/json_types.jsonl",
         jsonl({"activity_id": 42, "activity_type": "task", "status": "open", "modified_at": M,
                "subject": {"text": "nested"}, "duration_minutes": 15, "is_deleted": False}),
         (1, 1, 0, 0), [], activities("activity_id = '42'", "activity_id, subject, duration_minutes"),
         [("42", '{"text": "nested"}', 15.0)]),
    Case("a ragged CSV row", "activities/ragged.csv", csv_text(ACT, "rg1,email,completed", f"rg2,email,completed,s,,,{M},"),
         (2, 1, 0, 1), [(1, "row has 3 fields but the header has 8")]),
    # --- encodings and text
    Case("a UTF-8 byte order mark and CRLF line endings", "activities/bom_crlf.csv",
         "\ufeff".encode() + csv_text(ACT, f"bc1,email,completed,with CRLF,,,{M},", newline="\r\n"),
         (1, 1, 0, 0), [], activities("activity_id = 'bc1'"), [("bc1", "with CRLF")]),
    Case("CRLF line endings in JSON lines", "activities/crlf.jsonl",
         b'{"activity_id": "cj1", "activity_type": "task", "status": "open", "modified_at": "2026-03-01"}\r\n',
         (1, 1, 0, 0), [], activities("activity_id = 'cj1'", "activity_id, modified_at"), [("cj1", T(2026, 3, 1))]),
    Case("NUL bytes and a newline inside quoted fields", "activities/nul.csv",
         csv_text(ACT, f'nu1,email,completed,"a\x00b",,,{M},', f'nu2,email,completed,"two\nlines",,,{M},'),
         (2, 2, 0, 0), [], activities("activity_id LIKE 'nu%'"), [("nu1", "a\x00b"), ("nu2", "two\nlines")]),
    Case("a huge field", "activities/huge.csv", csv_text(ACT, f"hg1,email,completed,{HUGE},,,{M},"),
         (1, 1, 0, 0), [], activities("activity_id = 'hg1'", "activity_id, length(subject)"), [("hg1", 1_000_000)]),
    Case("unicode and right-to-left text", "activities/unicode.csv",
         csv_text(ACT, f"ünï-١,email,completed,שלום عليكم 🙂 Ünïcödé,,,{M},"),
         (1, 1, 0, 0), [], activities("activity_id = 'ünï-١'"), [("ünï-١", "שלום عليكم 🙂 Ünïcödé")]),
    # --- SQL in values, headers and file names
    Case("quotes, semicolons and SQL keywords inside ids", "activities/sql_ids.jsonl",
         jsonl(*({"activity_id": i, "activity_type": "email", "status": "completed", "modified_at": M, "subject": i}
                 for i in (INJECTION, 'a"b', "x;y", "SELECT * FROM crm.users"))),
         (4, 4, 0, 0), [], activities("subject = activity_id"),
         [(i, i) for i in sorted((INJECTION, 'a"b', "x;y", "SELECT * FROM crm.users"))]),
    Case("SQL in a column name", "users/sql_header.csv",
         csv_text('user_id,modified_at,"x""); DROP TABLE crm.users; --"', f"sh1,{M},boom"),
         (1, 1, 0, 0), [], "SELECT user_id FROM crm.users WHERE user_id = 'sh1'", [("sh1",)],
         ['x"); DROP TABLE crm.users; --']),
    Case("SQL in a file name", f"activities/it's{INJECTION}.csv", csv_text(ACT, f"sf1,email,completed,s,,,{M},"),
         (1, 1, 0, 0), [], activities("activity_id = 'sf1'", "activity_id, _source_file"),
         [("sf1", f"activities/it's{INJECTION}.csv")]),
    # --- parties
    Case("orphan parties", "activity_parties/orphans.csv",
         csv_text("activity_id,role,party_type,party_id,address", "nope,to,contact,c1,", "bc1,to,contact,c1,"),
         (2, 1, 0, 1), [(1, "activity_id 'nope' names no activity")],
         "SELECT activity_id, party_id FROM crm.activity_parties WHERE activity_id = 'bc1'", [("bc1", "c1")]),
    Case("parties of an id full of SQL, and of a deleted activity", "activity_parties/special.jsonl",
         jsonl({"activity_id": INJECTION, "role": "from", "party_type": "user", "party_id": "u1"},
               {"activity_id": "dl1", "role": "to", "party_type": "unresolved", "address": "x@y.example"},
               {"activity_id": "dl1", "role": "boss", "party_type": "user", "party_id": "u1"}),
         (3, 2, 0, 1), [(3, "role 'boss' is not one of from, to, cc, bcc, organizer, required_attendee, "
                            "optional_attendee, owner")],
         "SELECT activity_id, role FROM crm.activity_parties WHERE activity_id IN ('dl1', ?) ORDER BY ALL",
         [(INJECTION, "from"), ("dl1", "to")]),
    Case("a deleted activity", "activities/deleted.csv", csv_text(ACT, f"dl1,email,completed,gone,,,{M},true"),
         (1, 1, 0, 0), [], activities("activity_id = 'dl1'", "activity_id, is_deleted"), [("dl1", True)]),
    # --- Parquet oddities
    Case("Parquet with ids typed as numbers", "activities/typed_ids.parquet",
         parquet(pa.table({"activity_id": [7], "activity_type": ["task"], "status": ["open"], "modified_at": [M]})),
         (1, 1, 0, 0), [], activities("activity_id = '7'", "activity_id, modified_at"), [("7", T(2026, 3, 1, 10))]),
    Case("Parquet with a nested column", "activities/nested.parquet",
         parquet(pa.table({"activity_id": ["ne1"], "activity_type": ["task"], "status": ["open"], "modified_at": [M],
                           "subject": pa.array([{"a": 1}])})),
         (1, 1, 0, 0), [], activities("activity_id = 'ne1'"), [("ne1", "{'a': 1}")]),
    Case("Parquet repeating a column name", "users/dup_columns.parquet",
         parquet(pa.Table.from_arrays([pa.array(["pd1"]), pa.array(["A"]), pa.array(["B"]), pa.array([M])],
                                      names=["user_id", "team", "team", "modified_at"])),
         None, [(None, "the header names column 'team' twice (as 'team'); names are compared ignoring case")]),
]  # fmt: skip


def land_corpus(landing: Path) -> None:
    """Every case's file in the landing folder `landing`."""
    for case in CASES:
        path = landing / case.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(case.content)

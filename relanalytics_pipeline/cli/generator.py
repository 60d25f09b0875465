"""A synthetic CRM in the canonical landing format, seeded and deterministic.

Users in teams; accounts with contacts; leads; opportunities across stages and statuses; email
threads with message_id / in_reply_to / conversation_id and reply delays in both directions (some
never answered, some answered too late); meetings with attendees on both sides; calls both ways;
tasks; open activities scheduled ahead; a few internal-only emails; some relationships that went
quiet. Everything is drawn with NumPy in vectors, chunk by chunk (one file per chunk), so a
million activities take about a minute and memory stays bounded by the chunk size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from relanalytics_pipeline.raw_contract import ENTITIES

ORG_DOMAIN = "northwind-sales.example"
CHUNK_ACTIVITIES = 250_000
FORMATS = {"parquet": "parquet", "csv": "csv", "jsonl": "json"}

# Shares of the activity types; within each type, the share still open (scheduled ahead).
TYPE_SHARES = {"email": 0.55, "appointment": 0.12, "phone_call": 0.17, "task": 0.16}
OPEN_SHARES = {"appointment": 0.2, "phone_call": 0.1, "task": 0.25}
CANCELED_SHARE = 0.03
INTERNAL_ONLY_EMAIL_SHARE = 0.01
QUIET_ACCOUNT_SHARE = 0.08
HISTORY_DAYS = 540

# Reply delays in hours (log-normal): our team answers within hours, customers within a day or
# two; about one reply in ten takes longer than the 7-day response window.
TEAM_REPLY_MEDIAN_H, CUSTOMER_REPLY_MEDIAN_H, REPLY_SIGMA = 4.0, 20.0, 1.3

FIRST_NAMES = np.array(
    "Ada Ben Cora Dev Eli Fay Gus Hana Ivo Jin Kai Lea Max Nia Oto Pia Quin Ray Sol Tia Uma Vik "
    "Wen Xia Yan Zoe".split()
)
LAST_NAMES = np.array(
    "Ames Brandt Costa Dahl Evans Fischer Garcia Hoff Ito Jansen Kowal Lund Moreau Novak Ortiz "
    "Park Quist Rossi Sato Tanaka Ueda Vega Weber Young Zhou".split()
)
TEAMS = np.array(["East", "West", "North", "South", "Central", "Enterprise", "Public", "Partners"])
INDUSTRIES = np.array(
    ["Manufacturing", "Retail", "Finance", "Healthcare", "Software", "Logistics", "Energy"]
)
COUNTRIES = np.array(["US", "DE", "FR", "GB", "NL", "SE", "JP", "BR", "IN", "CA"])
PRODUCTS = np.array(
    ["Analytics Suite", "Data Platform", "Support Plan", "Consulting", "Connectors"]
)
PRODUCT_MEDIAN_VALUE = np.array([60_000, 120_000, 15_000, 40_000, 8_000])
# Deals grow with the customer: a 2,500-employee account buys about twice what a 250-employee one
# does (employees^0.3), and some industries pay more for the same product.
INDUSTRY_VALUE_FACTOR = {"Manufacturing": 1.0, "Retail": 0.8, "Finance": 1.4, "Healthcare": 1.2,
                         "Software": 1.1, "Logistics": 0.85, "Energy": 1.25}  # fmt: skip
TYPICAL_EMPLOYEES = 250
STAGES = np.array(["qualify", "develop", "propose", "close"])
TOPICS = np.array(
    ["Pricing", "Renewal", "Proposal", "Kick-off", "Demo follow-up", "Contract", "Onboarding",
     "Roadmap", "Invoice", "Security review", "Pilot results", "Next steps"]
)  # fmt: skip
REPLY_PREFIXES = np.array(["RE: ", "Re: ", "RE: ", "AW: ", "Re: Re: ", "SV: "])


@dataclass
class People:
    """Internal users and external contacts and leads of one dataset, as aligned arrays."""

    user_id: np.ndarray
    account_id: np.ndarray
    user_email: np.ndarray
    account_owner: np.ndarray  # user index per account
    contact_id: np.ndarray
    contact_email: np.ndarray
    contact_start: np.ndarray  # first contact index per account
    contact_count: np.ndarray
    account_weight: np.ndarray  # how much each account is worked on
    quiet_since: np.ndarray  # seconds; accounts that went quiet stop there, others at as-of end
    opportunity_id: np.ndarray
    opp_start: np.ndarray
    opp_count: np.ndarray
    lead_id: np.ndarray
    lead_email: np.ndarray
    lead_owner: np.ndarray


def estimated_values(
    product: np.ndarray, employees: np.ndarray, industry: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """A deal's estimated value from its product (index), its account's size and industry, and a
    random factor: whole hundreds."""
    factor = np.array([INDUSTRY_VALUE_FACTOR[name] for name in industry.tolist()])
    size = (employees / TYPICAL_EMPLOYEES) ** 0.3
    return np.round(PRODUCT_MEDIAN_VALUE[product] * size * factor * noise, -2)


def _ids(prefix: str, count: int, width: int, start: int = 0) -> np.ndarray:
    return np.array([f"{prefix}-{i:0{width}d}" for i in range(start, start + count)], dtype=object)


def _names(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    first = rng.choice(FIRST_NAMES, count)
    last = rng.choice(LAST_NAMES, count)
    full = np.char.add(np.char.add(first, " "), last).astype(object)
    local = np.char.lower(np.char.add(np.char.add(first, "."), last)).astype(object)
    return full, local


def _emails(local: np.ndarray, domains: np.ndarray, ids: np.ndarray) -> np.ndarray:
    # The id's number keeps addresses unique among people sharing a name.
    numbers = np.array([i.rsplit("-", 1)[1].lstrip("0") or "0" for i in ids], dtype=object)
    return local + numbers + "@" + domains


def _seconds(when: dt.date) -> int:
    return int(dt.datetime.combine(when, dt.time(), dt.UTC).timestamp())


def _timestamps(seconds: np.ndarray) -> pa.Array:
    mask = np.isnan(seconds) if seconds.dtype.kind == "f" else None
    values = np.nan_to_num(seconds, nan=0).astype("int64") if mask is not None else seconds
    return pa.array(values * 1_000_000, type=pa.timestamp("us", tz="UTC"), mask=mask)


class _Writer:
    """Writes each entity's chunks as numbered files in the chosen format."""

    def __init__(self, out: Path, fmt: str):
        import duckdb

        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.out, self.fmt = out, fmt
        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        self.counts: dict[str, int] = {}

    def write(self, entity: str, columns: dict[str, object]) -> None:
        names = ENTITIES[entity].column_names
        # from_pandas: NaN in a float array is a missing value, written as null.
        table = pa.table(
            {
                name: value if isinstance(value, pa.Array) else pa.array(value, from_pandas=True)
                for name, value in ((name, columns[name]) for name in names)
            }
        )
        folder = self.out / entity
        folder.mkdir(parents=True, exist_ok=True)
        part = sum(1 for _ in folder.glob(f"part-*.{self.fmt}"))
        path = folder / f"part-{part:04d}.{self.fmt}"
        self.connection.register("chunk", table)
        options = "FORMAT csv, HEADER" if self.fmt == "csv" else f"FORMAT {FORMATS[self.fmt]}"
        self.connection.execute(f"COPY chunk TO ? ({options})", [path.as_posix()])
        self.connection.unregister("chunk")
        self.counts[entity] = self.counts.get(entity, 0) + table.num_rows


def _people(rng, writer: _Writer, n_activities: int, as_of_end: int) -> People:
    history_start = as_of_end - HISTORY_DAYS * 86_400
    n_users = int(np.clip(n_activities // 25_000, 6, 200))
    n_accounts = int(np.clip(n_activities // 150, 5, 50_000))
    n_leads = max(5, n_activities // 600)

    user_id = _ids("usr", n_users, 4, 1)
    user_name, user_local = _names(rng, n_users)
    user_email = _emails(user_local, np.full(n_users, ORG_DOMAIN, dtype=object), user_id)
    team_index = np.arange(n_users) % min(len(TEAMS), max(1, n_users // 5))
    lead_of_team = {t: user_id[np.flatnonzero(team_index == t)[0]] for t in set(team_index)}
    managers = np.array([lead_of_team[t] for t in team_index], dtype=object)
    managers[np.isin(user_id, list(lead_of_team.values()))] = None
    writer.write(
        "users",
        {
            "user_id": user_id, "full_name": user_name, "email": user_email,
            "team": TEAMS[team_index].astype(object), "manager_id": managers,
            "is_active": rng.random(n_users) > 0.05,
            "modified_at": _timestamps(history_start - rng.integers(0, 86_400 * 90, n_users)),
            "is_deleted": np.zeros(n_users, dtype=bool),
        },
    )  # fmt: skip

    account_id = _ids("acc", n_accounts, 5, 1)
    companies = np.char.add(rng.choice(LAST_NAMES, n_accounts), " ").astype(object)
    companies = companies + rng.choice(
        np.array(["Corp", "GmbH", "Ltd", "Group", "AG", "Inc"]), n_accounts
    )
    account_domain = np.char.lower(np.char.replace(companies.astype(str), " ", "-")).astype(object)
    account_domain = (
        account_domain + np.char.mod("%d", np.arange(n_accounts)).astype(object) + ".example"
    )
    account_owner = rng.integers(0, n_users, n_accounts)
    employees = np.round(rng.lognormal(5.5, 1.5, n_accounts)).astype("int64") + 5
    industry = rng.choice(INDUSTRIES, n_accounts).astype(object)
    writer.write(
        "accounts",
        {
            "account_id": account_id, "name": companies, "industry": industry,
            "annual_revenue": np.round(employees * rng.lognormal(11.5, 0.6, n_accounts), -3),
            "employees": employees, "country": rng.choice(COUNTRIES, n_accounts).astype(object),
            "parent_account_id": np.full(n_accounts, None, dtype=object),
            "owner_id": user_id[account_owner],
            "modified_at": _timestamps(history_start + rng.integers(0, 86_400 * 30, n_accounts)),
            "is_deleted": np.zeros(n_accounts, dtype=bool),
        },
    )  # fmt: skip

    contact_count = rng.integers(1, 7, n_accounts)
    contact_start = np.concatenate([[0], np.cumsum(contact_count)[:-1]])
    n_contacts = int(contact_count.sum())
    contact_account = np.repeat(np.arange(n_accounts), contact_count)
    contact_id = _ids("con", n_contacts, 6, 1)
    contact_name, contact_local = _names(rng, n_contacts)
    contact_email = _emails(contact_local, account_domain[contact_account], contact_id)
    writer.write(
        "contacts",
        {
            "contact_id": contact_id, "account_id": account_id[contact_account],
            "full_name": contact_name, "email": contact_email,
            "job_title": rng.choice(np.array(["CFO", "CTO", "Buyer", "Engineer", "VP Sales",
                                              "Analyst"]), n_contacts).astype(object),
            "modified_at": _timestamps(history_start + rng.integers(0, 86_400 * 60, n_contacts)),
            "is_deleted": np.zeros(n_contacts, dtype=bool),
        },
    )  # fmt: skip

    opp_count = rng.integers(0, 5, n_accounts)
    opp_start = np.concatenate([[0], np.cumsum(opp_count)[:-1]])
    n_opps = int(opp_count.sum())
    opp_account = np.repeat(np.arange(n_accounts), opp_count)
    opportunity_id = _ids("opp", n_opps, 6, 1)
    product = rng.integers(0, len(PRODUCTS), n_opps)
    status = rng.choice(np.array(["open", "won", "lost"]), n_opps, p=[0.45, 0.3, 0.25])
    created = history_start + rng.integers(0, HISTORY_DAYS * 86_400, n_opps)
    is_open = status == "open"
    # Closed deals close 2-20 weeks after creation (not after the as-of date, nor before their
    # creation: a deal created on the last day closes then); open ones are expected from three
    # weeks ago (overdue) to five months ahead.
    closed_at = np.maximum(
        created,
        np.minimum(created + rng.integers(14, 140, n_opps) * 86_400, as_of_end - 86_400),
    )
    expected = np.where(is_open, as_of_end + rng.integers(-21, 150, n_opps) * 86_400, closed_at)
    estimated = estimated_values(
        product, employees[opp_account], industry[opp_account], rng.lognormal(0, 0.4, n_opps)
    )
    stage = np.where(is_open, rng.choice(STAGES, n_opps, p=[0.35, 0.3, 0.2, 0.15]), "close")
    writer.write(
        "opportunities",
        {
            "opportunity_id": opportunity_id,
            "name": companies[opp_account] + " " + PRODUCTS[product].astype(object),
            "account_id": account_id[opp_account],
            "primary_contact_id": contact_id[
                contact_start[opp_account]
                + (rng.random(n_opps) * contact_count[opp_account]).astype(int)
            ],
            "owner_id": user_id[account_owner[opp_account]],
            "product": PRODUCTS[product].astype(object), "stage": stage.astype(object),
            "status": status.astype(object), "estimated_value": estimated,
            "actual_value": np.where(
                status == "won", np.round(estimated * rng.uniform(0.8, 1.2, n_opps), -2), np.nan
            ),
            "estimated_close_date": pa.array(
                (expected // 86_400).astype("int32"), type=pa.date32()
            ),
            "actual_close_date": pa.array((closed_at // 86_400).astype("int32"), type=pa.date32(),
                                          mask=is_open),
            "created_at": _timestamps(created),
            "modified_at": _timestamps(np.where(is_open, created, closed_at) + 3600),
            "record_url": "https://crm.example/opportunity/" + opportunity_id,
            "is_deleted": np.zeros(n_opps, dtype=bool),
        },
    )  # fmt: skip

    lead_id = _ids("lea", n_leads, 5, 1)
    lead_name, lead_local = _names(rng, n_leads)
    lead_company = rng.choice(LAST_NAMES, n_leads).astype(object) + " Ventures"
    lead_domain = np.char.replace(np.char.lower(lead_company.astype(str)), " ", "-").astype(object)
    lead_email = _emails(lead_local, lead_domain + ".example", lead_id)
    lead_owner = rng.integers(0, n_users, n_leads)
    lead_created = history_start + rng.integers(0, HISTORY_DAYS * 86_400, n_leads)
    writer.write(
        "leads",
        {
            "lead_id": lead_id, "full_name": lead_name, "company_name": lead_company,
            "email": lead_email,
            "status": rng.choice(np.array(["open", "qualified", "disqualified"]), n_leads,
                                 p=[0.6, 0.25, 0.15]).astype(object),
            "owner_id": user_id[lead_owner], "created_at": _timestamps(lead_created),
            "modified_at": _timestamps(lead_created + 600),
            "is_deleted": np.zeros(n_leads, dtype=bool),
        },
    )  # fmt: skip

    quiet = rng.random(n_accounts) < QUIET_ACCOUNT_SHARE
    quiet_since = np.where(quiet, as_of_end - rng.integers(30, 120, n_accounts) * 86_400, as_of_end)
    return People(
        user_id, account_id, user_email, account_owner, contact_id, contact_email, contact_start,
        contact_count, rng.pareto(1.5, n_accounts) + 0.2, quiet_since, opportunity_id, opp_start,
        opp_count, lead_id, lead_email, lead_owner,
    )  # fmt: skip


@dataclass
class _Chunk:
    """Aligned arrays of one chunk's activities, and a growing list of their parties."""

    columns: dict[str, np.ndarray]
    parties: list[dict[str, np.ndarray]]


@dataclass
class _Subjects:
    """What each activity of a chunk is and whom it concerns: aligned arrays, one per activity
    (indexes into People's arrays; `contact` and `opp` -1 where the account has none)."""

    kinds: np.ndarray
    account: np.ndarray
    contact: np.ndarray
    user: np.ndarray
    on_lead: np.ndarray
    lead: np.ndarray
    regarding_type: np.ndarray
    regarding_id: np.ndarray


@dataclass
class _Timing:
    """Each activity's status and start; `when` is its day in the history, `last_moment` the end
    of its account's activity (the quiet date or the as-of end)."""

    status: np.ndarray
    is_open: np.ndarray
    when: np.ndarray
    start: np.ndarray
    last_moment: np.ndarray


@dataclass
class _Threads:
    """Emails in threads: each row's position in its thread and the thread's first row (itself
    for rows that are not emails), and whether our team sent it (or made the call)."""

    email_rows: np.ndarray
    position: np.ndarray
    of: np.ndarray
    from_team: np.ndarray


def _pick(rng, start: np.ndarray, count: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """A random member (index) of each owner's contiguous block; -1 where the block is empty."""
    offset = (rng.random(len(owners)) * count[owners]).astype(int)
    return np.where(count[owners] > 0, start[owners] + offset, -1)


def _add_parties(chunk: _Chunk, rows: np.ndarray, role: str, party_type, party_id, address):
    n = len(rows)
    chunk.parties.append(
        {
            "activity_id": chunk.columns["activity_id"][rows],
            "role": np.full(n, role, dtype=object),
            "party_type": np.broadcast_to(np.asarray(party_type, dtype=object), n).copy(),
            "party_id": party_id,
            "address": address,
        }
    )


# Each function below draws from the chunk's stream in turn: their order is the data set's.


def _activity_chunk(rng, p: People, n: int, first_id: int, as_of_end: int) -> _Chunk:
    subjects = _subjects(rng, p, n)
    timing = _timing(rng, p, subjects, as_of_end)
    threads = _threads(rng, subjects, timing, as_of_end)
    chunk, internal_only = _activities(rng, p, subjects, timing, threads, first_id, as_of_end)
    _parties(rng, p, chunk, subjects, threads.from_team, internal_only)
    return chunk


def _subjects(rng, p: People, n: int) -> _Subjects:
    """Type, account, contact, owner and the record each activity is regarding."""
    kinds = rng.choice(np.array(list(TYPE_SHARES)), n, p=list(TYPE_SHARES.values()))
    account = rng.choice(len(p.account_weight), n, p=p.account_weight / p.account_weight.sum())
    contact = _pick(rng, p.contact_start, p.contact_count, account)
    user = np.where(
        rng.random(n) < 0.7, p.account_owner[account], rng.integers(0, len(p.user_id), n)
    )
    # About one activity in twelve works a lead instead of an account.
    on_lead = rng.random(n) < 0.08
    lead = rng.integers(0, len(p.lead_id), n)
    user = np.where(on_lead, p.lead_owner[lead], user)

    opp = _pick(rng, p.opp_start, p.opp_count, account)
    regarding_draw = rng.random(n)
    regarding_type = np.select(
        [on_lead, (regarding_draw < 0.65) & (opp >= 0), regarding_draw < 0.8,
         regarding_draw < 0.95],
        ["lead", "opportunity", "account", "contact"], default="",
    ).astype(object)  # fmt: skip
    regarding_id = np.select(
        [regarding_type == "lead", regarding_type == "opportunity", regarding_type == "account",
         regarding_type == "contact"],
        [p.lead_id[lead], p.opportunity_id[np.maximum(opp, 0)], p.account_id[account],
         p.contact_id[contact]], default=None,
    ).astype(object)  # fmt: skip
    return _Subjects(kinds, account, contact, user, on_lead, lead, regarding_type, regarding_id)


def _timing(rng, p: People, s: _Subjects, as_of_end: int) -> _Timing:
    """Status and start: open activities are scheduled up to 30 days after the as-of date, the
    others fall on business hours of a day in the history before their account went quiet."""
    history_start = as_of_end - HISTORY_DAYS * 86_400
    n = len(s.kinds)
    open_share = np.vectorize(OPEN_SHARES.get)(s.kinds, 0.0)
    draw = rng.random(n)
    status = np.where(
        draw < open_share,
        "open",
        np.where(draw < open_share + CANCELED_SHARE, "canceled", "completed"),
    )
    status = np.where(s.kinds == "email", "completed", status)  # an email in the CRM was sent
    last_moment = p.quiet_since[s.account]
    when = history_start + rng.random(n) * (last_moment - history_start - 3 * 86_400)
    when = (when // 86_400) * 86_400 + rng.integers(7 * 3600, 19 * 3600, n)  # business hours
    ahead = as_of_end + rng.integers(0, 30, n) * 86_400 + rng.integers(8, 18, n) * 3600
    is_open = status == "open"
    return _Timing(status, is_open, when, np.where(is_open, ahead, when), last_moment)


def _threads(rng, s: _Subjects, timing: _Timing, as_of_end: int) -> _Threads:
    """Email threads: each email starts or continues a thread of its account's contact (its rows
    take the subjects of the thread's first); replies alternate sides and follow their parent
    after a realistic delay (timing.start moves with them)."""
    n = len(s.kinds)
    email = s.kinds == "email"
    position = np.zeros(n, dtype=int)
    thread_of = np.arange(n)
    email_rows = np.flatnonzero(email)
    lengths = np.minimum(rng.geometric(0.45, len(email_rows)), 8)
    lengths_cum = np.cumsum(lengths)
    n_threads = int(np.searchsorted(lengths_cum, len(email_rows))) + 1
    lengths = lengths[:n_threads]
    lengths[-1] -= lengths_cum[n_threads - 1] - len(email_rows)
    head = np.repeat(email_rows[np.concatenate([[0], np.cumsum(lengths)[:-1]])], lengths)
    position[email_rows] = np.arange(len(email_rows)) - np.repeat(
        np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths
    )
    thread_of[email_rows] = head
    for same in (s.account, s.contact, s.user, s.on_lead, s.lead, s.regarding_type,
                 s.regarding_id):  # fmt: skip
        same[email_rows] = same[head]
    team_first = rng.random(n) < 0.65
    from_team = np.where(email, team_first[thread_of] ^ (position % 2 == 1), rng.random(n) < 0.7)
    median = np.where(from_team, TEAM_REPLY_MEDIAN_H, CUSTOMER_REPLY_MEDIAN_H)
    delay = np.where(position > 0, rng.lognormal(np.log(median), REPLY_SIGMA) * 3600, 0)
    # Reply time = thread start + the delays of the thread so far (a cumulative sum per thread).
    cum = np.cumsum(np.where(email, delay, 0))
    start_of_thread = cum[thread_of] - np.where(email, delay, 0)[thread_of]
    start = np.where(email, timing.start[thread_of] + (cum - start_of_thread), timing.start)
    # A reply that would fall after the as-of date (or the quiet date) never happened: the thread
    # just ends unanswered; the row becomes a fresh outgoing email within the history.
    late = email & (start >= np.minimum(timing.last_moment, as_of_end))
    timing.start = np.where(late, timing.when, start)
    position[late] = 0
    thread_of[late] = np.flatnonzero(late)
    from_team[late] = True
    return _Threads(email_rows, position, thread_of, from_team)


def _activities(
    rng,
    p: People,
    s: _Subjects,
    timing: _Timing,
    threads: _Threads,
    first_id: int,
    as_of_end: int,
) -> tuple[_Chunk, np.ndarray]:
    """The chunk's activity rows (no parties yet), and which emails stay inside the team."""
    n, kinds, start = len(s.kinds), s.kinds, timing.start
    email, position, thread_of = kinds == "email", threads.position, threads.of
    internal_only = email & (rng.random(n) < INTERNAL_ONLY_EMAIL_SHARE) & (position == 0)
    threads.from_team[internal_only] = True
    activity_id = np.char.mod("act-%08d", np.arange(first_id, first_id + n)).astype(object)
    direction = np.where(
        kinds == "task", None, np.where(threads.from_team, "outgoing", "incoming")
    ).astype(object)
    direction[kinds == "appointment"] = None
    direction[internal_only] = None
    occurred = np.where(timing.status == "completed", start, np.nan)
    duration_planned = np.select(
        [kinds == "appointment", kinds == "phone_call", kinds == "task"],
        [rng.choice([30, 45, 60, 90], n), np.maximum(1, rng.lognormal(np.log(8), 0.7, n)).round(),
         rng.choice([15, 30, 60], n)], default=np.nan,
    )  # fmt: skip
    # Open activities are always scheduled; some completed ones were never planned.
    scheduled = (kinds != "email") & (timing.is_open | (rng.random(n) < 0.9))
    duration_actual = np.where(
        (timing.status == "completed") & (kinds != "email") & (rng.random(n) < 0.8),
        duration_planned,
        np.nan,
    )
    topic = rng.choice(TOPICS, n).astype(object)
    subject = np.where(
        position > 0, rng.choice(REPLY_PREFIXES, n).astype(object) + topic[thread_of], topic
    ).astype(object)
    message_id = np.where(email, "<" + activity_id + "@mail.example>", None).astype(object)
    parent = np.full(n, -1)
    # The thread's previous email, where it has one.
    parent[threads.email_rows[1:]] = threads.email_rows[:-1]
    has_reply_header = (position > 0) & (rng.random(n) < 0.85)
    in_reply_to = np.where(has_reply_header, message_id[np.maximum(parent, 0)], None).astype(object)
    has_conversation = email & (rng.random(n)[thread_of] < 0.85)
    conversation = np.where(has_conversation, "conv-" + activity_id[thread_of], None).astype(object)
    created = np.where(timing.is_open, as_of_end - rng.integers(1, 20, n) * 86_400, start)
    columns = {
        "activity_id": activity_id, "activity_type": kinds.astype(object), "subject": subject,
        "direction": direction, "status": timing.status.astype(object),
        "owner_id": p.user_id[s.user],
        "regarding_type": np.where(s.regarding_type == "", None, s.regarding_type),
        "regarding_id": s.regarding_id,
        "occurred_at": _timestamps(occurred),
        "scheduled_start": _timestamps(np.where(scheduled, start, np.nan)),
        "scheduled_end": _timestamps(np.where(scheduled, start + duration_planned * 60, np.nan)),
        "duration_minutes": duration_actual, "conversation_id": conversation,
        "message_id": message_id, "in_reply_to": in_reply_to,
        "created_at": _timestamps(created),
        "modified_at": _timestamps(np.maximum(created, np.nan_to_num(occurred, nan=0)) + 60),
        "is_deleted": np.zeros(n, dtype=bool),
    }  # fmt: skip
    return _Chunk(columns, []), internal_only


@dataclass
class _Sides:
    """Per activity: the people on each side. Ours: the owner (`user`, its address `user_addr`)
    and a `colleague`; theirs: the lead or contact, or an address not in the CRM."""

    user: np.ndarray
    user_addr: np.ndarray
    colleague: np.ndarray
    external_type: np.ndarray
    external_id: np.ndarray
    external_addr: np.ndarray


def _parties(rng, p: People, chunk: _Chunk, s: _Subjects, from_team, internal_only) -> None:
    """Every activity's parties, added to `chunk`."""
    contact = np.maximum(s.contact, 0)
    external_id = np.where(s.on_lead, p.lead_id[s.lead], p.contact_id[contact])
    external_addr = np.where(s.on_lead, p.lead_email[s.lead], p.contact_email[contact])
    external_type = np.where(s.on_lead, "lead", "contact").astype(object)
    # A few customer addresses are not in the CRM: they stay unresolved.
    unresolved = rng.random(len(s.kinds)) < 0.03
    external_type[unresolved] = "unresolved"
    external_id = np.where(unresolved, None, external_id)
    colleague = rng.integers(0, len(p.user_id), len(s.kinds))
    sides = _Sides(s.user, p.user_email[s.user], colleague, external_type, external_id,
                   external_addr)  # fmt: skip
    _message_parties(rng, p, chunk, s.kinds, sides, from_team, internal_only)
    _meeting_parties(rng, p, chunk, s, sides)
    tasks = np.flatnonzero(s.kinds == "task")
    _add_parties(chunk, tasks, "owner", "user", p.user_id[s.user[tasks]], sides.user_addr[tasks])


def _message_parties(rng, p: People, chunk: _Chunk, kinds, sides: _Sides, from_team,
                     internal_only) -> None:  # fmt: skip
    """Emails and calls: from one side to the other (or to a colleague, internal emails); some
    emails copy a colleague (cc, bcc)."""
    user, colleague = sides.user, sides.colleague
    rows = np.flatnonzero((kinds == "email") | (kinds == "phone_call"))
    team_side = from_team[rows]
    _add_parties(chunk, rows, "from",
                 np.where(team_side, "user", sides.external_type[rows]),
                 np.where(team_side, p.user_id[user[rows]], sides.external_id[rows]),
                 np.where(team_side, sides.user_addr[rows], sides.external_addr[rows]))  # fmt: skip
    recipient_internal = ~team_side | internal_only[rows]
    to_user = np.where(internal_only[rows], colleague[rows], user[rows])
    _add_parties(chunk, rows, "to",
                 np.where(recipient_internal, "user", sides.external_type[rows]),
                 np.where(recipient_internal, p.user_id[to_user], sides.external_id[rows]),
                 np.where(recipient_internal, p.user_email[to_user],
                          sides.external_addr[rows]))  # fmt: skip
    cc = rows[(kinds[rows] == "email") & ~internal_only[rows] & (rng.random(len(rows)) < 0.2)]
    _add_parties(chunk, cc, "cc", "user", p.user_id[colleague[cc]], p.user_email[colleague[cc]])
    bcc = rows[(kinds[rows] == "email") & ~internal_only[rows] & (rng.random(len(rows)) < 0.03)]
    _add_parties(chunk, bcc, "bcc", "user", p.user_id[colleague[bcc]], p.user_email[colleague[bcc]])


def _meeting_parties(rng, p: People, chunk: _Chunk, s: _Subjects, sides: _Sides) -> None:
    """Meetings: an organizer and a required attendee on opposite sides (the customer organizes
    one in four), an optional colleague, and often a second contact of the account."""
    meetings = np.flatnonzero(s.kinds == "appointment")
    by_customer = rng.random(len(meetings)) < 0.25
    m_ext_type, m_ext_id, m_ext_addr = (
        sides.external_type[meetings],
        sides.external_id[meetings],
        sides.external_addr[meetings],
    )
    m_user_id, m_user_addr = p.user_id[s.user[meetings]], sides.user_addr[meetings]
    _add_parties(chunk, meetings, "organizer",
                 np.where(by_customer, m_ext_type, "user"),
                 np.where(by_customer, m_ext_id, m_user_id),
                 np.where(by_customer, m_ext_addr, m_user_addr))  # fmt: skip
    _add_parties(chunk, meetings, "required_attendee",
                 np.where(by_customer, "user", m_ext_type),
                 np.where(by_customer, m_user_id, m_ext_id),
                 np.where(by_customer, m_user_addr, m_ext_addr))  # fmt: skip
    extra = meetings[rng.random(len(meetings)) < 0.4]
    _add_parties(chunk, extra, "optional_attendee", "user", p.user_id[sides.colleague[extra]],
                 p.user_email[sides.colleague[extra]])  # fmt: skip
    second = meetings[(rng.random(len(meetings)) < 0.4) & ~s.on_lead[meetings]]
    other = _pick(rng, p.contact_start, p.contact_count, s.account[second])
    _add_parties(chunk, second, "required_attendee", "contact", p.contact_id[other],
                 p.contact_email[other])  # fmt: skip


def generate_dataset(
    out: Path,
    activities: int,
    seed: int,
    as_of: dt.date,
    fmt: str = "parquet",
    progress: bool = False,
) -> dict[str, int]:
    """Write a synthetic CRM with `activities` activities, history ending at `as_of`, into `out`.

    Returns the number of rows written per entity.
    """
    from tqdm import tqdm

    if activities < 1:
        raise ValueError("activities must be at least 1")
    writer = _Writer(Path(out), fmt)
    as_of_end = _seconds(as_of + dt.timedelta(days=1))
    people = _people(np.random.default_rng([seed, 0]), writer, activities, as_of_end)
    chunks = range(0, activities, CHUNK_ACTIVITIES)
    bar = tqdm(total=activities, unit="activity", disable=not progress, desc="activities")
    for index, first in enumerate(chunks, start=1):
        size = min(CHUNK_ACTIVITIES, activities - first)
        # Each chunk has its own stream, so the data set does not depend on anything but the seed.
        chunk = _activity_chunk(
            np.random.default_rng([seed, index]), people, size, first + 1, as_of_end
        )
        writer.write("activities", chunk.columns)
        writer.write(
            "activity_parties",
            {
                name: np.concatenate([part[name] for part in chunk.parties])
                for name in chunk.parties[0]
            },
        )
        bar.update(size)
    bar.close()
    return writer.counts

"""The second method: relationship_kpis in one hand-written DuckDB pass, straight from landed
Parquet.

Written independently of the dbt models, it computes the same figures a second way: `compare()`
counts the rows of marts.relationship_kpis it disagrees with
(tests/pipeline/test_kpis_second_method.py). benchmarks/bench_pipeline.py runs it as its
yardstick: what the pipeline's transformation costs at the least (no dbt, no warehouse tables but
its result, no tests).

Written for the generator's output: one version per record and one party set per activity, so
version ties and party-set replacement (which the pipeline handles) do not arise.
"""

import duckdb

WINDOW_DAYS, PERIOD_DAYS = 7, 90
WRITE, READ = 5, 2.5
DEFAULT_MINUTES = (
    "CASE activity_type WHEN 'appointment' THEN 30 WHEN 'phone_call' THEN 10 ELSE 15 END"
)
PREFIXES = "re|fw|fwd|aw|wg|sv|vs|tr|rv|回复|答复|转发"

SCRIPT = """
CREATE TEMP TABLE acts AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY activity_id ORDER BY modified_at DESC) AS rn
    FROM read_parquet('{landing}/activities/*.parquet'))
WHERE rn = 1 AND NOT coalesce(is_deleted, false);

CREATE TEMP TABLE users AS SELECT * FROM read_parquet('{landing}/users/*.parquet') WHERE NOT is_deleted;
CREATE TEMP TABLE contacts AS SELECT * FROM read_parquet('{landing}/contacts/*.parquet') WHERE NOT is_deleted;
CREATE TEMP TABLE accounts AS SELECT * FROM read_parquet('{landing}/accounts/*.parquet') WHERE NOT is_deleted;
CREATE TEMP TABLE opps AS SELECT * FROM read_parquet('{landing}/opportunities/*.parquet') WHERE NOT is_deleted;
CREATE TEMP TABLE leads AS SELECT * FROM read_parquet('{landing}/leads/*.parquet') WHERE NOT is_deleted;

-- people per activity: roles that take part by type, the task's owner, one row per person
CREATE TEMP TABLE people AS
WITH parties AS (
    SELECT p.activity_id, p.role, p.party_type, coalesce(p.party_id, lower(p.address)) AS person,
           lower(p.address) AS address, a.activity_type
    FROM read_parquet('{landing}/activity_parties/*.parquet') p JOIN acts a USING (activity_id)
    WHERE (a.activity_type = 'email' AND p.role IN ('from', 'to', 'cc', 'bcc'))
       OR (a.activity_type = 'phone_call' AND p.role IN ('from', 'to'))
       OR (a.activity_type = 'appointment' AND p.role IN ('organizer', 'required_attendee', 'optional_attendee'))
       OR (a.activity_type = 'task' AND p.role = 'owner')
    UNION ALL
    SELECT activity_id, 'owner', 'user', owner_id, NULL, activity_type FROM acts
    WHERE activity_type = 'task' AND owner_id IS NOT NULL
),
domains AS (SELECT DISTINCT split_part(lower(email), '@', 2) AS domain FROM users WHERE email LIKE '%@%')
SELECT activity_id, party_type, person,
       bool_or(party_type = 'user' OR (party_type = 'unresolved' AND d.domain IS NOT NULL)) AS internal,
       bool_or(role = 'from') AS sender, bool_or(role = 'organizer') AS organizer
FROM parties LEFT JOIN domains d ON party_type = 'unresolved' AND split_part(address, '@', 2) = d.domain
WHERE person IS NOT NULL
GROUP BY ALL;

CREATE TEMP TABLE cls AS
WITH s AS (
    SELECT activity_id,
           count(*) FILTER (internal) AS ip, count(*) FILTER (NOT internal) AS ep,
           count(*) FILTER (internal AND NOT sender) AS ir, count(*) FILTER (NOT internal AND NOT sender) AS er,
           max(CASE WHEN sender THEN CASE WHEN internal THEN 'internal' ELSE 'external' END END) AS sender_side,
           min(CASE WHEN organizer THEN CASE WHEN internal THEN 'internal' ELSE 'external' END END) AS org_side
    FROM people GROUP BY activity_id
), base AS (
    SELECT a.*, coalesce(ip, 0) AS ip, coalesce(ep, 0) AS ep, coalesce(ir, 0) AS ir, coalesce(er, 0) AS er,
        CASE WHEN a.status = 'completed' THEN coalesce(a.occurred_at, a.scheduled_start) END::TIMESTAMP AS ts,
        CASE WHEN a.status = 'open' THEN coalesce(a.scheduled_start, a.scheduled_end) END::TIMESTAMP AS sched,
        CASE WHEN a.activity_type IN ('email', 'phone_call') THEN coalesce(a.direction,
            CASE sender_side WHEN 'internal' THEN 'outgoing' WHEN 'external' THEN 'incoming' END) END AS dir,
        CASE WHEN a.activity_type = 'appointment' THEN coalesce(org_side,
            CASE WHEN a.owner_id IS NOT NULL THEN 'internal' END) END AS org,
        sender_side,
        CASE WHEN a.duration_minutes >= 0 THEN a.duration_minutes
             WHEN a.scheduled_end > a.scheduled_start THEN epoch(a.scheduled_end - a.scheduled_start) / 60
             ELSE {default_minutes} END AS minutes
    FROM acts a LEFT JOIN s USING (activity_id)
)
SELECT *,
    activity_type <> 'task' AND ip > 0 AND ep > 0 AS conv,
    status <> 'canceled' AND (activity_type = 'task' OR (ip > 0 AND ep > 0)) AS counted,
    CASE WHEN activity_type = 'task' OR ip = 0 OR ep = 0 THEN NULL
         WHEN dir = 'outgoing' OR org = 'internal' THEN 'team'
         WHEN dir = 'incoming' OR org = 'external' THEN 'customer' END AS init,
    CASE WHEN activity_type = 'email' THEN (CASE WHEN sender_side = 'internal' THEN {write} ELSE 0 END) + ir * {read}
         ELSE minutes * ip END AS team_min,
    CASE WHEN activity_type = 'email' THEN (CASE WHEN sender_side = 'external' THEN {write} ELSE 0 END) + er * {read}
         ELSE minutes * ep END AS cust_min
FROM base;

CREATE TEMP TABLE membership AS
WITH cp AS (SELECT DISTINCT activity_id, person AS contact_id FROM people WHERE party_type = 'contact')
SELECT DISTINCT * FROM (
    SELECT regarding_type AS record_type, regarding_id AS record_id, activity_id FROM acts
    WHERE regarding_type IS NOT NULL
    UNION ALL SELECT 'contact', contact_id, activity_id FROM cp
    UNION ALL SELECT 'account', o.account_id, a.activity_id FROM acts a
        JOIN opps o ON a.regarding_type = 'opportunity' AND a.regarding_id = o.opportunity_id
    UNION ALL SELECT 'account', c.account_id, a.activity_id FROM acts a
        JOIN contacts c ON a.regarding_type = 'contact' AND a.regarding_id = c.contact_id
    UNION ALL SELECT 'account', c.account_id, cp.activity_id FROM cp JOIN contacts c USING (contact_id)
) WHERE record_id IS NOT NULL;

-- replies: rule 1 by header, rule 2 by conversation, rule 3 by subject and record
CREATE TEMP TABLE emails AS
SELECT activity_id, ts, CASE dir WHEN 'outgoing' THEN 'team' ELSE 'customer' END AS side, message_id,
       in_reply_to, conversation_id, regarding_type, regarding_id,
       nullif(trim(regexp_replace(regexp_replace(lower(subject), '^\\s*(({prefixes})\\s*[:：]\\s*)+', '', 'g'),
                                  '\\s+', ' ', 'g')), '') AS subj
FROM cls WHERE activity_type = 'email' AND counted AND dir IN ('outgoing', 'incoming') AND ts < TIMESTAMP '{end}';

CREATE TEMP TABLE replies AS
WITH header AS (
    SELECT c.activity_id, c.side, arg_max(p.activity_id, (p.ts, p.activity_id)) AS parent,
           arg_max(p.side, (p.ts, p.activity_id)) AS parent_side
    FROM emails c JOIN emails p ON c.in_reply_to = p.message_id AND p.ts <= c.ts AND p.activity_id <> c.activity_id
    GROUP BY c.activity_id, c.side
), rest AS (SELECT e.* FROM emails e ANTI JOIN header h USING (activity_id)),
conv AS (
    SELECT c.activity_id, arg_max(p.activity_id, (p.ts, p.activity_id)) AS parent FROM rest c
    JOIN emails p ON c.conversation_id = p.conversation_id AND c.side <> p.side AND p.ts < c.ts
    GROUP BY c.activity_id
), subj AS (
    SELECT c.activity_id, arg_max(p.activity_id, (p.ts, p.activity_id)) AS parent FROM rest c
    JOIN emails p ON c.conversation_id IS NULL AND c.subj = p.subj AND c.regarding_type = p.regarding_type
        AND c.regarding_id = p.regarding_id AND c.side <> p.side AND p.ts < c.ts
    GROUP BY c.activity_id
)
SELECT activity_id, parent FROM header WHERE side <> parent_side
UNION ALL SELECT * FROM conv UNION ALL SELECT * FROM subj;

CREATE TEMP TABLE responses AS
WITH first AS (
    SELECT r.parent, arg_min(e.ts, (e.ts, e.activity_id)) AS reply_at
    FROM replies r JOIN emails e USING (activity_id) GROUP BY r.parent
)
SELECT e.activity_id, e.side, e.ts + INTERVAL {window} DAY <= TIMESTAMP '{end}' AS closed,
       CASE WHEN f.reply_at <= e.ts + INTERVAL {window} DAY THEN epoch(f.reply_at - e.ts) / 3600 END AS hours
FROM emails e LEFT JOIN first f ON f.parent = e.activity_id;

CREATE TEMP TABLE records AS
SELECT 'opportunity' AS record_type, opportunity_id AS record_id FROM opps
UNION ALL SELECT 'lead', lead_id FROM leads
UNION ALL SELECT 'account', account_id FROM accounts
UNION ALL SELECT 'contact', contact_id FROM contacts;

CREATE TEMP TABLE yardstick AS
WITH ra AS (
    SELECT m.record_type, m.record_id, c.* FROM membership m JOIN cls c USING (activity_id) WHERE c.counted
), periods(period, start) AS (
    VALUES ('all', TIMESTAMP '1900-01-01'), ('trailing', TIMESTAMP '{end}' - INTERVAL {period} DAY)
), past AS (
    SELECT ra.*, p.period, r.side AS eside, r.closed, r.hours FROM ra CROSS JOIN periods p
    LEFT JOIN responses r USING (activity_id)
    WHERE ra.ts < TIMESTAMP '{end}' AND ra.ts >= p.start
), agg AS (
    SELECT record_type, record_id, period, count(*) AS past_activities,
        count(*) FILTER (activity_type = 'email' AND dir = 'outgoing') AS emails_sent,
        count(*) FILTER (activity_type = 'email' AND dir = 'incoming') AS emails_received,
        count(*) FILTER (activity_type = 'appointment') AS meetings,
        count(*) FILTER (activity_type = 'phone_call' AND dir = 'outgoing') AS calls_outgoing,
        count(*) FILTER (activity_type = 'phone_call' AND dir = 'incoming') AS calls_incoming,
        count(*) FILTER (init = 'customer') AS customer_initiated,
        count(*) FILTER (init = 'team') AS team_initiated,
        count(*) FILTER (eside = 'team' AND closed AND hours IS NOT NULL)
            / nullif(count(*) FILTER (eside = 'team' AND closed), 0) AS customer_response_rate,
        avg(hours) FILTER (eside = 'team') AS customer_response_hours,
        quantile_cont(hours, 0.5) FILTER (eside = 'team') AS customer_response_hours_median,
        avg(hours) FILTER (eside = 'customer') AS team_response_hours,
        quantile_cont(hours, 0.5) FILTER (eside = 'customer') AS team_response_hours_median,
        sum(team_min) AS team_time_minutes, sum(cust_min) AS customer_time_minutes,
        arg_max(ts, (ts, activity_id)) FILTER (conv) AS last_contacted_at,
        arg_max(owner_id, (ts, activity_id)) FILTER (conv) AS last_contacted_by
    FROM past GROUP BY ALL
), up AS (
    SELECT record_type, record_id, count(*) AS upcoming_activities,
        arg_min(sched, (sched, activity_id)) FILTER (conv) AS next_contact_at,
        arg_min(owner_id, (sched, activity_id)) FILTER (conv) AS next_contact_by
    FROM ra WHERE sched >= TIMESTAMP '{end}' GROUP BY ALL
)
SELECT r.record_type, r.record_id, p.period,
    coalesce(past_activities, 0) AS past_activities, coalesce(emails_sent, 0) AS emails_sent,
    coalesce(emails_received, 0) AS emails_received, coalesce(meetings, 0) AS meetings,
    coalesce(calls_outgoing, 0) AS calls_outgoing, coalesce(calls_incoming, 0) AS calls_incoming,
    coalesce(customer_initiated, 0) AS customer_initiated, coalesce(team_initiated, 0) AS team_initiated,
    coalesce(upcoming_activities, 0) AS upcoming_activities,
    customer_response_rate, customer_response_hours, customer_response_hours_median,
    team_response_hours, team_response_hours_median,
    coalesce(team_time_minutes, 0) AS team_time_minutes, coalesce(customer_time_minutes, 0) AS customer_time_minutes,
    last_contacted_at, last_contacted_by, next_contact_at, next_contact_by,
    emails_sent / nullif(emails_received, 0) AS email_send_ratio,
    emails_received / nullif(emails_sent, 0) AS customer_email_send_ratio
FROM records r CROSS JOIN periods p LEFT JOIN agg a USING (record_type, record_id, period)
LEFT JOIN up u USING (record_type, record_id);
"""

COLUMNS = (
    "past_activities", "emails_sent", "emails_received", "meetings", "calls_outgoing",
    "calls_incoming", "customer_initiated", "team_initiated", "upcoming_activities",
    "customer_response_rate", "customer_response_hours", "customer_response_hours_median",
    "team_response_hours", "team_response_hours_median", "team_time_minutes",
    "customer_time_minutes", "last_contacted_at", "last_contacted_by", "next_contact_at",
    "next_contact_by", "email_send_ratio", "customer_email_send_ratio",
)  # fmt: skip


def run(connection: duckdb.DuckDBPyConnection, landing: str, as_of_end: str) -> None:
    """Compute the yardstick into the temporary table `yardstick`."""
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(
        SCRIPT.format(
            landing=landing,
            end=as_of_end,
            window=WINDOW_DAYS,
            period=PERIOD_DAYS,
            write=WRITE,
            read=READ,
            default_minutes=DEFAULT_MINUTES,
            prefixes=PREFIXES,
        )  # fmt: skip
    )


def compare(connection: duckdb.DuckDBPyConnection, warehouse: str) -> int:
    """Rows of marts.relationship_kpis that differ from the yardstick (floats to 1e-6)."""
    connection.execute(f"ATTACH '{warehouse}' AS pipeline (READ_ONLY)")
    differs = " OR ".join(
        f"NOT (y.{c} IS NOT DISTINCT FROM k.{c} OR abs(y.{c} - k.{c}) < 1e-6)"
        if "hours" in c or "ratio" in c or "rate" in c or "minutes" in c
        else f"y.{c} IS DISTINCT FROM k.{c}"
        for c in COLUMNS
    )
    (count,) = connection.execute(
        f"""
        SELECT count(*) FROM yardstick y FULL JOIN pipeline.marts.relationship_kpis k
            USING (record_type, record_id, period)
        WHERE y.record_id IS NULL OR k.record_id IS NULL OR {differs}
        """
    ).fetchone()
    connection.execute("DETACH pipeline")
    return count

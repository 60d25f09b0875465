-- The yardstick: every mart of a full refresh but similar_won_deals and won_deal_benchmarks (the
-- model's), computed in one DuckDB connection straight from the landed files, from the rules of
-- docs/metrics.md and docs/insights.md. The current versions of the records are the temporary
-- tables the Python side creates first (acts, users, contacts, accounts, opps, leads, parties,
-- opp_versions, org_domains); the marts end in the schema `yardstick`, named as the project's.
-- Placeholders: the as-of day D ({d}) and the days derived from it, and the settings.

-- The weight of the health signals that have data: the score and each signal's cost are shares of it.
CREATE TEMP MACRO available_weight(recency, frequency, reciprocity, responsiveness, breadth) AS
    CASE WHEN recency IS NOT NULL THEN {weight_recency} ELSE 0 END
    + CASE WHEN frequency IS NOT NULL THEN {weight_frequency} ELSE 0 END
    + CASE WHEN reciprocity IS NOT NULL THEN {weight_reciprocity} ELSE 0 END
    + CASE WHEN responsiveness IS NOT NULL THEN {weight_responsiveness} ELSE 0 END
    + CASE WHEN breadth IS NOT NULL THEN {weight_breadth} ELSE 0 END;

-- Who took part in each activity, once per person, with their side.
CREATE TEMP TABLE people AS
WITH parties AS (
    SELECT p.activity_id, p.role, p.party_type, coalesce(p.party_id, lower(p.address)) AS person,
           split_part(lower(p.address), '@', 2) AS domain
    FROM parties p JOIN acts a USING (activity_id)
    WHERE (a.activity_type = 'email' AND p.role IN ('from', 'to', 'cc', 'bcc'))
       OR (a.activity_type = 'phone_call' AND p.role IN ('from', 'to'))
       OR (a.activity_type = 'appointment' AND p.role IN ('organizer', 'required_attendee', 'optional_attendee'))
       OR (a.activity_type = 'task' AND p.role = 'owner')
    UNION ALL
    SELECT activity_id, 'owner', 'user', owner_id, NULL FROM acts
    WHERE activity_type = 'task' AND owner_id IS NOT NULL
),
domains AS (
    SELECT split_part(lower(email), '@', 2) AS domain FROM users WHERE email LIKE '%@%'
    UNION SELECT lower(domain) FROM org_domains
)
SELECT activity_id, party_type, person,
       bool_or(party_type = 'user' OR (party_type = 'unresolved' AND d.domain IS NOT NULL)) AS internal,
       bool_or(role = 'from') AS sender, bool_or(role = 'organizer') AS organizer
FROM parties LEFT JOIN domains d ON party_type = 'unresolved' AND parties.domain = d.domain
WHERE person IS NOT NULL
GROUP BY ALL;

-- Each activity classified: when, which direction, who started it, what it cost each side.
CREATE TEMP TABLE cls AS
WITH sides AS (
    SELECT activity_id,
           count(*) FILTER (internal) AS ip, count(*) FILTER (NOT internal) AS ep,
           count(*) FILTER (internal AND NOT sender) AS ir, count(*) FILTER (NOT internal AND NOT sender) AS er,
           max(CASE WHEN sender THEN CASE WHEN internal THEN 'internal' ELSE 'external' END END) AS sender_side,
           min(CASE WHEN organizer THEN CASE WHEN internal THEN 'internal' ELSE 'external' END END) AS org_side
    FROM people GROUP BY activity_id
), base AS (
    SELECT a.activity_id, a.activity_type, a.status, a.owner_id, a.subject, a.regarding_type,
        a.regarding_id, a.conversation_id, a.message_id, a.in_reply_to,
        coalesce(ip, 0) AS ip, coalesce(ep, 0) AS ep, coalesce(ir, 0) AS ir, coalesce(er, 0) AS er,
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
    FROM acts a LEFT JOIN sides s USING (activity_id)
)
SELECT *,
    activity_type <> 'task' AND ip > 0 AND ep > 0 AS conv,
    status <> 'canceled' AND (activity_type = 'task' OR (ip > 0 AND ep > 0)) AS counted,
    activity_type <> 'task' AND ip > 0 AND ep > 0
        AND (dir = 'incoming' OR activity_type = 'appointment') AS two_way,
    CASE WHEN activity_type = 'task' OR ip = 0 OR ep = 0 THEN NULL
         WHEN dir = 'outgoing' OR org = 'internal' THEN 'team'
         WHEN dir = 'incoming' OR org = 'external' THEN 'customer' END AS init,
    CASE WHEN activity_type = 'email' THEN (CASE WHEN sender_side = 'internal' THEN {write} ELSE 0 END) + ir * {read}
         ELSE minutes * ip END AS team_min,
    CASE WHEN activity_type = 'email' THEN (CASE WHEN sender_side = 'external' THEN {write} ELSE 0 END) + er * {read}
         ELSE minutes * ep END AS cust_min,
    CASE activity_type WHEN 'email' THEN {touch_email} WHEN 'phone_call' THEN {touch_call}
         WHEN 'appointment' THEN {touch_meeting} WHEN 'task' THEN {touch_task} ELSE 0 END AS touches
FROM base;

-- Every current record, with its name, company and owner, and an integer key.
CREATE TEMP TABLE records AS
SELECT row_number() OVER () AS record_key, * FROM (
    SELECT 'opportunity' AS record_type, o.opportunity_id AS record_id, o.name AS record_name,
           a.name AS company_name, o.owner_id
    FROM opps o LEFT JOIN accounts a USING (account_id)
    UNION ALL SELECT 'lead', lead_id, full_name, company_name, owner_id FROM leads
    UNION ALL SELECT 'account', account_id, name, name, owner_id FROM accounts
    UNION ALL SELECT 'contact', c.contact_id, c.full_name, a.name, a.owner_id
    FROM contacts c LEFT JOIN accounts a USING (account_id));

-- Which activities belong to which current record (each once).
CREATE TEMP TABLE membership AS
WITH cp AS (SELECT DISTINCT activity_id, person AS contact_id FROM people WHERE party_type = 'contact')
SELECT DISTINCT r.record_key, r.record_type, r.record_id, m.activity_id FROM (
    SELECT regarding_type AS record_type, regarding_id AS record_id, activity_id FROM acts
    UNION ALL SELECT 'contact', contact_id, activity_id FROM cp
    UNION ALL SELECT 'account', o.account_id, a.activity_id FROM acts a
        JOIN opps o ON a.regarding_type = 'opportunity' AND a.regarding_id = o.opportunity_id
    UNION ALL SELECT 'account', c.account_id, a.activity_id FROM acts a
        JOIN contacts c ON a.regarding_type = 'contact' AND a.regarding_id = c.contact_id
    UNION ALL SELECT 'account', c.account_id, cp.activity_id FROM cp JOIN contacts c USING (contact_id)
) m JOIN records r USING (record_type, record_id);

-- The counted activities of each record.
CREATE TEMP TABLE ra AS
SELECT m.record_key, m.record_type, m.record_id, c.* EXCLUDE (subject, message_id, in_reply_to)
FROM membership m JOIN cls c USING (activity_id) WHERE c.counted;

-- Replies: rule 1 by header, rule 2 by conversation, rule 3 by subject and record.
CREATE TEMP TABLE emails AS
SELECT activity_id, ts, CASE dir WHEN 'outgoing' THEN 'team' ELSE 'customer' END AS side, message_id,
       in_reply_to, conversation_id, regarding_type, regarding_id,
       nullif(trim(regexp_replace(regexp_replace(lower(subject), '^\s*(({prefixes})\s*[:：]\s*)+', '', 'g'),
                                  '\s+', ' ', 'g')), '') AS subj
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
SELECT r.activity_id, r.parent, e.ts FROM (
    SELECT activity_id, parent FROM header WHERE side <> parent_side
    UNION ALL SELECT * FROM conv UNION ALL SELECT * FROM subj
) r JOIN emails e USING (activity_id);

-- Each email's first reply, when it came within the response window.
CREATE TEMP TABLE responses AS
WITH first AS (SELECT parent, min(ts) AS reply_at FROM replies GROUP BY parent)
SELECT e.activity_id, e.side, e.ts, e.ts::DATE AS sent_day,
       e.ts + INTERVAL {window} DAY <= TIMESTAMP '{end}' AS closed,
       -- the day by whose end the window has closed (one ending at midnight: the day before)
       (e.ts + INTERVAL {window} DAY - INTERVAL 1 MICROSECOND)::DATE AS closed_day,
       CASE WHEN f.reply_at <= e.ts + INTERVAL {window} DAY THEN f.reply_at END AS response_at,
       CASE WHEN f.reply_at <= e.ts + INTERVAL {window} DAY THEN epoch(f.reply_at - e.ts) END AS seconds
FROM emails e LEFT JOIN first f ON f.parent = e.activity_id;

CREATE SCHEMA yardstick;

CREATE TABLE yardstick.relationship_kpis AS
WITH periods(period, start, period_days) AS (
    VALUES ('all', TIMESTAMP '1900-01-01', NULL::INTEGER),
           ('trailing', TIMESTAMP '{end}' - INTERVAL {period} DAY, {period})
), past AS (
    SELECT ra.*, p.period, r.side AS eside, r.closed, r.seconds / 3600 AS hours FROM ra CROSS JOIN periods p
    LEFT JOIN responses r USING (activity_id)
    WHERE ra.ts < TIMESTAMP '{end}' AND ra.ts >= p.start
), agg AS (
    SELECT record_key, period, count(*) AS past_activities,
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
), upcoming AS (
    SELECT record_key, count(*) AS upcoming_activities,
        arg_min(sched, (sched, activity_id)) FILTER (conv) AS next_contact_at,
        arg_min(owner_id, (sched, activity_id)) FILTER (conv) AS next_contact_by
    FROM ra WHERE sched >= TIMESTAMP '{end}' GROUP BY ALL
)
SELECT r.record_type, r.record_id, r.record_name, r.company_name, r.owner_id, p.period, p.period_days,
    DATE '{d}' AS as_of_date, last_contacted_at, last_contacted_by, next_contact_at, next_contact_by,
    coalesce(emails_sent, 0) AS emails_sent, coalesce(emails_received, 0) AS emails_received,
    coalesce(meetings, 0) AS meetings, coalesce(calls_outgoing, 0) AS calls_outgoing,
    coalesce(calls_incoming, 0) AS calls_incoming, coalesce(past_activities, 0) AS past_activities,
    coalesce(customer_initiated, 0) AS customer_initiated, coalesce(team_initiated, 0) AS team_initiated,
    coalesce(upcoming_activities, 0) AS upcoming_activities,
    customer_response_rate, customer_response_hours, customer_response_hours_median,
    team_response_hours, team_response_hours_median,
    coalesce(team_time_minutes, 0) AS team_time_minutes, coalesce(customer_time_minutes, 0) AS customer_time_minutes,
    emails_sent / nullif(emails_received, 0) AS email_send_ratio,
    emails_received / nullif(emails_sent, 0) AS customer_email_send_ratio
FROM records r CROSS JOIN periods p LEFT JOIN agg a USING (record_key, period)
LEFT JOIN upcoming u USING (record_key);

-- Figures in sentences: rounded to 9 digits, then to one decimal half away from zero as a decimal.
CREATE TABLE yardstick.record_summary AS
WITH k AS (SELECT * FROM yardstick.relationship_kpis WHERE period = 'trailing'),
texts AS (
    SELECT k.record_type, k.record_id,
        CASE WHEN past_activities = 0 THEN format('No completed activity in the last {} days.', period_days)
            ELSE format('In the last {} days: {} sent and {} received, {}, {} and {}.', period_days,
                plural(emails_sent, 'email'), emails_received, plural(meetings, 'meeting'),
                plural(calls_outgoing + calls_incoming, 'call'),
                plural(past_activities - emails_sent - emails_received - meetings - calls_outgoing
                       - calls_incoming, 'task'))
        END AS activity,
        format('The customer answered {}% of our emails', round(round(customer_response_rate * 100, 9))::BIGINT)
            || CASE WHEN customer_response_hours IS NOT NULL
                    THEN format(', after {} hours on average', tenths(customer_response_hours)) ELSE '' END
            || '.' AS customer_replies,
        format('We answered the customer after {} hours on average.', tenths(team_response_hours)) AS team_replies,
        CASE WHEN last_contacted_at IS NULL THEN 'Not contacted in this period.'
            ELSE format('Last contact on {}', last_contacted_at::DATE) || coalesce(' by ' || l.full_name, '') || '.'
        END AS last_contact,
        CASE WHEN next_contact_at IS NULL THEN 'No contact scheduled.'
            ELSE format('Next contact on {}', next_contact_at::DATE) || coalesce(' by ' || n.full_name, '') || '.'
        END AS next_contact,
        CASE WHEN team_time_minutes + customer_time_minutes > 0
            THEN format('Time invested: {} hours by our team, {} by the customer.',
                        tenths(team_time_minutes / 60), tenths(customer_time_minutes / 60)) END AS time_spent
    FROM k LEFT JOIN users l ON l.user_id = k.last_contacted_by LEFT JOIN users n ON n.user_id = k.next_contact_by
)
SELECT record_type, record_id,
    concat_ws(' ', activity, customer_replies, team_replies, last_contact, next_contact, time_spent) AS summary
FROM texts;

CREATE TABLE yardstick.relationship_activity_daily AS
SELECT record_type, record_id, ts::DATE AS activity_date,
    CASE WHEN activity_type = 'task' THEN 'task'
         WHEN activity_type = 'email' AND dir = 'outgoing' THEN 'sent_email'
         WHEN activity_type = 'email' AND dir = 'incoming' THEN 'received_email'
         WHEN activity_type = 'phone_call' AND dir = 'outgoing' THEN 'outgoing_call'
         WHEN activity_type = 'phone_call' AND dir = 'incoming' THEN 'incoming_call'
         WHEN activity_type = 'appointment' AND org = 'internal' THEN 'sent_meeting_invite'
         WHEN activity_type = 'appointment' AND org = 'external' THEN 'received_meeting_invite'
    END AS activity_kind,
    count(*) AS activity_count
FROM ra WHERE ts >= TIMESTAMP '{daily_start}' AND ts < TIMESTAMP '{end}' AND activity_kind IS NOT NULL
GROUP BY ALL;

-- Record x person interactions: completed conversations of the record up to D.
CREATE TEMP TABLE record_people AS
SELECT ra.record_type, ra.record_id, p.party_type, p.internal, p.person,
       count(*) AS interactions, max(ra.ts) AS last_contacted_at
FROM ra JOIN people p USING (activity_id)
WHERE ra.conv AND ra.ts < TIMESTAMP '{end}'
  AND ((p.party_type = 'contact' AND NOT p.internal) OR (p.party_type = 'user' AND p.internal))
GROUP BY ALL;

CREATE TABLE yardstick.record_contacts AS
SELECT rp.record_type, rp.record_id, rp.person AS contact_id, c.full_name AS contact_name, c.account_id,
    rp.interactions, rp.last_contacted_at,
    row_number() OVER (PARTITION BY rp.record_type, rp.record_id
                       ORDER BY rp.interactions DESC, rp.last_contacted_at DESC, rp.person) AS rank,
    (rp.record_type = 'contact' AND rp.person = rp.record_id)
        OR (rp.record_type = 'account' AND c.account_id IS NOT DISTINCT FROM rp.record_id)
        OR (rp.record_type = 'opportunity' AND c.account_id IS NOT DISTINCT FROM o.account_id
            AND o.account_id IS NOT NULL) AS is_linked_to_record
FROM record_people rp JOIN contacts c ON c.contact_id = rp.person
LEFT JOIN opps o ON rp.record_type = 'opportunity' AND o.opportunity_id = rp.record_id
WHERE rp.party_type = 'contact';

CREATE TABLE yardstick.record_colleagues AS
SELECT rp.record_type, rp.record_id, rp.person AS user_id, u.full_name AS user_name, u.team,
    rp.interactions, rp.last_contacted_at,
    row_number() OVER (PARTITION BY rp.record_type, rp.record_id
                       ORDER BY rp.interactions DESC, rp.last_contacted_at DESC, rp.person) AS rank,
    rp.person IS NOT DISTINCT FROM r.owner_id AS is_record_owner
FROM record_people rp JOIN records r USING (record_type, record_id)
LEFT JOIN users u ON u.user_id = rp.person
WHERE rp.party_type = 'user';

-- Who knows whom: user x contact pairs in completed conversations up to D.
CREATE TABLE yardstick.who_knows_whom AS
WITH pairs AS (
    SELECT c.person AS contact_id, u.person AS user_id,
        round(sum(CASE WHEN a.activity_type = 'appointment' OR c.sender
                       THEN 0.5 ** ((DATE '{d}' - a.ts::DATE) / {half_life}) ELSE 0 END), 6) AS strength,
        count(*) AS interactions,
        count(*) FILTER (a.activity_type = 'appointment' OR c.sender) AS two_way_interactions,
        count(*) FILTER (a.activity_type = 'email' AND u.sender) AS emails_sent,
        count(*) FILTER (a.activity_type = 'email' AND c.sender) AS emails_received,
        count(*) FILTER (a.activity_type = 'phone_call') AS calls,
        count(*) FILTER (a.activity_type = 'appointment') AS meetings,
        max(a.ts) AS last_interaction_at
    FROM cls a
    JOIN people u ON u.activity_id = a.activity_id AND u.party_type = 'user' AND u.internal
    JOIN people c ON c.activity_id = a.activity_id AND c.party_type = 'contact' AND NOT c.internal
    WHERE a.conv AND a.ts < TIMESTAMP '{end}' AND a.status = 'completed'
    GROUP BY ALL
    HAVING two_way_interactions > 0
)
SELECT p.contact_id, c.full_name AS contact_name, c.account_id, p.user_id, u.full_name AS user_name,
    DATE '{d}' AS as_of_date, p.strength,
    row_number() OVER (PARTITION BY p.contact_id ORDER BY p.strength DESC, p.last_interaction_at DESC, p.user_id) AS rank,
    p.interactions, p.two_way_interactions, p.emails_sent, p.emails_received, p.calls, p.meetings,
    p.last_interaction_at
FROM pairs p JOIN contacts c USING (contact_id) JOIN users u USING (user_id);

CREATE TABLE yardstick.account_connections AS
WITH per_user AS (
    SELECT account_id, user_id, any_value(user_name) AS user_name,
        list(contact_id ORDER BY strength DESC, last_interaction_at DESC, contact_id)[1] AS strongest_contact_id,
        max(strength) AS strongest_strength, count(*) AS contacts_known,
        sum(two_way_interactions) AS two_way_interactions
    FROM yardstick.who_knows_whom WHERE account_id IS NOT NULL
    GROUP BY account_id, user_id
)
SELECT pu.account_id, a.name AS account_name, pu.user_id, pu.user_name, DATE '{d}' AS as_of_date,
    row_number() OVER (PARTITION BY pu.account_id
                       ORDER BY pu.strongest_strength DESC, pu.contacts_known DESC, pu.user_id) AS rank,
    pu.strongest_contact_id, w.contact_name AS strongest_contact_name, pu.strongest_strength,
    w.last_interaction_at AS strongest_last_interaction_at, pu.contacts_known, pu.two_way_interactions
FROM per_user pu JOIN accounts a USING (account_id)
JOIN yardstick.who_knows_whom w ON w.contact_id = pu.strongest_contact_id AND w.user_id = pu.user_id;

-- Health: what changes each record's figures on each day, as deltas (a window is +x on the day
-- an event starts counting and -x on the day it stops), then one running sum per record over the
-- computed days. Only what was known by the end of a day counts on it.
CREATE TEMP TABLE health_deltas AS
WITH record_days AS MATERIALIZED (
    SELECT record_key, ts::DATE AS day, count(*) FILTER (two_way) AS two_way, sum(touches) AS touches,
           count(*) FILTER (init = 'customer') AS cust_init, count(*) FILTER (init = 'team') AS team_init
    FROM ra WHERE ts < TIMESTAMP '{end}' GROUP BY ALL
), record_emails AS MATERIALIZED (
    SELECT m.record_key, r.* FROM membership m JOIN responses r USING (activity_id)
), person_days AS (
    SELECT DISTINCT ra.record_key, p.person, ra.ts::DATE AS day
    FROM ra JOIN people p USING (activity_id)
    WHERE ra.two_way AND ra.ts < TIMESTAMP '{end}' AND NOT p.internal
), person_spans AS MATERIALIZED (
    SELECT record_key, day,
        least(day + {signal_days}, lead(day) OVER (PARTITION BY record_key, person ORDER BY day)) AS until
    FROM person_days
), deltas AS (
    SELECT record_key, day, two_way, touches, cust_init, team_init,
           CASE WHEN two_way > 0 THEN day END AS last_two_way FROM record_days
    UNION ALL BY NAME SELECT record_key, day + {frequency_days} AS day, -touches AS touches FROM record_days
    UNION ALL BY NAME SELECT record_key, day + {signal_days} AS day, -cust_init AS cust_init,
           -team_init AS team_init FROM record_days
    UNION ALL BY NAME SELECT record_key, closed_day AS day, 1 AS closed,
           (response_at IS NOT NULL)::INTEGER AS answered FROM record_emails WHERE side = 'team'
    UNION ALL BY NAME SELECT record_key, response_at::DATE AS day,
           CASE WHEN side = 'team' THEN 1 END AS cust_responses,
           CASE WHEN side = 'team' THEN seconds END AS cust_seconds,
           CASE WHEN side = 'customer' THEN 1 END AS team_responses,
           CASE WHEN side = 'customer' THEN seconds END AS team_seconds
    FROM record_emails WHERE response_at IS NOT NULL
    UNION ALL BY NAME SELECT record_key, sent_day + {signal_days} AS day,
           CASE WHEN side = 'team' THEN -1 END AS closed,
           CASE WHEN side = 'team' THEN -(response_at IS NOT NULL)::INTEGER END AS answered,
           CASE WHEN side = 'team' AND response_at IS NOT NULL THEN -1 END AS cust_responses,
           CASE WHEN side = 'team' THEN -seconds END AS cust_seconds,
           CASE WHEN side = 'customer' AND response_at IS NOT NULL THEN -1 END AS team_responses,
           CASE WHEN side = 'customer' THEN -seconds END AS team_seconds
    FROM record_emails
    UNION ALL BY NAME SELECT record_key, day, 1 AS people FROM person_spans
    UNION ALL BY NAME SELECT record_key, until AS day, -1 AS people FROM person_spans
)
-- Days before the first computed day start its running sums.
SELECT record_key, greatest(day, DATE '{first_day}') AS day,
    sum(two_way) AS two_way, sum(touches) AS touches, sum(cust_init) AS cust_init,
    sum(team_init) AS team_init, sum(closed) AS closed, sum(answered) AS answered,
    sum(cust_responses) AS cust_responses, sum(cust_seconds) AS cust_seconds,
    sum(team_responses) AS team_responses, sum(team_seconds) AS team_seconds, sum(people) AS people,
    max(last_two_way) AS last_two_way
FROM deltas WHERE day <= DATE '{d}' GROUP BY ALL;

-- The running sums at each day with a delta, then every computed day takes those of its latest
-- day with a delta (the deltas are sparse: far fewer rows than records x days).
CREATE TEMP TABLE health_sums AS
SELECT record_key, day, {running_sums}, max(last_two_way) OVER w AS last_two_way
FROM health_deltas WINDOW w AS (PARTITION BY record_key ORDER BY day ROWS UNBOUNDED PRECEDING);

-- Every computed day takes the running sums of its record's latest day with a delta (the deltas
-- are sparse: far fewer rows than records x days). The days before the history only give the
-- trend of its first days.
CREATE TABLE yardstick.relationship_health_history AS
WITH figures AS (
    SELECT g.record_key, g.day, {latest_sums}, e.last_two_way
    FROM (SELECT record_key, DATE '{first_day}' + i::INTEGER AS day
          FROM records CROSS JOIN range({computed_days}) t(i)) g
    ASOF LEFT JOIN health_sums e ON g.record_key = e.record_key AND g.day >= e.day
), measured AS (
    SELECT record_key, day AS as_of_date, two_way AS two_way_activities,
        two_way >= {min_two_way} AS has_enough_history,
        day - last_two_way AS days_since_two_way, touches::DOUBLE AS weighted_touches,
        answered / nullif(closed, 0) AS customer_response_rate,
        cust_init / nullif(cust_init + team_init, 0) AS customer_initiated_share,
        team_seconds / 3600 / nullif(team_responses, 0) AS team_response_hours,
        cust_seconds / 3600 / nullif(cust_responses, 0) AS customer_response_hours,
        people AS customer_people
    FROM figures
), signals AS (
    SELECT *,
        0.5 ** (days_since_two_way / {half_life_recency}) AS signal_recency,
        least(1.0, weighted_touches / {expected_touches}) AS signal_frequency,
        -- (least() skips empty arguments: each part is a CASE, empty when its input is)
        mean_of_known(customer_response_rate, CASE WHEN customer_initiated_share IS NOT NULL
            THEN least(1.0, 2 * customer_initiated_share) END) AS signal_reciprocity,
        mean_of_known(
            CASE WHEN team_response_hours <= {team_target} THEN 1.0
                 WHEN team_response_hours > {team_target} THEN {team_target} / team_response_hours END,
            CASE WHEN customer_response_hours <= {customer_target} THEN 1.0
                 WHEN customer_response_hours > {customer_target} THEN {customer_target} / customer_response_hours END
        ) AS signal_responsiveness,
        least(1.0, customer_people / {breadth_target}) AS signal_breadth
    FROM measured
), weighted AS (
    SELECT *,
        {weight_recency} * signal_recency AS w1, {weight_frequency} * signal_frequency AS w2,
        {weight_reciprocity} * signal_reciprocity AS w3, {weight_responsiveness} * signal_responsiveness AS w4,
        {weight_breadth} * signal_breadth AS w5,
        available_weight(signal_recency, signal_frequency, signal_reciprocity, signal_responsiveness,
                         signal_breadth) AS available
    FROM signals
), scored AS (
    SELECT * EXCLUDE (w1, w2, w3, w4, w5, available),
        CASE WHEN has_enough_history THEN round(round(100 * (coalesce(w1, 0) + coalesce(w2, 0)
            + coalesce(w3, 0) + coalesce(w4, 0) + coalesce(w5, 0)) / available, 9))::INTEGER END AS health_score
    FROM weighted
), trended AS (
    SELECT *, lag(health_score, {trend_days}) OVER (PARTITION BY record_key ORDER BY as_of_date)
        AS earlier_health_score
    FROM scored
)
SELECT r.record_type, r.record_id, as_of_date, health_score,
    CASE WHEN health_score IS NULL THEN 'Not enough info' WHEN health_score >= {good} THEN 'Good'
         WHEN health_score >= {fair} THEN 'Fair' ELSE 'Poor' END AS health_status,
    CASE WHEN health_score IS NULL OR earlier_health_score IS NULL THEN 'Not enough info'
         WHEN health_score - earlier_health_score >= {trend_step} THEN 'Improving'
         WHEN health_score - earlier_health_score <= -{trend_step} THEN 'Declining' ELSE 'Steady' END AS health_trend,
    earlier_health_score, signal_recency, signal_frequency, signal_reciprocity, signal_responsiveness,
    signal_breadth, has_enough_history, two_way_activities, days_since_two_way, weighted_touches,
    customer_response_rate, customer_initiated_share, team_response_hours, customer_response_hours,
    customer_people
FROM trended JOIN records r USING (record_key)
WHERE as_of_date >= DATE '{history_start}';

-- D's health with the reasons: the two or three signals costing the score most, in words.
CREATE TABLE yardstick.relationship_health AS
WITH costs AS (
    SELECT *, list_sort(list_filter([
        struct_pack(cost := -{weight_recency} * (1 - signal_recency) / available, i := 1, text := CASE WHEN days_since_two_way = 0
            THEN 'the customer was in touch today'
            ELSE 'no reply from the customer in ' || plural(days_since_two_way, 'day') END),
        struct_pack(cost := -{weight_frequency} * (1 - signal_frequency) / available, i := 2, text := CASE WHEN weighted_touches = 0
            THEN 'no activity' ELSE number_text(weighted_touches)
                || CASE WHEN weighted_touches = 1 THEN ' weighted touch' ELSE ' weighted touches' END END
            || ' in the last {frequency_days} days ({expected_touches} expected for a {cadence} cadence)'),
        struct_pack(cost := -{weight_reciprocity} * (1 - signal_reciprocity) / available, i := 3, text := 'the customer '
            || concat_ws(' and ', 'answered ' || percent_text(customer_response_rate) || ' of our emails',
                         'started ' || percent_text(customer_initiated_share) || ' of the conversations')
            || ' in the last {signal_days} days'),
        struct_pack(cost := -{weight_responsiveness} * (1 - signal_responsiveness) / available, i := 4, text := CASE
            WHEN team_response_hours IS NULL THEN 'the customer replies in ' || number_text(customer_response_hours)
                || ' hours on average (target {customer_target})'
            ELSE 'we reply in ' || number_text(team_response_hours) || ' hours on average (target {team_target})'
                || coalesce(', the customer in ' || number_text(customer_response_hours) || ' (target {customer_target})', '')
            END),
        struct_pack(cost := -{weight_breadth} * (1 - signal_breadth) / available, i := 5, text := CASE WHEN customer_people = 1 THEN '1 customer person' ELSE customer_people || ' customer people' END
            || ' engaged in the last {signal_days} days (target {breadth_target})')
    ], lambda c: c.cost IS NOT NULL)) AS ranked
    FROM (SELECT *, available_weight(signal_recency, signal_frequency, signal_reciprocity,
                                     signal_responsiveness, signal_breadth) AS available
          FROM yardstick.relationship_health_history WHERE as_of_date = DATE '{d}')
)
SELECT record_type, record_id, r.record_name, r.company_name, r.owner_id, as_of_date, health_score,
    health_status, health_trend, earlier_health_score, signal_recency, signal_frequency,
    signal_reciprocity, signal_responsiveness, signal_breadth,
    CASE WHEN NOT has_enough_history THEN CASE two_way_activities
            WHEN 0 THEN 'no two-way activity with the customer yet'
            WHEN 1 THEN 'only 1 two-way activity with the customer so far'
            ELSE format('only {} two-way activities with the customer so far', two_way_activities) END
        || ' ({min_two_way} needed for a score)'
    ELSE array_to_string(list_transform(ranked[1:2] || list_filter(ranked[3:3], lambda c: c.cost < 0),
                                        lambda c: c.text), '; ') END AS reasons,
    has_enough_history, two_way_activities, days_since_two_way, weighted_touches,
    customer_response_rate, customer_initiated_share, team_response_hours, customer_response_hours,
    customer_people
FROM costs JOIN records r USING (record_type, record_id);

-- Deal warnings of the open deals on D.
CREATE TABLE yardstick.deal_warnings AS
WITH deals AS (
    SELECT o.opportunity_id, o.name, o.owner_id, o.record_url, o.estimated_close_date,
        o.created_at::DATE AS created_day, h.company_name, h.days_since_two_way, h.customer_people,
        h.health_trend, h.health_score, h.earlier_health_score
    FROM opps o LEFT JOIN yardstick.relationship_health h
        ON h.record_type = 'opportunity' AND h.record_id = o.opportunity_id
    WHERE o.status = 'open'
), breaks AS (
    SELECT record_id AS opportunity_id,
        max(as_of_date) FILTER (NOT coalesce(days_since_two_way >= {dark_days}, false)) + 1 AS going_dark,
        max(as_of_date) FILTER (coalesce(customer_people, 0) <> {single_people}) + 1 AS single_threaded,
        max(as_of_date) FILTER (health_trend <> 'Declining') + 1 AS health_declining
    FROM yardstick.relationship_health_history WHERE record_type = 'opportunity' GROUP BY ALL
), deal_emails AS (
    SELECT ra.record_id AS opportunity_id, ra.activity_id, ra.ts,
        EXISTS (SELECT 1 FROM replies r WHERE r.parent = ra.activity_id) AS answered,
        row_number() OVER (PARTITION BY ra.record_id ORDER BY ra.ts DESC, ra.activity_id DESC) AS newest
    FROM ra WHERE ra.record_type = 'opportunity' AND ra.activity_type = 'email' AND ra.dir = 'outgoing'
        AND ra.ts < TIMESTAMP '{end}'
), unanswered AS (
    SELECT opportunity_id, max(ts) AS latest,
        (max(ts) + INTERVAL {unanswered_days} DAY - INTERVAL 1 MICROSECOND)::DATE AS aged_day
    FROM deal_emails WHERE newest <= {unanswered_emails} GROUP BY ALL
    HAVING count(*) = {unanswered_emails} AND NOT bool_or(answered)
), meetings AS (
    SELECT record_id AS opportunity_id, max(ts)::DATE AS last_meeting
    FROM ra WHERE record_type = 'opportunity' AND activity_type = 'appointment' AND conv
        AND ts < TIMESTAMP '{end}' GROUP BY ALL
), versions AS (
    SELECT opportunity_id, modified_at, estimated_close_date,
        lag(estimated_close_date) OVER (PARTITION BY opportunity_id
                                        ORDER BY modified_at, source_file, source_row) AS before
    FROM opp_versions
), pushes AS (
    SELECT opportunity_id, count(*) AS pushes,
        (list(modified_at ORDER BY modified_at, before, estimated_close_date)[{pushes}])::DATE AS pushed_day,
        arg_min(before, (modified_at, before, estimated_close_date)) AS first_close_date
    FROM versions WHERE estimated_close_date > before AND modified_at < TIMESTAMP '{end}' GROUP BY ALL
), slow AS (
    SELECT ra.record_id AS opportunity_id, r.response_at::DATE AS known_day,
        r.sent_day + {slow_days} AS left_day, r.seconds / 3600 AS hours
    FROM ra JOIN responses r USING (activity_id)
    WHERE ra.record_type = 'opportunity' AND r.side = 'customer' AND r.seconds IS NOT NULL
), slow_days AS (
    SELECT opportunity_id, day, sum(n) OVER w AS responses, sum(h) OVER w AS hours,
        lead(day) OVER (PARTITION BY opportunity_id ORDER BY day) AS next_day
    FROM (SELECT opportunity_id, day, sum(n) AS n, sum(h) AS h FROM (
            SELECT opportunity_id, known_day AS day, 1 AS n, hours AS h FROM slow WHERE known_day < left_day
            UNION ALL SELECT opportunity_id, left_day, -1, -hours FROM slow WHERE known_day < left_day)
          WHERE day <= DATE '{d}' GROUP BY ALL)
    WINDOW w AS (PARTITION BY opportunity_id ORDER BY day ROWS UNBOUNDED PRECEDING)
), slow_now AS (
    SELECT opportunity_id, hours / responses AS mean_hours,
        coalesce(max(CASE WHEN NOT coalesce(hours / nullif(responses, 0) > {slow_hours}, false)
                          THEN next_day END) OVER o, min(day) OVER o) AS since
    FROM slow_days WINDOW o AS (PARTITION BY opportunity_id)
    QUALIFY next_day IS NULL AND hours / nullif(responses, 0) > {slow_hours}
), warnings AS (
    SELECT d.opportunity_id, 'going_dark' AS warning, b.going_dark AS since,
        'no two-way activity with the customer in ' || plural(d.days_since_two_way, 'day') AS reason,
        d.days_since_two_way AS figure, 'days' AS figure_unit, {dark_days} AS threshold
    FROM deals d LEFT JOIN breaks b USING (opportunity_id) WHERE d.days_since_two_way >= {dark_days}
    UNION ALL
    SELECT opportunity_id, 'unanswered', aged_day,
        'our last {unanswered_emails} emails to the customer got no reply, the latest sent '
            || plural(DATE '{d}' - latest::DATE, 'day') || ' ago',
        {unanswered_emails}, 'emails', {unanswered_emails}
    FROM unanswered WHERE aged_day <= DATE '{d}'
    UNION ALL
    SELECT d.opportunity_id, 'single_threaded', b.single_threaded,
        'only ' || plural(d.customer_people, 'customer person')
            || ' in two-way activities in the last {signal_days} days', d.customer_people, 'people', {single_people}
    FROM deals d LEFT JOIN breaks b USING (opportunity_id) WHERE d.customer_people = {single_people}
    UNION ALL
    SELECT d.opportunity_id, 'no_recent_meeting', coalesce(m.last_meeting + {meeting_days}, d.created_day),
        'no meeting with the customer in the last {meeting_days} days' || CASE WHEN m.last_meeting IS NULL
            THEN ' (none yet)' ELSE ' (the last ' || plural(DATE '{d}' - m.last_meeting, 'day') || ' ago)' END,
        DATE '{d}' - m.last_meeting, 'days', {meeting_days}
    FROM deals d LEFT JOIN meetings m USING (opportunity_id)
    WHERE m.last_meeting IS NULL OR m.last_meeting <= DATE '{d}' - {meeting_days}
    UNION ALL
    SELECT d.opportunity_id, 'close_date_pushed', p.pushed_day,
        'the estimated close date moved later ' || plural(p.pushes, 'time') || ', from '
            || p.first_close_date || ' to ' || d.estimated_close_date, p.pushes, 'pushes', {pushes}
    FROM deals d JOIN pushes p USING (opportunity_id) WHERE p.pushes >= {pushes}
    UNION ALL
    SELECT opportunity_id, 'past_close_date', estimated_close_date + 1,
        'the estimated close date ' || estimated_close_date || ' passed '
            || plural(DATE '{d}' - estimated_close_date, 'day') || ' ago and the deal is still open',
        DATE '{d}' - estimated_close_date, 'days', 0
    FROM deals WHERE estimated_close_date < DATE '{d}'
    UNION ALL
    SELECT d.opportunity_id, 'health_declining', b.health_declining,
        format('health fell from {} to {} in {trend_days} days', d.earlier_health_score, d.health_score),
        d.health_score - d.earlier_health_score, 'points', -{trend_step}
    FROM deals d LEFT JOIN breaks b USING (opportunity_id) WHERE d.health_trend = 'Declining'
    UNION ALL
    SELECT d.opportunity_id, 'slow_team_replies', s.since,
        'we replied to the customer in ' || number_text(tenths(s.mean_hours))
            || ' hours on average over the last {slow_days} days (a warning above {slow_hours})',
        s.mean_hours, 'hours', {slow_hours}
    FROM deals d JOIN slow_now s USING (opportunity_id)
), severities(warning, severity, priority) AS (VALUES {severities})
SELECT w.opportunity_id, d.name, d.owner_id, d.company_name, DATE '{d}' AS as_of_date, w.warning,
    s.severity, s.priority, greatest(coalesce(w.since, DATE '{history_start}'), DATE '{history_start}') AS since,
    w.reason, w.figure::DOUBLE AS figure, w.figure_unit, w.threshold::DOUBLE AS threshold, d.record_url
FROM warnings w JOIN deals d USING (opportunity_id) JOIN severities s USING (warning);

CREATE TABLE yardstick.deal_tracking AS
WITH counted AS (
    SELECT opportunity_id, count(*) AS warnings, arg_min(warning, priority) AS top_warning,
           arg_min(reason, priority) AS top_warning_reason
    FROM yardstick.deal_warnings GROUP BY ALL
), colors(stage, stage_color, stage_color_hex) AS (VALUES {stage_colors})
SELECT o.opportunity_id, o.name, o.owner_id, o.stage, c.stage_color, c.stage_color_hex,
    o.estimated_close_date, o.estimated_value, h.health_score, h.health_status, o.record_url,
    h.company_name, coalesce(w.warnings, 0) AS warnings, w.top_warning, w.top_warning_reason
FROM opps o LEFT JOIN colors c USING (stage)
LEFT JOIN yardstick.relationship_health h ON h.record_type = 'opportunity' AND h.record_id = o.opportunity_id
LEFT JOIN counted w USING (opportunity_id)
WHERE o.status = 'open' AND o.estimated_close_date > DATE '{d}';

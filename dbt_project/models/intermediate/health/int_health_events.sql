-- Incremental per record and day (health_events.sql, docs/incremental.md): a night recomputes the
-- records whose activities the activity tables changed, from the first day those activities had
-- or have, reading the events up to the lookback before it (those whose deltas reach that day).
{{ record_days_config(
    'event_day',
    settings=['health_activity_weights', 'health_signal_days', 'health_frequency_days'],
    logs_for_history=true,
) }}
{%- set scope = incremental_scope() %}
{%- set lookback = health_events_lookback() %}

-- What changes each record's health figures on each day, as deltas: a figure on day d is the sum
-- of its deltas up to d. Every figure over a trailing window is an interval of days, a +1 where an
-- event starts to count and a -1 where it stops, so the windows of every day in the history are
-- one running sum. Only what was known by the end of a day is dated on or before it: an email
-- counts in the response rate from the day its window closes, a response from the day it was sent.
-- Every day is kept, after D too: the deltas do not depend on D, so that a record's deltas stay
-- the same on later nights unless its data changed. Readers sum those up to their day
-- (int_health_figures moves the days before its first day onto it).
{%- set signal_days = var('health_signal_days') %}
with record_activities as (
    select
        memberships.record_type,
        memberships.record_id,
        activities.activity_id,
        activities.activity_type,
        activities.initiated_by,
        cast(activities.activity_at as date) as activity_day,
        activities.is_conversation
        and (activities.direction = 'incoming' or activities.activity_type = 'appointment')
            as is_two_way
    from {{ ref('int_record_activities') }} as memberships
    {{ health_scope_join(scope) }}
    inner join {{ ref('int_activities_classified') }} as activities
        on memberships.activity_id = activities.activity_id
    where
        activities.is_counted
        and {{ in_health_scope(scope, 'cast(activities.activity_at as date)', lookback) }}
),

record_emails as (
    select
        memberships.record_type,
        memberships.record_id,
        responses.side,
        responses.response_id,
        cast(responses.activity_at as date) as sent_day,
        -- The day by whose end the window has closed: a window ending exactly at midnight has
        -- closed by the end of the day before.
        case
            when responses.window_end = cast(cast(responses.window_end as date) as {{ dbt.type_timestamp() }})
                then cast({{ dbt.dateadd('day', -1, 'cast(responses.window_end as date)') }} as date)
            else cast(responses.window_end as date)
        end as closed_day,
        cast(responses.response_at as date) as response_day,
        {{ dbt.datediff('responses.activity_at', 'responses.response_at', 'second') }} as response_seconds
    from {{ ref('int_record_activities') }} as memberships
    {{ health_scope_join(scope) }}
    inner join {{ ref('int_email_responses') }} as responses
        on memberships.activity_id = responses.activity_id
    where {{ in_health_scope(scope, 'cast(responses.activity_at as date)', lookback) }}
),

{%- set touch_weight -%}
    case activity_type
    {%- for activity_type, weight in var('health_activity_weights').items() %}
        when {{ sql_string(activity_type) }} then {{ weight }}
    {%- endfor %}
        else 0
    end
{%- endset %}

-- Each event makes one delta per edge (below), and every edge is a function of the event's days:
-- so the events are first added up per record and days, and a record with many activities a day
-- (an account, at scale) makes three delta rows that day, not three per activity. The deltas are
-- 64-bit numbers (health_figure_cast): DuckDB sums them in half the memory of its 128-bit sums.
record_activity_days as (
    select
        record_type,
        record_id,
        activity_day,
        count(case when is_two_way then 1 end) as two_way_activities,
        -- Touches are weighted by configurable, possibly fractional weights: exact decimals, so
        -- that what enters a window and what leaves it cancel exactly.
        sum(cast({{ touch_weight }} as {{ dbt.type_numeric() }})) as touches,
        count(case when initiated_by = 'customer' then 1 end) as customer_initiated,
        count(case when initiated_by = 'team' then 1 end) as team_initiated
    from record_activities
    -- An activity without a time (never happened) changes no day.
    where activity_day is not null
    group by record_type, record_id, activity_day
),

record_email_days as (
    select
        record_type,
        record_id,
        sent_day,
        closed_day,
        response_day,
        count(case when side = 'team' then 1 end) as team_emails,
        count(case when side = 'team' and response_id is not null then 1 end) as answered,
        sum(case when side = 'team' and response_id is not null then response_seconds else 0 end)
            as their_seconds,
        count(case when side = 'customer' and response_id is not null then 1 end)
            as team_answered,
        sum(case when side = 'customer' and response_id is not null then response_seconds else 0 end)
            as our_seconds
    from record_emails
    group by record_type, record_id, sent_day, closed_day, response_day
),

-- A customer person counts in breadth for health_signal_days from each two-way activity; their
-- intervals end where the next one starts, so that nobody counts twice. An activity without a day
-- starts no interval, nor ends one (Spark would sort it first among a person's days).
external_people as (
    select distinct
        record_activities.record_type,
        record_activities.record_id,
        people.person_id,
        record_activities.activity_day
    from record_activities
    inner join {{ ref('int_activity_people_classified') }} as people
        on record_activities.activity_id = people.activity_id
    where
        record_activities.is_two_way and people.side = 'external'
        and record_activities.activity_day is not null
),

external_people_spans as (
    select
        record_type,
        record_id,
        activity_day,
        until_day,
        count(*) as people
    from (
        select
            record_type,
            record_id,
            activity_day,
            least(
                {{ dbt.dateadd('day', signal_days, 'activity_day') }},
                coalesce(
                    lead(activity_day) over (
                        partition by record_type, record_id, person_id order by activity_day
                    ),
                    {{ dbt.dateadd('day', signal_days, 'activity_day') }}
                )
            ) as until_day
        from external_people
    ) as spans
    group by record_type, record_id, activity_day, until_day
),

{#- Every event adds to its figures on one day and takes back what it added on another: one row per
    row of the sums above and edge, `edge` saying which. Columns not listed for an edge are 0. -#}
{%- set sources = {
    'record_activity_days': [
        ('activity_day', {
            'two_way_activities': 'two_way_activities',
            'touches': 'touches',
            'customer_initiated': 'customer_initiated',
            'team_initiated': 'team_initiated',
            'last_two_way_day': 'case when two_way_activities > 0 then activity_day end',
        }),
        (dbt.dateadd('day', var('health_frequency_days'), 'activity_day'), {'touches': '-touches'}),
        (dbt.dateadd('day', signal_days, 'activity_day'), {
            'customer_initiated': '-customer_initiated',
            'team_initiated': '-team_initiated',
        }),
    ],
    'record_email_days': [
        ('closed_day', {'emails_closed': 'team_emails', 'emails_answered': 'answered'}),
        ('response_day', {
            'customer_responses': 'answered',
            'customer_response_seconds': 'their_seconds',
            'team_responses': 'team_answered',
            'team_response_seconds': 'our_seconds',
        }),
        (dbt.dateadd('day', signal_days, 'sent_day'), {
            'emails_closed': '-team_emails',
            'emails_answered': '-answered',
            'customer_responses': '-answered',
            'customer_response_seconds': '-their_seconds',
            'team_responses': '-team_answered',
            'team_response_seconds': '-our_seconds',
        }),
    ],
    'external_people_spans': [
        ('activity_day', {'external_people': 'people'}),
        ('until_day', {'external_people': '-people'}),
    ],
} %}
{%- set figures = health_figures() %}

deltas as (
    {%- for relation, edges in sources.items() %}
    {%- if not loop.first %}

    union all
    {% endif %}
    select
        record_type,
        record_id,
        cast(case edges.edge
            {%- for day, _ in edges %}
            when {{ loop.index }} then {{ day }}
            {%- endfor %}
        end as date) as event_day,
        {%- for name in figures + ['last_two_way_day'] %}
        {%- set otherwise = 'cast(null as date)' if name == 'last_two_way_day' else '0' %}
        {%- set ns = namespace(cases='') %}
        {%- for _, values in edges %}{% if name in values %}
            {%- set ns.cases = ns.cases ~ ' when ' ~ loop.index ~ ' then ' ~ values[name] %}
        {%- endif %}{% endfor %}
        {%- set value = 'case edges.edge' ~ ns.cases ~ ' else ' ~ otherwise ~ ' end' if ns.cases else otherwise %}
        {{ value if name == 'last_two_way_day' else health_figure_cast(value, name) }}
            as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ relation }}
    cross join (
        {%- for _ in edges %}
        select {{ loop.index }} as edge{{ ' union all' if not loop.last }}
        {%- endfor %}
    ) as edges
    {%- endfor %}
)

select
    record_type,
    record_id,
    event_day,
    {%- for name in figures %}
    {{ health_figure_cast('sum(' ~ name ~ ')', name) }} as {{ name }},
    {%- endfor %}
    max(last_two_way_day) as last_two_way_day
from deltas
{{ health_scope_join(scope) }}
-- An email without a response has no response day: that edge changes no day.
where deltas.event_day is not null and {{ in_health_scope(scope, 'deltas.event_day') }}
group by 1, 2, 3

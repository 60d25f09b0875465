-- Incremental per record and day (health_events.sql, docs/incremental.md): a night recomputes the
-- records whose activities the activity tables changed, from the first day those activities had
-- or have.
{{ record_days_config('activity_day') }}
{%- set scope = incremental_scope() %}

-- Each record's counted activities per day (UTC) of their time, as the additive parts of
-- relationship_kpis: counts, sums with the number of values they add up (for averages), and the
-- day's last conversation (for the last contact). Reply figures belong to the email being
-- answered, on its day. Every day is kept, after D too (none of this depends on D): the KPIs of
-- any period are sums over its days.
with record_activities as (
    select
        memberships.record_type,
        memberships.record_id,
        activities.activity_id,
        activities.activity_type,
        activities.direction,
        activities.initiated_by,
        activities.owner_id,
        activities.activity_at,
        activities.is_conversation,
        activities.team_minutes,
        activities.customer_minutes,
        responses.side as email_side,
        responses.is_window_closed,
        responses.response_id,
        cast(responses.response_hours as {{ type_double() }}) as response_hours
    from {{ ref('int_record_activities') }} as memberships
    {{ health_scope_join(scope) }}
    inner join {{ ref('int_activities_classified') }} as activities
        on memberships.activity_id = activities.activity_id
    left join {{ ref('int_email_responses') }} as responses
        on activities.activity_id = responses.activity_id
    where
        activities.is_counted
        and activities.activity_at is not null
        and {{ in_health_scope(scope, 'cast(activities.activity_at as date)') }}
)

select
    record_type,
    record_id,
    cast(activity_at as date) as activity_day,
    count(*) as activities,
    {%- for kpi, condition in [
        ('emails_sent', "activity_type = 'email' and direction = 'outgoing'"),
        ('emails_received', "activity_type = 'email' and direction = 'incoming'"),
        ('meetings', "activity_type = 'appointment'"),
        ('calls_outgoing', "activity_type = 'phone_call' and direction = 'outgoing'"),
        ('calls_incoming', "activity_type = 'phone_call' and direction = 'incoming'"),
        ('customer_initiated', "initiated_by = 'customer'"),
        ('team_initiated', "initiated_by = 'team'"),
        ('emails_with_closed_window', "email_side = 'team' and is_window_closed"),
        ('emails_answered_in_window', "email_side = 'team' and is_window_closed and response_id is not null"),
        ('customer_responses', "email_side = 'team' and response_hours is not null"),
        ('team_responses', "email_side = 'customer' and response_hours is not null"),
    ] %}
    count(case when {{ condition }} then 1 end) as {{ kpi }},
    {%- endfor %}
    sum(case when email_side = 'team' then response_hours end) as customer_response_hours_total,
    sum(case when email_side = 'customer' then response_hours end) as team_response_hours_total,
    sum(team_minutes) as team_time_minutes,
    sum(customer_minutes) as customer_time_minutes,
    -- The day's last conversation (the latest id among those at the same time). Two days' last
    -- conversations are never at the same time: a period's is that of its latest.
    max(activity_at) filter (where is_conversation) as last_contacted_at,
    {{ value_at_extreme('owner_id', ['activity_at', 'activity_id'], true, 'is_conversation') }}
        as last_contacted_by
from record_activities
group by record_type, record_id, cast(activity_at as date)

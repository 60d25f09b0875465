-- Every per-record KPI, over the whole history (period 'all') and the trailing period_days
-- ending with the as-of date D (period 'trailing'). Upcoming activities and the next contact are
-- the same in both periods. Every existing record has both rows, with zeros where nothing happened.
with records as (
    select * from {{ ref('int_records_unioned') }}
),

-- Only the columns the KPIs use: at 10M activities this is tens of millions of record-activity
-- rows, read twice below, and every further column (subjects, message ids) would be carried along.
record_activities as (
    select
        memberships.record_type,
        memberships.record_id,
        activities.activity_id,
        activities.activity_type,
        activities.direction,
        activities.initiated_by,
        activities.owner_id,
        activities.activity_at,
        activities.scheduled_at,
        activities.is_conversation,
        activities.team_minutes,
        activities.customer_minutes
    from {{ ref('int_record_activities') }} as memberships
    inner join {{ ref('int_activities_classified') }} as activities
        on memberships.activity_id = activities.activity_id
    where activities.is_counted
),

periods as (
    select
        'all' as period,
        cast(null as integer) as period_days,
        cast(null as {{ dbt.type_timestamp() }}) as period_start

    union all

    select
        'trailing' as period,
        {{ var('period_days') }} as period_days,
        cast(
            {{ dbt.dateadd('day', -1 * var('period_days'), as_of_end()) }}
            as {{ dbt.type_timestamp() }}
        ) as period_start
),

past as (
    select
        record_activities.*,
        periods.period,
        responses.side as email_side,
        responses.is_window_closed,
        responses.response_id,
        responses.response_hours
    from record_activities
    cross join periods
    -- Reply figures belong to the email being answered: its records, its period.
    left join {{ ref('int_email_responses') }} as responses
        on record_activities.activity_id = responses.activity_id
    where
        record_activities.activity_at < {{ as_of_end() }}
        and (periods.period_start is null or record_activities.activity_at >= periods.period_start)
),

past_counts as (
    select
        record_type,
        record_id,
        period,
        count(*) as past_activities,
        sum(case when activity_type = 'email' and direction = 'outgoing' then 1 else 0 end)
            as emails_sent,
        sum(case when activity_type = 'email' and direction = 'incoming' then 1 else 0 end)
            as emails_received,
        sum(case when activity_type = 'appointment' then 1 else 0 end) as meetings,
        sum(case when activity_type = 'phone_call' and direction = 'outgoing' then 1 else 0 end)
            as calls_outgoing,
        sum(case when activity_type = 'phone_call' and direction = 'incoming' then 1 else 0 end)
            as calls_incoming,
        sum(case when initiated_by = 'customer' then 1 else 0 end) as customer_initiated,
        sum(case when initiated_by = 'team' then 1 else 0 end) as team_initiated,
        sum(case when email_side = 'team' and is_window_closed then 1 else 0 end)
            as emails_with_closed_window,
        sum(
            case when email_side = 'team' and is_window_closed and response_id is not null then 1 else 0 end
        ) as emails_answered_in_window,
        avg(case when email_side = 'team' then response_hours end) as customer_response_hours,
        avg(case when email_side = 'customer' then response_hours end) as team_response_hours,
        sum(team_minutes) as team_time_minutes,
        sum(customer_minutes) as customer_time_minutes,
        -- The newest conversation (the latest id among those at the same time).
        max(activity_at) filter (where is_conversation) as last_contacted_at,
        {{ value_at_extreme('owner_id', ['activity_at', 'activity_id'], true, 'is_conversation') }}
            as last_contacted_by
    from past
    group by record_type, record_id, period
),

-- Medians need every value of their group at once: only over the answered emails, apart from the
-- other KPIs (at 10M activities, medians over every record-activity row spilled tens of GB).
response_medians as (
    select
        record_type,
        record_id,
        period,
        {{ median("case when email_side = 'team' then response_hours end") }}
            as customer_response_hours_median,
        {{ median("case when email_side = 'customer' then response_hours end") }}
            as team_response_hours_median
    from past
    where response_hours is not null
    group by record_type, record_id, period
),

upcoming_counts as (
    select
        record_type,
        record_id,
        count(*) as upcoming_activities,
        -- The soonest conversation (the first id among those at the same time).
        min(scheduled_at) filter (where is_conversation) as next_contact_at,
        {{ value_at_extreme('owner_id', ['scheduled_at', 'activity_id'], false, 'is_conversation') }}
            as next_contact_by
    from record_activities
    where scheduled_at >= {{ as_of_end() }}
    group by record_type, record_id
),

counted as (
    select
        records.record_type,
        records.record_id,
        records.record_name,
        records.company_name,
        records.owner_id,
        periods.period,
        periods.period_days,
        {{ as_of_date() }} as as_of_date,
        past_counts.last_contacted_at,
        past_counts.last_contacted_by,
        upcoming_counts.next_contact_at,
        upcoming_counts.next_contact_by,
        {%- for kpi in [
            'emails_sent', 'emails_received', 'meetings', 'calls_outgoing', 'calls_incoming',
            'past_activities', 'customer_initiated', 'team_initiated'
        ] %}
        cast(coalesce(past_counts.{{ kpi }}, 0) as {{ dbt.type_bigint() }}) as {{ kpi }},
        {%- endfor %}
        cast(coalesce(upcoming_counts.upcoming_activities, 0) as {{ dbt.type_bigint() }})
            as upcoming_activities,
        cast(past_counts.emails_answered_in_window as {{ type_double() }})
        / nullif(past_counts.emails_with_closed_window, 0) as customer_response_rate,
        cast(past_counts.customer_response_hours as {{ type_double() }}) as customer_response_hours,
        cast(response_medians.customer_response_hours_median as {{ type_double() }})
            as customer_response_hours_median,
        cast(past_counts.team_response_hours as {{ type_double() }}) as team_response_hours,
        cast(response_medians.team_response_hours_median as {{ type_double() }})
            as team_response_hours_median,
        cast(coalesce(past_counts.team_time_minutes, 0) as {{ type_double() }}) as team_time_minutes,
        cast(coalesce(past_counts.customer_time_minutes, 0) as {{ type_double() }})
            as customer_time_minutes
    from records
    cross join periods
    left join past_counts
        on
            records.record_type = past_counts.record_type
            and records.record_id = past_counts.record_id
            and periods.period = past_counts.period
    left join response_medians
        on
            records.record_type = response_medians.record_type
            and records.record_id = response_medians.record_id
            and periods.period = response_medians.period
    left join upcoming_counts
        on
            records.record_type = upcoming_counts.record_type
            and records.record_id = upcoming_counts.record_id
)

select
    *,
    cast(emails_sent as {{ type_double() }}) / nullif(emails_received, 0) as email_send_ratio,
    cast(emails_received as {{ type_double() }}) / nullif(emails_sent, 0)
        as customer_email_send_ratio
from counted

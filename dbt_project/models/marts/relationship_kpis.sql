-- Every per-record KPI, over the whole history (period 'all') and the trailing period_days
-- ending with the as-of date D (period 'trailing'). Upcoming activities and the next contact are
-- the same in both periods. Every existing record has both rows, with zeros where nothing happened.
with records as (
    select * from {{ ref('int_records_unioned') }}
),

periods as (
    select
        'all' as period,
        cast(null as integer) as period_days,
        cast(null as date) as period_start

    union all

    select
        'trailing' as period,
        {{ var('period_days') }} as period_days,
        cast({{ dbt.dateadd('day', 1 - var('period_days'), as_of_date()) }} as date) as period_start
),

-- The past's KPIs: sums over the days of each period (int_record_activity_days), up to D.
past_counts as (
    select
        days.record_type,
        days.record_id,
        periods.period,
        sum(days.activities) as past_activities,
        {%- for kpi in [
            'emails_sent', 'emails_received', 'meetings', 'calls_outgoing',
            'calls_incoming', 'customer_initiated', 'team_initiated', 'emails_with_closed_window',
            'emails_answered_in_window', 'team_time_minutes', 'customer_time_minutes',
        ] %}
        sum(days.{{ kpi }}) as {{ kpi }},
        {%- endfor %}
        sum(days.customer_response_hours_total) / nullif(sum(days.customer_responses), 0)
            as customer_response_hours,
        sum(days.team_response_hours_total) / nullif(sum(days.team_responses), 0)
            as team_response_hours,
        max(days.last_contacted_at) as last_contacted_at,
        {{ value_at_extreme(
            'days.last_contacted_by', ['days.last_contacted_at'], true, 'days.last_contacted_at is not null'
        ) }} as last_contacted_by
    from {{ ref('int_record_activity_days') }} as days
    cross join periods
    where
        days.activity_day <= {{ as_of_date() }}
        and (periods.period_start is null or days.activity_day >= periods.period_start)
    group by days.record_type, days.record_id, periods.period
),

-- Medians need every value of their group at once: over the answered emails only (reply figures
-- belong to the email being answered: its records, its period).
response_medians as (
    select
        memberships.record_type,
        memberships.record_id,
        periods.period,
        {{ median("case when responses.side = 'team' then responses.response_hours end") }}
            as customer_response_hours_median,
        {{ median("case when responses.side = 'customer' then responses.response_hours end") }}
            as team_response_hours_median
    from {{ ref('int_email_responses') }} as responses
    inner join {{ ref('int_activities_classified') }} as activities
        on responses.activity_id = activities.activity_id
    inner join {{ ref('int_record_activities') }} as memberships
        on responses.activity_id = memberships.activity_id
    cross join periods
    where
        responses.response_hours is not null
        and activities.is_counted
        and activities.activity_at < {{ as_of_end() }}
        and (
            periods.period_start is null
            or activities.activity_at >= cast(periods.period_start as {{ dbt.type_timestamp() }})
        )
    group by memberships.record_type, memberships.record_id, periods.period
),

upcoming_counts as (
    select
        memberships.record_type,
        memberships.record_id,
        count(*) as upcoming_activities,
        -- The soonest conversation (the first id among those at the same time).
        min(activities.scheduled_at) filter (where activities.is_conversation) as next_contact_at,
        {{ value_at_extreme(
            'activities.owner_id', ['activities.scheduled_at', 'activities.activity_id'], false,
            'activities.is_conversation'
        ) }} as next_contact_by
    from {{ ref('int_activities_classified') }} as activities
    inner join {{ ref('int_record_activities') }} as memberships
        on activities.activity_id = memberships.activity_id
    where activities.is_counted and activities.scheduled_at >= {{ as_of_end() }}
    group by memberships.record_type, memberships.record_id
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

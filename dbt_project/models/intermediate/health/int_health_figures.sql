-- Every record's health figures on every computed day: the history's days and, before them, the
-- trend distance. A running sum of int_health_events per record; each row uses only deltas dated
-- on or before its day.
with days as (
    select
        cast({{ dbt.dateadd('day', 'cast(generated_number as integer) - 1', health_first_day()) }} as date) as health_day
    from ({{ dbt.generate_series(health_days_computed()) }}) as series
),

spine as (
    select records.record_type, records.record_id, days.health_day
    from {{ ref('int_records_unioned') }} as records
    cross join days
),

{%- set figures = [
    'two_way_activities', 'touches', 'customer_initiated', 'team_initiated', 'emails_closed',
    'emails_answered', 'customer_responses', 'customer_response_seconds', 'team_responses',
    'team_response_seconds', 'external_people',
] %}

summed as (
    select
        spine.record_type,
        spine.record_id,
        spine.health_day,
        {%- for name in figures %}
        sum(coalesce(events.{{ name }}, 0)) over running as {{ name }},
        {%- endfor %}
        max(events.last_two_way_day) over running as last_two_way_day
    from spine
    left join {{ ref('int_health_events') }} as events
        on
            spine.record_type = events.record_type
            and spine.record_id = events.record_id
            and spine.health_day = events.event_day
    window running as (
        partition by spine.record_type, spine.record_id
        order by spine.health_day
        rows between unbounded preceding and current row
    )
)

select * from summed

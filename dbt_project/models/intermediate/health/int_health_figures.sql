-- Every record's health figures on every computed day: the history's days and, before them, the
-- trend distance. A running sum of int_health_events per record; each row uses only deltas dated
-- on or before its day.
with days as (
    select
        cast({{ dbt.dateadd('day', 'cast(generated_number as integer) - 1', health_first_day()) }} as date) as health_day
    from ({{ dbt.generate_series(health_days_computed()) }}) as series
),

-- An integer key per record: the running sums sort by it much faster than by two strings.
records as (
    select
        record_type,
        record_id,
        row_number() over (order by record_type, record_id) as record_key
    from {{ ref('int_records_unioned') }}
),

events as (
    select records.record_key, events.*
    from {{ ref('int_health_events') }} as events
    inner join records
        on events.record_type = records.record_type and events.record_id = records.record_id
),

spine as (
    select records.record_type, records.record_id, records.record_key, days.health_day
    from records
    cross join days
),

{%- set figures = health_figures() %}

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
    left join events
        on spine.record_key = events.record_key and spine.health_day = events.event_day
    window running as (
        partition by spine.record_key
        order by spine.health_day
        rows between unbounded preceding and current row
    )
)

select * from summed

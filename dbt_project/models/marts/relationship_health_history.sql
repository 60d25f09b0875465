-- Relationship health of every record on every day of the health_history_days ending with D,
-- each day from what was known by its end (int_health_figures, rows on the days the figures
-- change, expanded here into every day): the figures behind the signals, the signals, the score,
-- its status and its trend. relationship_health adds the reasons.
-- Incremental (health.sql, docs/incremental.md): a night recomputes each record from the first
-- day its health inputs may have changed, or its new days if none did (from the trend distance
-- before, for the trend), and keeps its rows before. Either way the rows are those of a full build.
-- depends_on: {{ ref('int_health_events') }}, {{ ref('int_records_unioned') }}
{{ config(
    materialized='scoped_incremental',
    scope='health_history_scope',
    scope_columns={'record_type': 'varchar', 'record_id': 'varchar', 'from_day': 'date'},
    day_column='as_of_date',
    stale_rows='health_history_stale_rows',
    settings=[
        'health_signal_weights', 'health_recency_half_life_days', 'health_expected_cadence',
        'health_cadence_touches', 'health_team_response_target_hours',
        'health_customer_response_target_hours', 'health_breadth_target_people',
        'health_status_thresholds', 'health_min_two_way_activities', 'health_trend_days',
        'health_trend_step', 'health_history_days', 'privacy_rules',
    ],
) }}
{%- set weights = health_signal_weights() %}
{%- set signals = weights.keys() | list %}
{%- set thresholds = var('health_status_thresholds') %}
{%- set scope = incremental_scope() %}
with
{%- if scope is not none %}
figures as (
    select figures.*, scope.from_day as kept_from
    from ({{ health_running_figures(
        'select record_type, record_id, cast('
        ~ dbt.dateadd('day', -1 * var('health_trend_days'), 'from_day')
        ~ ' as date) as first_day from (' ~ scope ~ ') as scope'
    ) }}) as figures
    inner join ({{ scope }}) as scope
        on figures.record_type = scope.record_type and figures.record_id = scope.record_id
),
{%- else %}
figures as (
    select *, cast({{ health_history_start() }} as date) as kept_from from {{ ref('int_health_figures') }}
),
{%- endif %}

-- The signals that do not depend on the day, once per row of figures (they hold until the next).
measured as (
    select
        record_type,
        record_id,
        health_day,
        kept_from,
        last_two_way_day,
        two_way_activities,
        two_way_activities >= {{ var('health_min_two_way_activities') }} as has_enough_history,
        cast(touches as {{ type_double() }}) as touches,
        cast(emails_answered as {{ type_double() }}) / nullif(emails_closed, 0) as customer_response_rate,
        cast(customer_initiated as {{ type_double() }})
        / nullif(customer_initiated + team_initiated, 0) as customer_initiated_share,
        team_response_seconds / cast(3600 as {{ type_double() }}) / nullif(team_responses, 0) as team_response_hours,
        customer_response_seconds / cast(3600 as {{ type_double() }}) / nullif(customer_responses, 0) as customer_response_hours,
        external_people
    from figures
),

held as (
    select
        *,
        least(1.0, touches / {{ health_expected_touches() }}) as signal_frequency,
        {{ mean_of_available([
            'customer_response_rate',
            'case when customer_initiated_share is not null then least(1.0, 2 * customer_initiated_share) end'
        ]) }} as signal_reciprocity,
        {#- Replying faster than the target scores 1, slower scores target / hours. -#}
        {{ mean_of_available([
            'case when team_response_hours <= ' ~ var('health_team_response_target_hours')
            ~ ' then 1.0 else ' ~ var('health_team_response_target_hours') ~ ' / team_response_hours end',
            'case when customer_response_hours <= ' ~ var('health_customer_response_target_hours')
            ~ ' then 1.0 else ' ~ var('health_customer_response_target_hours') ~ ' / customer_response_hours end',
        ]) }} as signal_responsiveness,
        least(
            1.0,
            external_people / cast({{ var('health_breadth_target_people') }} as {{ type_double() }})
        ) as signal_breadth
    from measured
),

-- A day's row reads the figures of its day and, for the trend, of health_trend_days earlier: both
-- stay the same from a day on which either changes to the next, a stretch of days. Each row of
-- figures starts one on its day (`current_day`, its figures) and health_trend_days later
-- (`earlier_day`); every stretch takes the latest of each up to its first day.
starts as (
    select record_type, record_id, health_day as first_day, health_day as current_day, cast(null as date) as earlier_day
    from figures
    union all
    select record_type, record_id, {{ trend_days_later('health_day') }}, cast(null as date), health_day
    from figures
    where {{ trend_days_later('health_day') }} <= {{ as_of_date() }}
),

stretches as (
    select
        record_type,
        record_id,
        first_day,
        max(current_day) over up_to_first_day as current_day,
        max(earlier_day) over up_to_first_day as earlier_day,
        lead(first_day) over by_first_day as next_first_day
    from starts
    -- Spark refuses a frame on lead(), which takes none: the frame has a window of its own.
    window
        by_first_day as (partition by record_type, record_id order by first_day),
        up_to_first_day as (
            partition by record_type, record_id
            order by first_day
            range between unbounded preceding and current row
        )
),

-- Every day of the history, in its stretch (two starts on one day make one stretch).
days as (
    select
        current_figures.*,
        {{ each_day(
            'greatest(stretches.first_day, current_figures.kept_from)',
            'coalesce(cast(' ~ dbt.dateadd('day', -1, 'stretches.next_first_day') ~ ' as date), ' ~ as_of_date() ~ ')'
        ) }} as as_of_date,
        {%- for signal in signals if signal != 'recency' %}
        earlier_figures.signal_{{ signal }} as earlier_signal_{{ signal }},
        {%- endfor %}
        earlier_figures.has_enough_history as earlier_has_enough_history,
        earlier_figures.last_two_way_day as earlier_last_two_way_day
    from stretches
    inner join held as current_figures
        on stretches.record_type = current_figures.record_type
        and stretches.record_id = current_figures.record_id
        and stretches.current_day = current_figures.health_day
    left join held as earlier_figures
        on stretches.record_type = earlier_figures.record_type
        and stretches.record_id = earlier_figures.record_id
        and stretches.earlier_day = earlier_figures.health_day
    where stretches.next_first_day is null or stretches.next_first_day > stretches.first_day
),

signals as (
    select
        *,
        {{ dbt.datediff('last_two_way_day', 'as_of_date', 'day') }} as days_since_two_way,
        {{ health_recency(dbt.datediff('last_two_way_day', 'as_of_date', 'day')) }} as signal_recency,
        {{ health_recency(dbt.datediff(
            'earlier_last_two_way_day', dbt.dateadd('day', -1 * var('health_trend_days'), 'as_of_date'), 'day'
        )) }} as earlier_signal_recency
    from days
),

scored as (
    select
        *,
        {{ health_score('signal_', 'has_enough_history') }} as health_score,
        -- The score health_trend_days earlier (none before the record's first row of figures).
        {{ health_score('earlier_signal_', 'earlier_has_enough_history') }} as earlier_health_score
    from signals
)

select
    record_type,
    record_id,
    as_of_date,
    health_score,
    case
        when health_score is null then 'Not enough info'
        when health_score >= {{ thresholds['good'] }} then 'Good'
        when health_score >= {{ thresholds['fair'] }} then 'Fair'
        else 'Poor'
    end as health_status,
    case
        when health_score is null or earlier_health_score is null then 'Not enough info'
        when health_score - earlier_health_score >= {{ var('health_trend_step') }} then 'Improving'
        when health_score - earlier_health_score <= -{{ var('health_trend_step') }} then 'Declining'
        else 'Steady'
    end as health_trend,
    earlier_health_score,
    {%- for signal in signals %}
    cast(signal_{{ signal }} as {{ type_double() }}) as signal_{{ signal }},
    {%- endfor %}
    has_enough_history,
    cast(two_way_activities as {{ dbt.type_bigint() }}) as two_way_activities,
    cast(days_since_two_way as integer) as days_since_two_way,
    touches as weighted_touches,
    customer_response_rate,
    customer_initiated_share,
    cast(team_response_hours as {{ type_double() }}) as team_response_hours,
    cast(customer_response_hours as {{ type_double() }}) as customer_response_hours,
    cast(external_people as {{ dbt.type_bigint() }}) as customer_people
from scored

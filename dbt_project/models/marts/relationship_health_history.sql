-- Relationship health of every record on every day of the health_history_days ending with D,
-- each day from what was known by its end (int_health_figures): five signals, the score, its
-- status and trend, and the reasons that cost the most, in words.
{%- set weights = health_signal_weights() %}
{%- set signals = weights.keys() | list %}
{%- set signal_days = var('health_signal_days') %}
{%- set thresholds = var('health_status_thresholds') %}
with figures as (
    select * from {{ ref('int_health_figures') }}
),

measured as (
    select
        record_type,
        record_id,
        health_day as as_of_date,
        two_way_activities,
        two_way_activities >= {{ var('health_min_two_way_activities') }} as has_enough_history,
        {{ dbt.datediff('last_two_way_day', 'health_day', 'day') }} as days_since_two_way,
        cast(touches as {{ type_double() }}) as touches,
        cast(emails_answered as {{ type_double() }}) / nullif(emails_closed, 0) as customer_response_rate,
        cast(customer_initiated as {{ type_double() }})
        / nullif(customer_initiated + team_initiated, 0) as customer_initiated_share,
        team_response_seconds / 3600.0 / nullif(team_responses, 0) as team_response_hours,
        customer_response_seconds / 3600.0 / nullif(customer_responses, 0) as customer_response_hours,
        external_people
    from figures
),

signals as (
    select
        *,
        power(
            0.5,
            days_since_two_way / cast({{ var('health_recency_half_life_days') }} as {{ type_double() }})
        ) as signal_recency,
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

weighted as (
    select
        *,
        {%- set available_weight -%}
            ({% for signal in signals %}case when signal_{{ signal }} is not null then {{ weights[signal] }} else 0 end{% if not loop.last %} + {% endif %}{% endfor %})
        {%- endset %}
        -- What each signal costs the score: its share of the weight times what it lacks of 1.
        {%- for signal in signals %}
        {{ weights[signal] }} * (1 - signal_{{ signal }}) / nullif({{ available_weight }}, 0) as cost_{{ signal }},
        {%- endfor %}
        ({% for signal in signals %}coalesce({{ weights[signal] }} * signal_{{ signal }}, 0){% if not loop.last %} + {% endif %}{% endfor %})
        / nullif({{ available_weight }}, 0) as weighted_signals
    from signals
),

scored as (
    select
        *,
        -- Rounded to 9 decimals first, so that floating-point noise cannot tip a .5 either way.
        case
            when has_enough_history then cast(round(round(100 * weighted_signals, 9), 0) as integer)
        end as health_score
    from weighted
),

{%- set cadence = var('health_expected_cadence') | replace('_', ' ') %}
{%- set reason_texts = {
    'recency': "case when days_since_two_way = 0 then 'the customer was in touch today'
            else 'no reply from the customer in ' || " ~ count_of('days_since_two_way', 'day') ~ " end",
    'frequency': "case when touches = 0 then 'no activity' else " ~ number_text('touches')
        ~ " || case when touches = 1 then ' weighted touch' else ' weighted touches' end end
        || ' in the last " ~ var('health_frequency_days') ~ " days (" ~ health_expected_touches()
        ~ " expected for a " ~ cadence ~ " cadence)'",
    'reciprocity': "'the customer ' || case
            when customer_response_rate is not null and customer_initiated_share is not null
                then 'answered ' || " ~ percent_text('customer_response_rate') ~ " || ' of our emails and started '
                    || " ~ percent_text('customer_initiated_share') ~ " || ' of the conversations'
            when customer_response_rate is not null
                then 'answered ' || " ~ percent_text('customer_response_rate') ~ " || ' of our emails'
            else 'started ' || " ~ percent_text('customer_initiated_share') ~ " || ' of the conversations'
        end || ' in the last " ~ signal_days ~ " days'",
    'responsiveness': "case
            when team_response_hours is not null and customer_response_hours is not null
                then 'we reply in ' || " ~ number_text('team_response_hours') ~ " || ' hours on average (target "
                    ~ var('health_team_response_target_hours') ~ "), the customer in ' || "
                    ~ number_text('customer_response_hours') ~ " || ' (target " ~ var('health_customer_response_target_hours') ~ ")'
            when team_response_hours is not null
                then 'we reply in ' || " ~ number_text('team_response_hours') ~ " || ' hours on average (target "
                    ~ var('health_team_response_target_hours') ~ ")'
            else 'the customer replies in ' || " ~ number_text('customer_response_hours') ~ " || ' hours on average (target "
                ~ var('health_customer_response_target_hours') ~ ")'
        end",
    'breadth': "cast(external_people as " ~ dbt.type_string() ~ ") || case when external_people = 1
            then ' customer person' else ' customer people' end || ' engaged in the last "
        ~ signal_days ~ " days (target " ~ var('health_breadth_target_people') ~ ")'",
} %}

ranked as (
    select
        *,
        {#- A signal's place among the costliest: ties go to the signal listed first. Signals
            without data never place. -#}
        {%- for signal in signals %}
        case when cost_{{ signal }} is not null then 1
            {%- for other in signals if other != signal %}
            + case when cost_{{ other }} {{ '>=' if signals.index(other) < signals.index(signal) else '>' }} cost_{{ signal }} then 1 else 0 end
            {%- endfor %}
        end as place_{{ signal }},
        {%- endfor %}
        {%- for signal in signals %}
        {{ reason_texts[signal] }} as reason_{{ signal }}{{ ',' if not loop.last }}
        {%- endfor %}
    from scored
),

explained as (
    select
        ranked.*,
        case
            when not has_enough_history then
                case
                    when two_way_activities = 0 then 'no two-way activity with the customer yet'
                    when two_way_activities = 1 then 'only 1 two-way activity with the customer so far'
                    else 'only ' || cast(two_way_activities as {{ dbt.type_string() }})
                        || ' two-way activities with the customer so far'
                end
                || ' ({{ var("health_min_two_way_activities") }} needed for a score)'
            else
                {%- for place in [1, 2, 3] %}
                {{ "|| coalesce('; ' || " if not loop.first }}case
                    {%- for signal in signals %}
                    when place_{{ signal }} = {{ place }}{{ ' and cost_' ~ signal ~ ' > 0' if place == 3 }} then reason_{{ signal }}
                    {%- endfor %}
                end{{ ", '')" if not loop.first }}
                {%- endfor %}
        end as reasons
    from ranked
)

select
    explained.record_type,
    explained.record_id,
    explained.as_of_date,
    explained.health_score,
    case
        when explained.health_score is null then 'Not enough info'
        when explained.health_score >= {{ thresholds['good'] }} then 'Good'
        when explained.health_score >= {{ thresholds['fair'] }} then 'Fair'
        else 'Poor'
    end as health_status,
    case
        when explained.health_score is null or earlier.health_score is null then 'Not enough info'
        when explained.health_score - earlier.health_score >= {{ var('health_trend_step') }} then 'Improving'
        when explained.health_score - earlier.health_score <= -{{ var('health_trend_step') }} then 'Declining'
        else 'Steady'
    end as health_trend,
    earlier.health_score as earlier_health_score,
    {%- for signal in signals %}
    cast(explained.signal_{{ signal }} as {{ type_double() }}) as signal_{{ signal }},
    {%- endfor %}
    explained.reasons,
    explained.has_enough_history,
    cast(explained.two_way_activities as {{ dbt.type_bigint() }}) as two_way_activities
from explained
left join scored as earlier
    on
        explained.record_type = earlier.record_type
        and explained.record_id = earlier.record_id
        and earlier.as_of_date = {{ dbt.dateadd('day', -1 * var('health_trend_days'), 'explained.as_of_date') }}
where explained.as_of_date > {{ dbt.dateadd('day', -1 * var('health_history_days'), as_of_date()) }}

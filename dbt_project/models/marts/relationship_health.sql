-- Relationship health of every record as of D: D's row of relationship_health_history, with the
-- record's name and owner, and the reasons: the signals that cost the score most, in words.
{%- set weights = health_signal_weights() %}
{%- set signals = weights.keys() | list %}
{%- set signal_days = var('health_signal_days') %}
with current_health as (
    select
        history.*,
        records.record_name,
        records.company_name,
        records.owner_id
    from {{ ref('relationship_health_history') }} as history
    inner join {{ ref('int_records_unioned') }} as records
        on history.record_type = records.record_type and history.record_id = records.record_id
    where history.as_of_date = {{ as_of_date() }}
),

costed as (
    select
        *,
        -- What each signal costs the score: its share of the weight times what it lacks of 1.
        {%- for signal in signals %}
        {{ weights[signal] }} * (1 - signal_{{ signal }}) / {{ health_available_weight() }} as cost_{{ signal }}{{ ',' if not loop.last }}
        {%- endfor %}
    from current_health
),

{%- set cadence = var('health_expected_cadence') | replace('_', ' ') %}
{%- set reason_texts = {
    'recency': "case when days_since_two_way = 0 then 'the customer was in touch today'
            else 'no reply from the customer in ' || " ~ count_of('days_since_two_way', 'day') ~ " end",
    'frequency': "case when weighted_touches = 0 then 'no activity' else " ~ number_text('weighted_touches')
        ~ " || case when weighted_touches = 1 then ' weighted touch' else ' weighted touches' end end
        || " ~ sql_string(' in the last ' ~ var('health_frequency_days') ~ ' days (' ~ health_expected_touches()
        ~ ' expected for a ' ~ cadence ~ ' cadence)'),
    'reciprocity': "'the customer ' || case
            when customer_response_rate is not null and customer_initiated_share is not null
                then 'answered ' || " ~ percent_text('customer_response_rate') ~ " || ' of our emails and started '
                    || " ~ percent_text('customer_initiated_share') ~ " || ' of the conversations'
            when customer_response_rate is not null
                then 'answered ' || " ~ percent_text('customer_response_rate') ~ " || ' of our emails'
            else 'started ' || " ~ percent_text('customer_initiated_share') ~ " || ' of the conversations'
        end || " ~ sql_string(' in the last ' ~ signal_days ~ ' days'),
    'responsiveness': "case
            when team_response_hours is not null and customer_response_hours is not null
                then 'we reply in ' || " ~ number_text('team_response_hours') ~ " || "
                    ~ sql_string(' hours on average (target ' ~ var('health_team_response_target_hours') ~ '), the customer in ')
                    ~ " || " ~ number_text('customer_response_hours') ~ " || "
                    ~ sql_string(' (target ' ~ var('health_customer_response_target_hours') ~ ')') ~ "
            when team_response_hours is not null
                then 'we reply in ' || " ~ number_text('team_response_hours') ~ " || "
                    ~ sql_string(' hours on average (target ' ~ var('health_team_response_target_hours') ~ ')') ~ "
            else 'the customer replies in ' || " ~ number_text('customer_response_hours') ~ " || "
                ~ sql_string(' hours on average (target ' ~ var('health_customer_response_target_hours') ~ ')') ~ "
        end",
    'breadth': "cast(customer_people as " ~ dbt.type_string() ~ ") || case when customer_people = 1
            then ' customer person' else ' customer people' end || "
        ~ sql_string(' engaged in the last ' ~ signal_days ~ ' days (target ' ~ var('health_breadth_target_people') ~ ')'),
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
        end as place_{{ signal }}{{ ',' if not loop.last }}
        {%- endfor %}
    from costed
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
                    when place_{{ signal }} = {{ place }}{{ ' and cost_' ~ signal ~ ' > 0' if place == 3 }}
                        then {{ reason_texts[signal] }}
                    {%- endfor %}
                end{{ ", '')" if not loop.first }}
                {%- endfor %}
        end as reasons
    from ranked
)

select
    record_type,
    record_id,
    record_name,
    company_name,
    owner_id,
    as_of_date,
    health_score,
    health_status,
    health_trend,
    earlier_health_score,
    {%- for signal in signals %}
    signal_{{ signal }},
    {%- endfor %}
    reasons,
    has_enough_history,
    two_way_activities,
    days_since_two_way,
    weighted_touches,
    customer_response_rate,
    customer_initiated_share,
    team_response_hours,
    customer_response_hours,
    customer_people
from explained

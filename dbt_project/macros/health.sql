{#- Relationship health: the days it is computed for, and its settings checked once. -#}

{#- The first day whose score is computed: the history's first day, less the trend distance (the
    history's first days need the score health_trend_days earlier for their trend). -#}
{% macro health_first_day() -%}
    {{ dbt.dateadd('day', 1 - health_days_computed(), as_of_date()) }}
{%- endmacro %}

{% macro health_days_computed() -%}
    {{ return(var('health_history_days') + var('health_trend_days')) }}
{%- endmacro %}

{#- The configured signal weights, checked: known signals, none negative, some positive. -#}
{% macro health_signal_weights() -%}
    {%- set signals = ['recency', 'frequency', 'reciprocity', 'responsiveness', 'breadth'] -%}
    {%- set weights = var('health_signal_weights') -%}
    {%- for signal in weights if signal not in signals -%}
        {{ exceptions.raise_compiler_error("health_signal_weights: unknown signal '" ~ signal ~ "'; known: " ~ signals | join(', ')) }}
    {%- endfor -%}
    {%- set checked = {} -%}
    {%- for signal in signals -%}
        {%- set weight = weights.get(signal, 0) -%}
        {%- if weight is not number or weight < 0 -%}
            {{ exceptions.raise_compiler_error("health_signal_weights: the weight of " ~ signal ~ " must be a number >= 0, got '" ~ weight ~ "'") }}
        {%- endif -%}
        {%- do checked.update({signal: weight}) -%}
    {%- endfor -%}
    {%- if checked.values() | sum <= 0 -%}
        {{ exceptions.raise_compiler_error("health_signal_weights: at least one weight must be positive") }}
    {%- endif -%}
    {{ return(checked) }}
{%- endmacro %}

{#- Weighted touches the expected cadence asks for in 30 days. -#}
{% macro health_expected_touches() -%}
    {%- set cadence = var('health_expected_cadence') -%}
    {%- set touches = var('health_cadence_touches') -%}
    {%- if cadence not in touches -%}
        {{ exceptions.raise_compiler_error("health_expected_cadence '" ~ cadence ~ "' is none of health_cadence_touches: " ~ touches.keys() | join(', ')) }}
    {%- endif -%}
    {{ return(touches[cadence]) }}
{%- endmacro %}

{#- A number as a seller reads it: whole numbers without decimals, others with one. -#}
{% macro number_text(expression) -%}
    case
        when {{ expression }} = floor({{ expression }})
            then cast(cast({{ expression }} as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }})
        else {{ one_decimal(expression) }}
    end
{%- endmacro %}

{#- The mean of the parts that have data; empty when none has. -#}
{% macro mean_of_available(parts) -%}
    ({% for part in parts %}coalesce({{ part }}, 0){% if not loop.last %} + {% endif %}{% endfor %})
    / nullif({% for part in parts %}case when {{ part }} is not null then 1 else 0 end{% if not loop.last %} + {% endif %}{% endfor %}, 0)
{%- endmacro %}

{#- A share as a whole percentage: 0.25 -> '25%'. -#}
{% macro percent_text(expression) -%}
    cast(cast(floor(100 * {{ expression }} + 0.5) as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }}) || '%'
{%- endmacro %}

{#- The weight of the signals that have data: the score and the costs are shares of it. -#}
{% macro health_available_weight() -%}
    {%- set weights = health_signal_weights() -%}
    nullif({% for signal, weight in weights.items() %}case when signal_{{ signal }} is not null then {{ weight }} else 0 end{% if not loop.last %} + {% endif %}{% endfor %}, 0)
{%- endmacro %}

{#- The figures int_health_events keeps as deltas and int_health_figures sums, besides the last
    two-way day. -#}
{% macro health_figures() -%}
    {{ return([
        'two_way_activities', 'touches', 'customer_initiated', 'team_initiated', 'emails_closed',
        'emails_answered', 'customer_responses', 'customer_response_seconds', 'team_responses',
        'team_response_seconds', 'external_people',
    ]) }}
{%- endmacro %}

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

{#- The mean of the parts that have data; empty when none has. -#}
{% macro mean_of_available(parts) -%}
    ({% for part in parts %}coalesce({{ part }}, 0){% if not loop.last %} + {% endif %}{% endfor %})
    / nullif({% for part in parts %}case when {{ part }} is not null then 1 else 0 end{% if not loop.last %} + {% endif %}{% endfor %}, 0)
{%- endmacro %}

{#- A share as a whole percentage: 0.25 -> '25%'. -#}
{% macro percent_text(expression) -%}
    cast(cast(floor(100 * {{ expression }} + 0.5) as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }}) || '%'
{%- endmacro %}

{#- The weight of the signals that have data (columns `<prefix><signal>`): the score and the costs
    are shares of it. -#}
{% macro health_available_weight(prefix='signal_') -%}
    {%- set weights = health_signal_weights() -%}
    nullif({% for signal, weight in weights.items() %}case when {{ prefix }}{{ signal }} is not null then {{ weight }} else 0 end{% if not loop.last %} + {% endif %}{% endfor %}, 0)
{%- endmacro %}

{#- The health score from the signals (columns `<prefix><signal>`), none without enough history.
    Rounded to 9 decimals first, so that floating-point noise cannot tip a .5 either way. -#}
{% macro health_score(prefix, has_enough_history) -%}
    {%- set weights = health_signal_weights() -%}
    case
        when {{ has_enough_history }} then cast(round(round(100 * (
            ({% for signal, weight in weights.items() %}coalesce({{ weight }} * {{ prefix }}{{ signal }}, 0){% if not loop.last %} + {% endif %}{% endfor %})
            / {{ health_available_weight(prefix) }}
        ), 9), 0) as integer)
    end
{%- endmacro %}

{#- The recency signal of `days` since the last two-way activity: halves every half-life. -#}
{% macro health_recency(days) -%}
    power(0.5, {{ days }} / cast({{ var('health_recency_half_life_days') }} as {{ type_double() }}))
{%- endmacro %}

{#- The day health_trend_days after `day`. -#}
{% macro trend_days_later(day) -%}
    cast({{ dbt.dateadd('day', var('health_trend_days'), day) }} as date)
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

{#- A health figure (or a sum of it) as a 64-bit number: exact, and far cheaper to sum than the
    128-bit numbers DuckDB's sums give. -#}
{% macro health_figure_cast(expression, name) -%}
    cast({{ expression }} as {{ 'numeric(18, 6)' if name == 'touches' else dbt.type_bigint() }})
{%- endmacro %}

{#- Health figures per record: the running sums of int_health_events, one row per record and day
    on which they change, and one on the record's first day; every day up to the next row (or D)
    has that row's figures. `records` is a query of record_type, record_id and first_day, the
    record's first day to compute (on or after health_first_day()); deltas before it start its
    running sums, deltas after D are skipped. -#}
{% macro health_running_figures(records) -%}
{%- set figures = health_figures() %}
-- An integer key per record: the running sums sort by it much faster than by two strings.
with records as (
    select
        record_type,
        record_id,
        first_day,
        row_number() over (order by record_type, record_id) as record_key
    from ({{ records }}) as computed
),

-- Nothing is computed before the record's first day: earlier deltas are summed onto it, which has
-- a row even without any (figures 0).
deltas as (
    select
        records.record_key,
        case when events.event_day < records.first_day then records.first_day else events.event_day end
            as health_day,
        {%- for name in figures %}
        {{ health_figure_cast('events.' ~ name, name) }} as {{ name }},
        {%- endfor %}
        events.last_two_way_day
    from {{ ref('int_health_events') }} as events
    inner join records
        on events.record_type = records.record_type and events.record_id = records.record_id
    where events.event_day <= {{ as_of_date() }}
    union all
    select
        record_key,
        first_day,
        {%- for name in figures %}
        0,
        {%- endfor %}
        cast(null as date)
    from records
),

changes as (
    select
        record_key,
        health_day,
        {%- for name in figures %}
        {{ health_figure_cast('sum(' ~ name ~ ')', name) }} as {{ name }},
        {%- endfor %}
        max(last_two_way_day) as last_two_way_day
    from deltas
    group by record_key, health_day
)

select
    records.record_type,
    records.record_id,
    changes.health_day,
    {%- for name in figures %}
    sum(changes.{{ name }}) over running as {{ name }},
    {%- endfor %}
    max(changes.last_two_way_day) over running as last_two_way_day
from changes
inner join records on changes.record_key = records.record_key
window running as (
    partition by changes.record_key
    order by changes.health_day
    rows between unbounded preceding and current row
)
{%- endmacro %}

{#- relationship_health_history is built by the materialization scoped_incremental
    (scoped_incremental.sql, docs/incremental.md). A record's rows up to a day depend only on its
    deltas in int_health_events up to that day and on the history's settings; int_health_events
    logs for the history every record whose deltas may have changed, with the first day that may
    have. So a night recomputes every record from the earlier of the day after the `previous`
    build's D (its new days) and the first day logged for it, not before the history's first day,
    and keeps its rows before; a record without rows on the previous D (a new one) is computed over
    every day. -#}
{% macro health_history_scope(previous) -%}
    {%- set history_start = health_history_start() -%}
    {%- set previous_day = "cast('" ~ previous['as_of_day'] ~ "' as date)" -%}
    select
        records.record_type,
        records.record_id,
        cast(case
            when previous.record_id is null then {{ history_start }}
            -- greatest() and least() skip nulls (DuckDB, PostgreSQL and Spark alike).
            else greatest({{ history_start }}, least({{ dbt.dateadd('day', 1, previous_day) }}, changes.changed_from))
        end as date) as from_day
    from {{ ref('int_records_unioned') }} as records
    left join (
        select record_type, record_id from {{ this }} where as_of_date = {{ previous_day }}
    ) as previous
        on records.record_type = previous.record_type and records.record_id = previous.record_id
    left join (
        select record_type, record_id, min(changed_from) as changed_from
        from {{ incremental_changes() }}
        where for_model = {{ sql_string(this.identifier) }}
        group by record_type, record_id
    ) as changes
        on records.record_type = changes.record_type and records.record_id = changes.record_id
{%- endmacro %}

{#- The rows a night drops besides its scope (`kept`: the history): the days that left the
    history, days after D, deleted records. -#}
{% macro health_history_stale_rows(kept) -%}
    {{ kept }}.as_of_date <= {{ dbt.dateadd('day', -1 * var('health_history_days'), as_of_date()) }}
    or {{ kept }}.as_of_date > {{ as_of_date() }}
    or not exists (
        select 1 from {{ ref('int_records_unioned') }} as records
        where records.record_type = {{ kept }}.record_type and records.record_id = {{ kept }}.record_id
    )
{%- endmacro %}

{#- The first day of the history: health_history_days ending with D. -#}
{% macro health_history_start() -%}
    {{ return(dbt.dateadd('day', 1 - var('health_history_days'), as_of_date())) }}
{%- endmacro %}

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

{#- Health figures per record and day: the running sums of int_health_events. `records` is a
    query of record_type, record_id and first_day, the record's first day to compute (on or after
    health_first_day()); deltas before it start its running sums, deltas after D are skipped. -#}
{% macro health_running_figures(records) -%}
{%- set figures = health_figures() %}
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
        first_day,
        row_number() over (order by record_type, record_id) as record_key
    from ({{ records }}) as computed
),

-- Nothing is computed before the record's first day: earlier deltas are summed onto it.
events as (
    select
        records.record_key,
        case when events.event_day < records.first_day then records.first_day else events.event_day end
            as summed_day,
        {%- for name in figures %}
        sum(events.{{ name }}) as {{ name }},
        {%- endfor %}
        max(events.last_two_way_day) as last_two_way_day
    from {{ ref('int_health_events') }} as events
    inner join records
        on events.record_type = records.record_type and events.record_id = records.record_id
    where events.event_day <= {{ as_of_date() }}
    group by 1, 2
),

spine as (
    select records.record_type, records.record_id, records.record_key, days.health_day
    from records
    inner join days on days.health_day >= records.first_day
)

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
    on spine.record_key = events.record_key and spine.health_day = events.summed_day
window running as (
    partition by spine.record_key
    order by spine.health_day
    rows between unbounded preceding and current row
)
{%- endmacro %}

{#- Nightly runs of relationship_health_history recompute each record only from the first day its
    inputs may have changed. A record's rows up to a day depend only on its deltas in
    int_health_events up to that day and on the settings below; int_health_events logs every
    record whose deltas may have changed with the first day that may have
    (int_health_events_changes). So a nightly build recomputes a record from the earliest day
    logged for it since the previous build, or from the day after the previous D (its new days),
    whichever is earlier, and keeps its rows before. A record the previous build did not write is
    computed over every day; a table of deltas built anew (a row of nulls in the log), other
    settings or an earlier D recompute every record. The previous build's D and settings are kept
    beside the history (relationship_health_history_state), and each build empties the log, all
    in the build's transaction. -#}
{#- A table the history (`history`, default the model being built) keeps beside it, in the
    intermediate schema: `<model>_<suffix>`. -#}
{% macro health_history_table(suffix, history=none) -%}
    {%- set history = history or this -%}
    {{ return(api.Relation.create(
        database=history.database,
        schema=ref('int_health_events').schema,
        identifier=history.identifier ~ '_' ~ suffix,
    )) }}
{%- endmacro %}

{#- What int_health_events logged for the history since its last build (incremental_changes). -#}
{% macro health_history_changes() -%}
    select * from {{ incremental_changes() }} where for_model = 'relationship_health_history'
{%- endmacro %}

{% macro health_history_state() -%}
    {{ return(health_history_table('state')) }}
{%- endmacro %}

{#- The settings the history reads besides the deltas (those the deltas depend on show in them). -#}
{% macro health_settings_fingerprint() -%}
    {%- set names = [
        'health_signal_weights', 'health_recency_half_life_days', 'health_expected_cadence',
        'health_cadence_touches', 'health_team_response_target_hours',
        'health_customer_response_target_hours', 'health_breadth_target_people',
        'health_status_thresholds', 'health_min_two_way_activities', 'health_trend_days',
        'health_trend_step', 'health_history_days', 'privacy_rules',
    ] -%}
    {%- set settings = {} -%}
    {%- for name in names %}{% do settings.update({name: var(name)}) %}{% endfor -%}
    {{ return(local_md5(tojson(settings, sort_keys=true))) }}
{%- endmacro %}

{#- The D of the previous build, when this build may keep its rows: an incremental run, the
    previous build's state, writes and the log of changes since present, the same settings, D not
    earlier, and no table of deltas built anew since. Else none (recompute all). -#}
{% macro health_history_previous_day() -%}
    {#- Unit tests have no relation of their own (`this`): they take the full path. -#}
    {%- if not (execute and this is not none and is_incremental()) %}{{ return(none) }}{% endif -%}
    {%- for table in [health_history_state(), health_history_writes(), incremental_changes()] -%}
        {%- if adapter.get_relation(table.database, table.schema, table.identifier) is none -%}
            {{ return(none) }}
        {%- endif -%}
    {%- endfor -%}
    {%- set state = run_query(
        "select cast(as_of_date as varchar), settings, "
        ~ "(select count(*) from (" ~ health_history_changes() ~ ") as changes where record_id is null) "
        ~ "from " ~ health_history_state()
    ).rows -%}
    {%- if state | length != 1 or state[0][0] is none or state[0][1] != health_settings_fingerprint()
        or state[0][0] > as_of_day() or state[0][2] > 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(state[0][0]) }}
{%- endmacro %}

{#- Before a nightly build: drop the days that left the history, days after D, deleted records. -#}
{% macro health_history_prune() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as history
    where
        history.as_of_date <= {{ dbt.dateadd('day', -1 * var('health_history_days'), as_of_date()) }}
        or history.as_of_date > {{ as_of_date() }}
        or not exists (
            select 1 from {{ ref('int_records_unioned') }} as records
            where records.record_type = history.record_type and records.record_id = history.record_id
        )
    {%- endif -%}
{%- endmacro %}

{#- The first day of the history: health_history_days ending with D. -#}
{% macro health_history_start() -%}
    {{ return(dbt.dateadd('day', 1 - var('health_history_days'), as_of_date())) }}
{%- endmacro %}

{#- The first day a build writes of each record (`written_from`; the model keeps its rows before),
    stored by a pre-hook of a nightly build for the model and for what its post-hook records it
    wrote, then dropped: the history's first day for a record the previous build did not write;
    else the earliest of the day after the previous D and the days logged for it, not before the
    history's first day. -#}
{% macro health_history_starts() -%}
    {{ return(health_history_table('starts')) }}
{%- endmacro %}

{% macro health_history_store_starts() -%}
    {%- set previous_day = health_history_previous_day() -%}
    {%- if previous_day -%}
    {%- set history_start = health_history_start() -%}
    create or replace table {{ health_history_starts() }} as
    select
        records.record_type,
        records.record_id,
        cast(case
            when previous.record_id is null then {{ history_start }}
            -- greatest() and least() skip nulls (DuckDB, PostgreSQL and Spark alike).
            else greatest({{ history_start }}, least(
                {{ dbt.dateadd('day', 1, "cast('" ~ previous_day ~ "' as date)") }}, changes.changed_from
            ))
        end as date) as written_from
    from {{ ref('int_records_unioned') }} as records
    left join {{ health_history_writes() }} as previous
        on records.record_type = previous.record_type and records.record_id = previous.record_id
    left join (
        select record_type, record_id, min(changed_from) as changed_from
        from ({{ health_history_changes() }}) as logged
        group by record_type, record_id
    ) as changes
        on records.record_type = changes.record_type and records.record_id = changes.record_id
    {%- endif -%}
{%- endmacro %}

{#- What each build wrote, for the marts' checks (defs/quality/suites.py: they validate only the rows a
    build wrote when the build whose rows it kept was validated): each record's first day written
    (`written_from`), the build's dbt invocation id and that of the build whose rows it kept (none
    after a full build). -#}
{% macro health_history_writes(history=none) -%}
    {{ return(health_history_table('writes', history)) }}
{%- endmacro %}

{% macro health_history_record_writes() -%}
    {%- set previous_day = health_history_previous_day() -%}
    {%- set writes = health_history_writes() -%}
    {%- set previous_build = none -%}
    {%- if previous_day -%}
        {%- set previous_build = run_query("select max(build_id) from " ~ writes).rows[0][0] -%}
    {%- endif -%}
    create or replace table {{ writes }} as
    select
        record_type,
        record_id,
        {{ 'written_from' if previous_day else 'cast(' ~ health_history_start() ~ ' as date) as written_from' }},
        '{{ invocation_id }}' as build_id,
        {{ "'" ~ previous_build ~ "'" if previous_build else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as previous_build_id
    from {{ health_history_starts() if previous_day else ref('int_records_unioned') }}
{%- endmacro %}

{#- After a build: its D and settings, for the next build. -#}
{% macro health_history_record_state() -%}
    create or replace table {{ health_history_state() }} as
    select {{ as_of_date() }} as as_of_date, '{{ health_settings_fingerprint() }}' as settings
{%- endmacro %}

{#- int_record_kpis is incremental per record. A nightly build recomputes every KPI of the records
    whose rows may have changed since its last build, and keeps the others:
    - the records the activity tables' log names (incremental_activity_changes, read from this
      model's own position in it): those an activity they recomputed belongs to, or belonged to;
    - the records of the activities the new as-of date moves between the periods: completed since
      the previous D's end (they become past), completed a period_days earlier (they leave the
      trailing period), scheduled since the previous D's end (they stop being upcoming).
    Nothing else of a record's KPIs depends on D: the activity tables log what D changes in their
    rows (an email completed by its end, a response window it closes). It is rebuilt in full as
    int_health_events is (log_reader_incremental), and when period_days changes. -#}

{#- The two periods: 'all' (no start) and 'trailing' (the period_days days ending with D). -#}
{% macro kpi_periods() -%}
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
{%- endmacro %}

{#- The KPIs that count something: 0 for a record without activities. -#}
{% macro kpi_counts() -%}
    {{ return([
        'emails_sent', 'emails_received', 'meetings', 'calls_outgoing', 'calls_incoming',
        'past_activities', 'customer_initiated', 'team_initiated', 'upcoming_activities',
    ]) }}
{%- endmacro %}

{% macro record_kpis_settings_fingerprint() -%}
    {{ return(local_md5(tojson({'period_days': var('period_days')}, sort_keys=true))) }}
{%- endmacro %}

{% macro record_kpis_incremental() -%}
    {{ return(log_reader_incremental(record_kpis_settings_fingerprint())) }}
{%- endmacro %}

{#- The records to recompute (record_type, record_id). -#}
{% macro record_kpis_scope_query() -%}
    {%- set previous_end = "cast(" ~ dbt.dateadd('day', 1, "cast('" ~ previous_activity_build(record_kpis_settings_fingerprint())['as_of_day'] ~ "' as date)")
        ~ " as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- set period_days = var('period_days') -%}
    with log as (
        {{ unread_activity_changes() }}
    ),

    moved as (
        select activity_id
        from {{ ref('int_activities_classified') }}
        where
            (activity_at >= {{ previous_end }} and activity_at < {{ as_of_end() }})
            or (
                activity_at >= {{ dbt.dateadd('day', -1 * period_days, previous_end) }}
                and activity_at < {{ dbt.dateadd('day', -1 * period_days, as_of_end()) }}
            )
            or (scheduled_at >= {{ previous_end }} and scheduled_at < {{ as_of_end() }})
    ),

    activities as (
        select activity_id from log where activity_id is not null
        union
        select activity_id from moved
    )

    select record_type, record_id
    from log
    where record_id is not null
    union
    select record_type, record_id
    from {{ ref('int_record_activities') }}
    where activity_id in (select activity_id from activities)
{%- endmacro %}

{#- The records the model recomputes, or none: all of them (the pre-hooks stored them). -#}
{% macro record_kpis_scope() -%}
    {%- if not record_kpis_incremental() %}{{ return(none) }}{% endif -%}
    {{ return('select record_type, record_id from ' ~ scope_table()) }}
{%- endmacro %}

{% macro record_kpis_config() -%}
    {{ scoped_incremental_config(
        "{% if is_incremental() and record_kpis_incremental() %}",
        "{{ record_kpis_scope_query() }}",
        [
            "{% if is_incremental() %}{% set scope = record_kpis_scope() %}delete from {{ this }} as kpis"
                ~ "{% if scope is not none %} using ({{ scope }}) as scope where kpis.record_type = scope.record_type"
                ~ " and kpis.record_id = scope.record_id{% endif %}{% endif %}",
        ],
        post_hooks=activity_log_read_hooks(),
        settings='record_kpis_settings_fingerprint()',
    ) }}
{%- endmacro %}

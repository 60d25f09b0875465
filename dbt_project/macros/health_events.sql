{#- int_health_events is incremental per record. A nightly build recomputes the records to which an
    activity recomputed by the activity tables since its last build belongs, or belonged
    (incremental_activity_changes), keeps every other record's deltas, and empties the log. Its
    deltas do not depend on the as-of date (the activity tables' rows do, and log what it changes):
    deltas after D are kept, and its readers skip them. It is rebuilt in full when an activity table
    was (a row of nulls in the log), when its own settings change, and as the activity tables are
    (previous_activity_build). -#}

{% macro health_events_settings_fingerprint() -%}
    {%- set settings = {} -%}
    {%- for name in ['health_activity_weights', 'health_signal_days', 'health_frequency_days'] -%}
        {%- do settings.update({name: var(name)}) -%}
    {%- endfor -%}
    {{ return(local_md5(tojson(settings, sort_keys=true))) }}
{%- endmacro %}

{#- Whether this build keeps the deltas of the records outside its scope. -#}
{% macro health_events_incremental() -%}
    {%- if previous_activity_build(health_events_settings_fingerprint()) is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set log = activity_changes_table() -%}
    {%- if adapter.get_relation(log.database, log.schema, log.identifier) is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set full_builds = run_query(
        "select count(*) from " ~ log ~ " where activity_id is null and record_id is null"
    ).rows[0][0] -%}
    {{ return(full_builds == 0) }}
{%- endmacro %}

{#- The records to recompute: those of the logged activities, and those that lost one. -#}
{% macro health_events_scope_query() -%}
    select record_type, record_id from {{ activity_changes_table() }} where record_id is not null
    union
    select record_type, record_id
    from {{ ref('int_record_activities') }}
    where activity_id in (select activity_id from {{ activity_changes_table() }} where activity_id is not null)
{%- endmacro %}

{#- The records the model recomputes, or none: all of them (the pre-hooks stored them). -#}
{% macro health_events_scope() -%}
    {%- if not health_events_incremental() %}{{ return(none) }}{% endif -%}
    {{ return('select record_type, record_id from ' ~ scope_table()) }}
{%- endmacro %}

{#- `relation` (an alias with record_type and record_id) is a record in the scope. -#}
{% macro in_record_scope(relation, scope) -%}
    {%- if scope is none %}true{% else -%}
    exists (
        select 1 from ({{ scope }}) as scope
        where scope.record_type = {{ relation }}.record_type and scope.record_id = {{ relation }}.record_id
    )
    {%- endif -%}
{%- endmacro %}

{% macro health_events_config() -%}
    {%- set incremental = "{% if is_incremental() and health_events_incremental() %}" -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ create_activity_changes_table() }}",
            incremental ~ "create or replace table {{ scope_table() }} as {{ health_events_scope_query() }}{% endif %}",
            "{% if is_incremental() %}delete from {{ this }} as events where {{ in_record_scope('events', health_events_scope()) }}{% endif %}",
        ],
        post_hook=[
            "drop table if exists {{ scope_table() }}",
            "delete from {{ activity_changes_table() }}",
        ] + activity_state_hooks('health_events_settings_fingerprint()'),
    ) }}
{%- endmacro %}

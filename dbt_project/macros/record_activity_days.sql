{#- int_record_activity_days is incremental per record and day, over int_health_events' scope. Its
    facts come from the activity tables int_health_events reads its deltas from, each on the day of
    its activity, and depend neither on the as-of date (beyond those tables' rows, which log what
    it changes) nor on settings of their own. So a nightly build recomputes the records
    int_health_events recomputed since this table last read its log (int_health_events_scopes),
    each from the same first day, keeps every other row and empties the log. int_health_events
    runs first, as it must: it reads and empties the activity tables' log. A row of nulls in the
    log (int_health_events rebuilt every record), a missing log, a first build and --full-refresh
    rebuild the table in full. -#}

{% macro record_activity_days_incremental() -%}
    {%- if not (execute and this is not none and is_incremental()) %}{{ return(false) }}{% endif -%}
    {{ return(log_without_full_builds(health_event_scopes_table(), 'record_id is null')) }}
{%- endmacro %}

{% macro record_activity_days_scope() -%}
    {{ return(record_days_scope(record_activity_days_incremental())) }}
{%- endmacro %}

{% macro record_activity_days_config() -%}
    {{ scoped_incremental_config(
        "{% if is_incremental() and record_activity_days_incremental() %}",
        "select record_type, record_id, min(from_day) as from_day from {{ health_event_scopes_table() }}"
            ~ " group by record_type, record_id",
        [
            "{{ create_health_event_scopes_table() }}",
            "{% if is_incremental() %}{{ delete_scoped_days(record_activity_days_scope(), 'activity_day') }}{% endif %}",
        ],
        post_hooks=["delete from {{ health_event_scopes_table() }}"],
        scope_columns={'record_type': 'varchar', 'record_id': 'varchar', 'from_day': 'date'},
    ) }}
{%- endmacro %}

{#- int_health_events is incremental per record and day. A nightly build recomputes the records to
    which an activity changed by the activity tables since its last build belongs, or belonged
    (incremental_activity_changes), from the first day those activities had or have: a delta
    counts from its event's day onwards (an email's window and reply, a person's breadth span and
    the trailing windows all end after they start), so the days before are unchanged. It keeps
    every other delta, and empties the log. Its deltas do not depend on the as-of date (the
    activity tables' rows do, and log what it changes): deltas after D are kept, and its readers
    skip them. It is rebuilt in full when an activity table was (a row of nulls in the log), when
    its own settings change, and as the activity tables are (previous_activity_build).
    Every build logs, for relationship_health_history, the records whose deltas may have changed,
    each with the first day that may have (int_health_events_changes): a nightly build its scope;
    a rebuild in full within the table the records whose deltas differ from those it replaced,
    each with the first day that differs (so that, say, a new CRM user rebuilding the activity
    tables does not recompute the whole history); a new table a row of nulls. It also logs what
    it recomputed (its writes) for int_record_activity_days, which recomputes the same records
    from the same days (int_health_events_scopes). -#}

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
    {{ return(log_without_full_builds(activity_changes_table(), 'activity_id is null and record_id is null')) }}
{%- endmacro %}

{#- Whether the change log `log` exists and holds no row of a full build (`full_build`, a
    condition on its rows): the table reading it can then recompute only what it names. -#}
{% macro log_without_full_builds(log, full_build) -%}
    {%- if adapter.get_relation(log.database, log.schema, log.identifier) is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set full_builds = run_query("select count(*) from " ~ log ~ " where " ~ full_build).rows[0][0] -%}
    {{ return(full_builds == 0) }}
{%- endmacro %}

{#- The records to recompute, each from the first day (`from_day`) of the logged activities it has
    or had: the earlier of the day logged with their old rows and the day they have now. Every
    delta comes from a row of a dated table (int_activities_classified, int_email_responses), so
    an activity with neither day had no deltas and has none. -#}
{% macro health_events_scope_query() -%}
    with logged as (
        select activity_id, min(changed_from) as changed_from
        from {{ activity_changes_table() }}
        where activity_id is not null
        group by activity_id
    ),

    activity_days as (
        select
            logged.activity_id,
            -- least() skips nulls (DuckDB, PostgreSQL and Spark alike).
            least(logged.changed_from, cast(activities.activity_at as date)) as from_day
        from logged
        left join {{ ref('int_activities_classified') }} as activities
            on logged.activity_id = activities.activity_id
    ),

    record_activities as (
        select record_type, record_id, activity_id
        from {{ activity_changes_table() }}
        where record_id is not null
        union
        select record_type, record_id, activity_id
        from {{ ref('int_record_activities') }}
        where activity_id in (select activity_id from logged)
    )

    select record_activities.record_type, record_activities.record_id, min(activity_days.from_day) as from_day
    from record_activities
    inner join activity_days on record_activities.activity_id = activity_days.activity_id
    where activity_days.from_day is not null
    group by record_activities.record_type, record_activities.record_id
{%- endmacro %}

{% macro health_events_scope() -%}
    {{ return(record_days_scope(health_events_incremental())) }}
{%- endmacro %}

{#- For a table recomputed per record and day (int_health_events, int_record_activity_days): the
    records it recomputes, with their from_day, when `incremental` (the pre-hooks stored them);
    else none: all of them. -#}
{% macro record_days_scope(incremental) -%}
    {%- if not incremental %}{{ return(none) }}{% endif -%}
    {{ return('select record_type, record_id, from_day from ' ~ scope_table()) }}
{%- endmacro %}

{#- The log of what int_health_events (`events`, default the model being built) changed since
    relationship_health_history last read it: a record with the first day of its deltas that may
    have changed, or a row of nulls when the table was built anew. -#}
{% macro health_event_changes_table(events=none) -%}
    {%- set events = events or this -%}
    {{ return(api.Relation.create(
        database=events.database, schema=events.schema, identifier=events.identifier ~ '_changes'
    )) }}
{%- endmacro %}

{#- The log of int_health_events' writes (writes_table) since int_record_activity_days last read
    it: a record with the first day it recomputed, or a row of nulls when it recomputed every
    record (record_activity_days.sql). -#}
{% macro health_event_scopes_table() -%}
    {{ return(api.Relation.create(
        database=this.database, schema=this.schema, identifier='int_health_events_scopes'
    )) }}
{%- endmacro %}

{% macro create_health_event_scopes_table() -%}
    create table if not exists {{ health_event_scopes_table() }}
        (record_type varchar, record_id varchar, from_day date)
{%- endmacro %}

{% macro create_health_event_changes_table(events=none) -%}
    create table if not exists {{ health_event_changes_table(events) }}
        (record_type varchar, record_id varchar, changed_from date)
{%- endmacro %}

{#- The log rows of a build in full within the table: the records whose deltas differ from those
    before it (kept aside before the delete), each with the first day that differs. -#}
{% macro health_events_changed() -%}
    {%- set previous = previous_rows_table() -%}
    with changed as (
        (select * from {{ previous }} except all select * from {{ this }})
        union all
        (select * from {{ this }} except all select * from {{ previous }})
    )

    select record_type, record_id, min(event_day)
    from changed
    group by record_type, record_id
{%- endmacro %}

{#- The log rows of this build: its scope (a nightly build), what it changed (a build in full
    within the table), or a row of nulls (a new table). -#}
{% macro health_events_log_rows() -%}
    {%- if not is_incremental() -%}
    values (null, null, null)
    {%- elif health_events_scope() is none -%}
    {{ health_events_changed() }}
    {%- else -%}
    select record_type, record_id, from_day from {{ scope_table() }}
    {%- endif -%}
{%- endmacro %}

{#- Joined to a relation with record_type and record_id: only the records in the scope, each with
    its from_day (a join, not `exists`: DuckDB joins on the record, then filters the days). -#}
{% macro health_scope_join(scope) -%}
    {%- if scope is not none %}inner join ({{ scope }}) as scope using (record_type, record_id){% endif -%}
{%- endmacro %}

{#- Before a build over `scope` (none: everything): this table's rows of the records in it from
    their from_day on (on `day_column`) go. -#}
{% macro delete_scoped_days(scope, day_column) -%}
    delete from {{ this }} as kept
    {%- if scope is not none %} using ({{ scope }}) as scope
    where kept.record_type = scope.record_type and kept.record_id = scope.record_id
        and {{ in_health_scope(scope, 'kept.' ~ day_column) }}
    {%- endif %}
{%- endmacro %}

{#- `day` is on or after the joined record's from_day less `lookback` days. -#}
{% macro in_health_scope(scope, day, lookback=0) -%}
    {%- if scope is none %}true{% else -%}
    {{ day }} >= {{ dbt.dateadd('day', -1 * lookback, 'scope.from_day') }}
    {%- endif -%}
{%- endmacro %}

{#- How far before a day the events reach whose deltas fall on it: the trailing windows and the
    response window (an email's window closes and its reply comes at most that many days later). -#}
{% macro health_events_lookback() -%}
    {{ return([var('health_frequency_days'), var('health_signal_days'), var('response_window_days') + 1] | max) }}
{%- endmacro %}

{% macro health_events_config() -%}
    {{ scoped_incremental_config(
        "{% if is_incremental() and health_events_incremental() %}",
        "{{ health_events_scope_query() }}",
        [
            "{{ create_health_event_changes_table() }}",
            "{% if is_incremental() and health_events_scope() is none %}"
                ~ "create or replace table {{ previous_rows_table() }} as select * from {{ this }}{% endif %}",
            "{{ create_health_event_scopes_table() }}",
            "{% if is_incremental() %}{{ delete_scoped_days(health_events_scope(), 'event_day') }}{% endif %}",
        ],
        post_hooks=[
            "insert into {{ health_event_changes_table() }} {{ health_events_log_rows() }}",
            "insert into {{ health_event_scopes_table() }} select * from {{ writes_table(this) }}",
            "drop table if exists {{ previous_rows_table() }}",
            "delete from {{ activity_changes_table() }}",
        ],
        settings='health_events_settings_fingerprint()',
        scope_columns={'record_type': 'varchar', 'record_id': 'varchar', 'from_day': 'date'},
    ) }}
{%- endmacro %}

{#- The two tables per record and day, int_health_events and int_record_activity_days, built by
    the materialization scoped_incremental (scoped_incremental.sql, docs/incremental.md). A night
    recomputes the records to which an activity the activity tables changed belongs, or belonged
    (their log for it), from the first day those activities had or have: a delta or a daily fact
    counts from its activity's day onwards (an email's window and reply, a person's breadth span
    and the trailing windows all end after they start), so the days before are unchanged. Neither
    depends on the as-of date (the activity tables' rows do, and log what that changes): rows after
    D are kept, and their readers skip them. An activity table rebuilt in full rebuilds them in
    full. int_health_events logs, for relationship_health_history, the records it recomputed, each
    from its first day; rebuilt in full within the table, the records whose deltas differ from
    those it replaced, each from the first day that differs (so that, say, a new CRM user
    rebuilding the activity tables does not recompute the whole history). -#}

{#- The config of a table per record and day, its day in `day_column`; `settings`: the vars its
    rows depend on besides the activity tables' rows; `logs_for_history`: int_health_events. -#}
{% macro record_days_config(day_column, settings=[], logs_for_history=false) -%}
    {{ config(
        materialized='scoped_incremental',
        scope='health_events_scope_query',
        scope_columns={'record_type': 'varchar', 'record_id': 'varchar', 'from_day': 'date'},
        day_column=day_column,
        settings=settings,
        changes_for=['relationship_health_history'] if logs_for_history else [],
        log='scope',
        log_full='rows',
        log_day=day_column,
    ) }}
{%- endmacro %}

{#- The records to recompute since the `previous` build, each from the first day (`from_day`) of
    the activities logged for this table it has or had: the earlier of the day logged with their
    old rows and the day they have now. Every delta and fact comes from a row of a dated table
    (int_activities_classified, int_email_responses), so an activity with neither day had none. -#}
{% macro health_events_scope_query(previous) -%}
    {%- set logged_for_this = 'select * from ' ~ incremental_changes() ~ ' where for_model = ' ~ sql_string(this.identifier) -%}
    with logged as (
        select activity_id, min(changed_from) as changed_from
        from ({{ logged_for_this }}) as log
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
        from ({{ logged_for_this }}) as log
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

{#- Joined to a relation with record_type and record_id: only the records in the scope, each with
    its from_day (a join, not `exists`: DuckDB joins on the record, then filters the days). -#}
{% macro health_scope_join(scope) -%}
    {%- if scope is not none %}inner join ({{ scope }}) as scope using (record_type, record_id){% endif -%}
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

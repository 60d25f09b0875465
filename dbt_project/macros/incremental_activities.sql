{#- The incremental activity tables: int_activity_people_classified, int_activities_classified,
    int_record_activities, int_emails_sided, int_email_replies and int_email_responses, one or more
    rows per activity. A nightly build deletes and recomputes only the activities whose rows may
    have changed since the table's last build, and keeps the others. What changed is found in the
    raw data, never from the partition window: rows loaded since that build (`_loaded_at`), rows a
    reload removed since (ingest.removed_rows), and what the new as-of date brings. Each table
    reaches as far as its rows depend (its `scope`, below). A first build, --full-refresh, other
    settings, any change to the users (they decide who is internal) or an as-of date earlier than
    the last build's rebuild the table in full; so does the loss of its entry in the state table.
    Every build logs the activities whose rows it changed (incremental_activity_changes) for
    int_health_events, which recomputes the records those activities belong to (health_events.sql). -#}

{#- Each table's last build: the newest load it had seen, its as-of date and settings. -#}
{% macro activity_state_table() -%}
    {{ return(api.Relation.create(
        database=this.database, schema=this.schema, identifier='incremental_activity_state'
    )) }}
{%- endmacro %}

{#- Written by the ingest next to the crm tables: the records whose rows a reload removed. None in
    a warehouse whose last load predates it (nothing removed since). -#}
{% macro removed_rows() -%}
    {%- if not execute %}{{ return(none) }}{% endif -%}
    {{ return(adapter.get_relation(database=this.database, schema='ingest', identifier='removed_rows')) }}
{%- endmacro %}

{#- The raw tables the activity tables read, with the column naming each row's record. -#}
{% macro activity_inputs() -%}
    {{ return({
        'activities': 'activity_id', 'activity_parties': 'activity_id', 'users': 'user_id',
        'contacts': 'contact_id', 'opportunities': 'opportunity_id',
    }) }}
{%- endmacro %}

{% macro activity_settings_fingerprint() -%}
    {%- set settings = {'org_domains': org_domains()} -%}
    {%- for name in [
        'email_write_minutes', 'email_read_minutes', 'default_duration_minutes', 'reply_prefixes',
        'response_window_days', 'privacy_rules',
    ] %}{% do settings.update({name: var(name)}) %}{% endfor -%}
    {{ return(local_md5(tojson(settings, sort_keys=true))) }}
{%- endmacro %}

{#- The ids of the `entity` records with a row loaded or removed after `since` (SQL timestamp). -#}
{% macro changed_records(entity, since) -%}
    select {{ activity_inputs()[entity] }} as record_id
    from {{ source('crm', entity) }}
    where _loaded_at > {{ since }}
    {%- if removed_rows() is not none %}
    union
    select record_id from {{ removed_rows() }}
    where entity = '{{ entity }}' and removed_at > {{ since }}
    {%- endif %}
{%- endmacro %}

{#- This table's last build as {'since': SQL timestamp, 'as_of_day': YYYY-MM-DD}, or none when it
    is to be built in full. Unit tests have no relation of their own (`this`): they take the full path. -#}
{% macro previous_activity_build(settings=activity_settings_fingerprint()) -%}
    {%- if not (execute and this is not none and is_incremental()) %}{{ return(none) }}{% endif -%}
    {%- set state = activity_state_table() -%}
    {%- if adapter.get_relation(state.database, state.schema, state.identifier) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set rows = run_query(
        "select cast(loaded_through as varchar), cast(as_of_date as varchar), settings from "
        ~ state ~ " where model = '" ~ this.identifier ~ "'"
    ).rows -%}
    {%- if rows | length != 1 or rows[0][0] is none or rows[0][2] != settings
        or rows[0][1] > as_of_day() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set since = "cast('" ~ rows[0][0] ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- if run_query("select count(*) from (" ~ changed_records('users', since) ~ ") as changed").rows[0][0] -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return({'since': since, 'as_of_day': rows[0][1]}) }}
{%- endmacro %}

{#- A query of the activity ids whose rows of this table are to be recomputed, or none: all of them.
    The table's pre-hooks store its result in the table's scope table, which the model reads.
    `reach` is what the table's rows depend on besides the activity's own rows and parties:
    - 'memberships': the opportunities and contacts that link it to records;
    - 'emails': also the as-of date (emails completed by its end);
    - 'replies': also the emails it may pair with (the same conversation, message ids or subject);
    - 'responses': also the replies those may get, and the response windows the as-of date closes. -#}
{% macro activity_scope_query(reach) -%}
    {%- set previous = previous_activity_build() -%}
    {%- if previous is none %}{{ return(none) }}{% endif -%}
    {%- set since = previous['since'] -%}
    {%- set previous_end = "cast(" ~ dbt.dateadd('day', 1, "cast('" ~ previous['as_of_day'] ~ "' as date)")
        ~ " as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- set contacts = changed_records('contacts', since) -%}
    {%- set scope -%}
    with changed as (
        {{ changed_records('activities', since) }}
        union
        {{ changed_records('activity_parties', since) }}
        union
        -- A CRM export's party known by its address resolves to a contact with that address.
        select parties.activity_id
        from {{ source('crm', 'activity_parties') }} as parties
        inner join {{ source('crm', 'contacts') }} as contacts on lower(parties.address) = lower(contacts.email)
        where contacts.contact_id in ({{ contacts }})
        {%- if reach == 'memberships' %}
        union
        select activity_id
        from {{ source('crm', 'activities') }}
        where
            (regarding_type = 'opportunity' and regarding_id in ({{ changed_records('opportunities', since) }}))
            or (regarding_type = 'contact' and regarding_id in ({{ contacts }}))
        union
        select activity_id
        from {{ ref('int_activity_people_classified') }}
        where party_type = 'contact' and person_id in ({{ contacts }})
        {%- elif reach == 'emails' %}
        union
        -- Emails the new as-of date brings in.
        select activity_id
        from {{ ref('int_activities_classified') }}
        where activity_type = 'email' and activity_at >= {{ previous_end }} and activity_at < {{ as_of_end() }}
        {%- elif reach in ('replies', 'responses') %}
        union
        -- Emails the new as-of date brought in (int_emails_sided is built by now).
        select activity_id
        from {{ ref('int_emails_sided') }}
        where activity_at >= {{ previous_end }} and activity_at < {{ as_of_end() }}
        {%- endif %}
    )
    {%- if reach in ('replies', 'responses') %},

    -- Every version of the changed emails: a reply may have paired with an old one. An email is
    -- a candidate parent only of emails at or after its time (a completed activity happened at
    -- occurred_at, else when it was planned): no version earlier than that changes their pairing.
    changed_keys as (
        select
            conversation_id,
            message_id,
            in_reply_to,
            {{ normalized_subject('subject') }} as subject_key,
            regarding_type,
            regarding_id,
            least(occurred_at, scheduled_start) as earliest_at
        from {{ source('crm', 'activities') }}
        where activity_id in (select record_id from changed)
    ),

    repaired as (
        select record_id as activity_id from changed
        union
        {{ emails_sharing_keys('changed_keys', from_column='earliest_at') }}
    )
    {%- endif %}
    {%- if reach == 'responses' %},

    -- The emails whose replies were paired again, old and new parents included.
    repaired_keys as (
        select conversation_id, message_id, in_reply_to, subject_key, regarding_type, regarding_id
        from {{ ref('int_emails_sided') }}
        where activity_id in (select activity_id from repaired)
    )

    select activity_id from repaired
    union
    {{ emails_sharing_keys('repaired_keys') }}
    union
    -- Emails whose response window the new as-of date closes.
    select activity_id
    from {{ ref('int_emails_sided') }}
    where
        activity_at > {{ dbt.dateadd('day', -1 * var('response_window_days'), previous_end) }}
        and activity_at <= {{ dbt.dateadd('day', -1 * var('response_window_days'), as_of_end()) }}
    {%- elif reach == 'replies' %}

    select activity_id from repaired
    {%- else %}

    select record_id from changed
    {%- endif %}
    {%- endset -%}
    {{ return(scope) }}
{%- endmacro %}

{#- The emails of int_emails_sided sharing a pairing key with a row of `keys`: it may be their
    parent (message id, conversation, subject), or they its. Each key joins as a distinct set:
    many changed emails share a subject, and joining them row by row multiplied the rows. With
    `from_column` (a time of `keys`), only the emails at or after the earliest time of their key. -#}
{% macro emails_sharing_keys(keys, from_column=none) -%}
    {%- set joins = [
        (['conversation_id'], ['conversation_id']),
        (['in_reply_to'], ['message_id']),
        (['message_id'], ['in_reply_to']),
        (['subject_key', 'regarding_type', 'regarding_id'], ['subject_key', 'regarding_type', 'regarding_id']),
    ] -%}
    {%- for email_columns, key_columns in joins %}
    select emails.activity_id
    from {{ ref('int_emails_sided') }} as emails
    inner join (
        select {{ key_columns | join(', ') }}{{ ', min(' ~ from_column ~ ') as from_at' if from_column }}
        from {{ keys }}
        group by {{ key_columns | join(', ') }}
    ) as keys
        on
        {%- for email_column, key_column in zip(email_columns, key_columns) %}
            {{ 'and ' if not loop.first }}emails.{{ email_column }} = keys.{{ key_column }}
        {%- endfor %}
        {%- if from_column %}
            and emails.activity_at >= keys.from_at
        {%- endif %}
    {{- '\n    union' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- `column` belongs to an activity in the scope (true when the scope is everything). -#}
{% macro in_scope(column, scope) -%}
    {%- if scope is none %}true{% else %}{{ column }} in ({{ scope }}){% endif -%}
{%- endmacro %}

{#- Where a nightly build keeps the keys it recomputes, from its pre-hooks to its post-hooks: the
    scope is worked out once, and read by the delete, the change log and the model. -#}
{% macro scope_table() -%}
    {{ return(api.Relation.create(
        database=this.database, schema=this.schema, identifier=this.identifier ~ '__scope'
    )) }}
{%- endmacro %}

{#- The activities the table recomputes (`select activity_id ...`), or none: all of them. For the
    model's SQL: its pre-hooks have filled the scope table by the time it runs. -#}
{% macro activity_scope() -%}
    {%- if previous_activity_build() is none %}{{ return(none) }}{% endif -%}
    {{ return('select activity_id from ' ~ scope_table()) }}
{%- endmacro %}

{#- The log of what the activity tables recomputed since int_health_events last read it: an
    activity's id with the first day of its rows before (`changed_from`, where the table has
    days), a record that lost one of its activities (record_type, record_id), or a row of nulls
    when a table was rebuilt in full. -#}
{% macro activity_changes_table() -%}
    {{ return(api.Relation.create(
        database=this.database, schema=this.schema, identifier='incremental_activity_changes'
    )) }}
{%- endmacro %}

{% macro create_activity_changes_table() -%}
    create table if not exists {{ activity_changes_table() }}
        (model varchar, activity_id varchar, record_type varchar, record_id varchar, changed_from date)
{%- endmacro %}

{#- The config of a table recomputed nightly over a scope (the activity tables, int_health_events):
    before its build, the change log exists and, when `incremental` (a Jinja condition) holds,
    `scope_query` is stored in the scope table; then `pre_hooks`. After it: the scope becomes the
    table's writes (writes_table: the scope, or a row of nulls of `scope_columns`, a dict of
    column types, when it rebuilt everything), then `post_hooks` (the scope table still there),
    then the scope table goes and the table's state (with its `settings`) replaces the previous
    one. All in the build's transaction. -#}
{% macro scoped_incremental_config(incremental, scope_query, pre_hooks, post_hooks=[], settings='activity_settings_fingerprint()', scope_columns={'activity_id': 'varchar'}) -%}
    {%- set every_row = [] -%}
    {%- for column, type in scope_columns.items() %}{% do every_row.append('cast(null as ' ~ type ~ ') as ' ~ column) %}{% endfor -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ create_activity_changes_table() }}",
            incremental ~ "create or replace table {{ scope_table() }} as " ~ scope_query ~ "{% endif %}",
        ] + pre_hooks,
        post_hook=[
            "create or replace table {{ writes_table(this) }} as " ~ incremental ~ "select * from {{ scope_table() }}"
                ~ "{% else %}select " ~ every_row | join(', ') ~ "{% endif %}",
        ] + post_hooks + ["drop table if exists {{ scope_table() }}"] + activity_state_hooks(settings),
    ) }}
{%- endmacro %}

{#- Where a nightly build of an activity table keeps the rows of its scope as they were, from its
    pre-hooks to its post-hooks, to log only the activities whose rows it changed. -#}
{% macro previous_rows_table() -%}
    {{ return(api.Relation.create(
        database=this.database, schema=this.schema, identifier=this.identifier ~ '__previous'
    )) }}
{%- endmacro %}

{#- The first day of the rows `activity_id` had before this build (from `previous`). -#}
{% macro previous_first_day(previous, activity_id) -%}
    (
        select min(cast(previous.activity_at as date)) from {{ previous }} as previous
        where previous.activity_id = {{ activity_id }}
    )
{%- endmacro %}

{#- The log rows of the activities of the scope, each with the first day of its rows before when
    `dated`. For the tables whose scope is the activities with changed rows or parties ('activities'
    reach): each of those changes its rows, bar a file reloaded unchanged. -#}
{% macro scope_activities(dated) -%}
    select '{{ this.identifier }}', scope.activity_id, null, null,
        {{ previous_first_day(this, 'scope.activity_id') if dated else 'cast(null as date)' }}
    from {{ scope_table() }} as scope
{%- endmacro %}

{#- The log rows of what this build changed: the activities of its scope whose rows differ from
    those before it (rows added, removed or changed), with the first day of their rows before when
    `dated`; for int_record_activities (`memberships`), each record-activity pair added or removed
    instead, with its record. The wider reaches recompute far more than they change (emails
    sharing a key with a changed one), and int_health_events recomputes the records of every
    activity logged: logging the scope would make it recompute far more than changed. -#}
{% macro changed_activities(memberships, dated) -%}
    {%- set previous = previous_rows_table() -%}
    with current_rows as (
        select * from {{ this }} where activity_id in (select activity_id from {{ scope_table() }})
    ),

    changed as (
        (select * from {{ previous }} except all select * from current_rows)
        union all
        (select * from current_rows except all select * from {{ previous }})
    )

    {%- if memberships %}
    select distinct '{{ this.identifier }}', activity_id, record_type, record_id, cast(null as date)
    from changed
    {%- else %}
    select '{{ this.identifier }}', changed.activity_id, null, null,
        {{ previous_first_day(previous, 'changed.activity_id') if dated else 'cast(null as date)' }}
    from (select distinct activity_id from changed) as changed
    {%- endif %}
{%- endmacro %}

{#- The config of an incremental activity table. Before its build: its scope is stored and the rows
    of the activities in it go (all rows, for a full build within the same table, logged as a row
    of nulls). What it logs: for the 'activities' reach its scope, before the delete; for the
    wider ones the activities whose rows changed, compared after the build with the rows kept
    aside before the delete (changed_activities). -#}
{% macro incremental_activity_config(reach, dated=true) -%}
    {%- set model = "'{{ this.identifier }}'" -%}
    {%- set incremental = "{% if is_incremental() and previous_activity_build() is not none %}" -%}
    {%- set logs_scope = reach == 'activities' -%}
    {%- set full_build = "{% else %}insert into {{ activity_changes_table() }} values (" ~ model ~ ", null, null, null, null){% endif %}" -%}
    {%- if logs_scope -%}
        {%- set before = "insert into {{ activity_changes_table() }} {{ scope_activities(" ~ dated ~ ") }}" -%}
        {%- set after = [] -%}
    {%- else -%}
        {%- set before = "create or replace table {{ previous_rows_table() }} as select * from {{ this }}"
            ~ " where activity_id in (select activity_id from {{ scope_table() }})" -%}
        {%- set after = [
            incremental ~ "insert into {{ activity_changes_table() }} {{ changed_activities("
                ~ (reach == 'memberships') ~ ", " ~ dated ~ ") }}{% endif %}",
            "drop table if exists {{ previous_rows_table() }}",
        ] -%}
    {%- endif -%}
    {{ scoped_incremental_config(
        incremental,
        "select * from ({{ activity_scope_query('" ~ reach ~ "') }}) as scope (activity_id)",
        [
            incremental ~ before ~ full_build,
            "{% if is_incremental() %}delete from {{ this }} where {{ in_scope('activity_id', activity_scope()) }}{% endif %}",
        ],
        post_hooks=after,
    ) }}
{%- endmacro %}

{#- After a build: its state replaces the table's previous one. `settings`: a Jinja expression. -#}
{% macro activity_state_hooks(settings='activity_settings_fingerprint()') -%}
    {{ return([
        "create table if not exists {{ activity_state_table() }} (model varchar, loaded_through timestamp, as_of_date date, settings varchar)",
        "delete from {{ activity_state_table() }} where model = '{{ this.identifier }}'",
        "insert into {{ activity_state_table() }} {{ activity_build_state(" ~ settings ~ ") }}",
    ]) }}
{%- endmacro %}

{% macro activity_build_state(settings=activity_settings_fingerprint()) -%}
    select
        '{{ this.identifier }}',
        (
            select max(loaded_at) from (
                {%- for entity in activity_inputs() %}
                {{- ' union all' if not loop.first }}
                select max(_loaded_at) as loaded_at from {{ source('crm', entity) }}
                {%- endfor %}
                {%- if removed_rows() is not none %}
                union all
                select max(removed_at) from {{ removed_rows() }}
                {%- endif %}
            ) as loads
        ),
        {{ as_of_date() }},
        '{{ settings }}'
{%- endmacro %}

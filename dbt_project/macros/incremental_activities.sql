{#- The incremental activity tables: int_activity_people_classified, int_activities_classified,
    int_record_activities, int_emails_sided, int_email_replies and int_email_responses, one or more
    rows per activity, built by the materialization scoped_incremental (scoped_incremental.sql,
    docs/incremental.md). A night recomputes the activities whose rows may have changed since the
    table's last build. What changed is found in the raw data, never from the partition window:
    rows loaded since that build (`_loaded_at`), rows a reload removed since (ingest.removed_rows),
    and what the new as-of date brings. Each table reaches as far as its rows depend (its `reach`,
    below). Any change to the users (they decide who is internal) rebuilds every row. Each logs the
    activities whose rows changed for the two tables per record and day (health_events.sql). -#}

{#- The config of an activity table: its scope reaches as far as `reach`; `dated`: its rows have
    an activity time (activity_at), whose first day is logged with each change. -#}
{% macro activity_table_config(reach, dated=true) -%}
    {{ config(
        materialized='scoped_incremental',
        scope='activity_scope_query',
        reach=reach,
        scope_columns={'activity_id': 'varchar'},
        log_keys=['activity_id', 'record_type', 'record_id'] if reach == 'memberships' else none,
        log_day='cast(activity_at as date)' if dated else none,
        settings=[
            'org_domains', 'email_write_minutes', 'email_read_minutes', 'default_duration_minutes',
            'reply_prefixes', 'response_window_days', 'privacy_rules',
        ],
        changes_for=['int_health_events', 'int_record_activity_days'],
        log='rows',
    ) }}
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

{#- The scope of an activity table since its `previous` build: a query of the activity ids whose
    rows are to be recomputed, or none (every row) when a user changed. `reach` (config) is what the table's rows depend on besides the activity's own rows and parties:
    - 'memberships': the opportunities and contacts that link it to records;
    - 'emails': also the as-of date (emails completed by its end);
    - 'replies': also the emails it may pair with (the same conversation, message ids or subject);
    - 'responses': also the replies those may get, and the response windows the as-of date closes. -#}
{% macro activity_scope_query(previous) -%}
    {%- set reach = config.require('reach') -%}
    {%- set since = previous['since'] -%}
    {%- if run_query("select count(*) from (" ~ changed_records('users', since) ~ ") as changed").rows[0][0] -%}
        {{ return(none) }}
    {%- endif -%}
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
    {{ return('select * from (' ~ scope ~ ') as scope (activity_id)') }}
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

{#- `column` belongs to an activity in the scope (true when the scope is everything); `scope`: a query of activity ids. -#}
{% macro in_scope(column, scope) -%}
    {%- if scope is none %}true{% else %}{{ column }} in ({{ scope }}){% endif -%}
{%- endmacro %}

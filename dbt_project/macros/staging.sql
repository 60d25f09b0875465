{#- The staging models of the activities and their parties, as macros: a nightly activity table
    (incremental_activities.sql) reads only the activities in its scope, and a staging view
    filtered from outside ranks the versions of every activity first (most of a night's
    int_activities_classified and int_activity_people_classified). `scope` is a query of
    activity ids; none: every activity. Both filter on the key the versions are ranked by, so a
    scoped read has the rows the view has for those activities. -#}

{#- Rows of stg_crm__activities. -#}
{% macro staged_activities(scope=none) -%}
with current_activities as (
    {{ current_versions(source('crm', 'activities'), 'activity_id', scope) }}
)

{#- Activities an exclusion rule matches reach nothing (docs/privacy.md). #}
select
    activity_id,
    activity_type,
    subject,
    direction,
    status as activity_status,
    owner_id,
    regarding_type,
    regarding_id,
    occurred_at,
    scheduled_start,
    scheduled_end,
    duration_minutes,
    conversation_id,
    message_id,
    in_reply_to,
    created_at,
    modified_at
from current_activities
where not {{ excluded_activity('current_activities.activity_id') }}
{%- endmacro %}

{#- Rows of stg_crm__activity_parties. -#}
{% macro staged_activity_parties(scope=none) -%}
with parties as (
    select
        *,
        _source_file like 'dataverse/%' or _source_file like 'salesforce/%' as from_export,
        case
            when _source_file like 'dataverse/%' or _source_file like 'salesforce/%'
                then {{ regexp_replace_all('_source_file', "'/[^/]*$'", "''") }}
            else _source_file
        end as party_set
    from {{ source('crm', 'activity_parties') }} as raw_parties
    where {{ in_scope('activity_id', scope) }}
        and not {{ excluded_activity('raw_parties.activity_id') }}
),

latest as (
    select
        *,
        max(party_set) over (partition by activity_id) as latest_party_set
    from parties
)

select
    activity_id,
    role,
    party_type,
    party_id,
    lower(address) as address,
    from_export
from latest
where party_set = latest_party_set
{%- endmacro %}

{#- SQL: the activity (an id in SQL) is matched by an exclusion rule. -#}
{% macro excluded_activity(activity_id) -%}
    exists (select 1 from {{ source('privacy', 'excluded_activities') }} as excluded
            where excluded.activity_id = {{ activity_id }})
{%- endmacro %}

{#- SQL: the person (a record type as text, an id in SQL) is matched by an exclusion rule. -#}
{% macro excluded_person(record_type, record_id) -%}
    exists (select 1 from {{ source('privacy', 'excluded_people') }} as excluded
            where excluded.record_type = '{{ record_type }}' and excluded.record_id = {{ record_id }})
{%- endmacro %}

{#- A relation of the staging model `model` (staged_activities or staged_activity_parties) for the
    activities in `scope`: the model itself when the scope is everything. -#}
{% macro staged_in_scope(model, scope) -%}
    {%- if scope is none -%}{{ ref(model) }}
    {%- elif model == 'stg_crm__activities' -%}({{ staged_activities(scope) }})
    {%- elif model == 'stg_crm__activity_parties' -%}({{ staged_activity_parties(scope) }})
    {%- else -%}{{ exceptions.raise_compiler_error("staged_in_scope: no scoped macro for " ~ model) }}
    {%- endif -%}
{%- endmacro %}

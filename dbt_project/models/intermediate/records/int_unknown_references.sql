-- The records that current activities refer to (regarding them, or a contact or lead taking part)
-- but that no file has ever held, not even as deleted: one row per record, with its activities.
-- Such a record may arrive in a later file. Until then it is no record: its activities count for
-- the known records they belong to, never for it (the marts keep only current records), and the
-- warning test on this model reports it.
with referenced as (
    select regarding_type as record_type, regarding_id as record_id, activity_id
    from {{ ref('stg_crm__activities') }}
    where regarding_type in ('opportunity', 'lead', 'account', 'contact') and regarding_id is not null

    union all

    select party_type as record_type, person_id as record_id, activity_id
    from {{ ref('int_activity_people_classified') }}
    where party_type in ('contact', 'lead')
),

-- Every record any file held, deleted ones too.
seen as (
    {%- for record_type, entity in [
        ('opportunity', 'opportunities'), ('lead', 'leads'), ('account', 'accounts'), ('contact', 'contacts'),
    ] %}
    select distinct {{ sql_string(record_type) }} as record_type, {{ record_type }}_id as record_id
    from {{ source('crm', entity) }}
    {{- '\n    union all' if not loop.last }}
    {%- endfor %}
),

-- Each activity once per record, though it may regard the record and have it take part too.
unknown as (
    select distinct record_type, record_id, activity_id
    from referenced
    where not exists (
        select 1 from seen
        where seen.record_type = referenced.record_type and seen.record_id = referenced.record_id
    )
)

select
    record_type,
    record_id,
    cast(count(*) as {{ dbt.type_bigint() }}) as activities,
    {{ dbt.listagg('activity_id', "', '", 'order by activity_id', 3) }} as example_activity_ids
from unknown
group by record_type, record_id

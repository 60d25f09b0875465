-- Incremental (docs/incremental.md): a night recomputes only the activities whose rows may have
-- changed (incremental_activities.sql); a table, as every mart and several tests read it.
{{ activity_table_config('memberships', dated=false) }}
{%- set scope = incremental_scope() %}

-- Which activities belong to which record (each pair once):
-- an opportunity or a lead: the activities regarding it;
-- a contact: those regarding it, and those in which the contact takes part;
-- an account: those regarding it, one of its opportunities or one of its contacts, and those in
-- which one of its contacts takes part.
with activities as (
    select activity_id, regarding_type, regarding_id
    from {{ ref('stg_crm__activities') }}
    where {{ in_scope('activity_id', scope) }}
),

contact_people as (
    select distinct activity_id, person_id as contact_id
    from {{ ref('int_activity_people_classified') }}
    where party_type = 'contact' and {{ in_scope('activity_id', scope) }}
),

contacts as (
    select contact_id, account_id from {{ ref('stg_crm__contacts') }}
),

opportunities as (
    select opportunity_id, account_id from {{ ref('stg_crm__opportunities') }}
),

memberships as (
    select regarding_type as record_type, regarding_id as record_id, activity_id
    from activities
    where regarding_type in ('opportunity', 'lead', 'contact', 'account')

    union all

    select 'contact' as record_type, contact_id as record_id, activity_id
    from contact_people

    union all

    select 'account' as record_type, opportunities.account_id as record_id, activities.activity_id
    from activities
    inner join opportunities
        on
            activities.regarding_type = 'opportunity'
            and activities.regarding_id = opportunities.opportunity_id

    union all

    select 'account' as record_type, contacts.account_id as record_id, activities.activity_id
    from activities
    inner join contacts
        on activities.regarding_type = 'contact' and activities.regarding_id = contacts.contact_id

    union all

    select 'account' as record_type, contacts.account_id as record_id, contact_people.activity_id
    from contact_people
    inner join contacts on contact_people.contact_id = contacts.contact_id
)

select distinct record_type, record_id, activity_id
from memberships
where record_id is not null

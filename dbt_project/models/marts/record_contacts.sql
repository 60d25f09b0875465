-- The customer's contacts who interacted most with each record, including engaged contacts not
-- linked to it (is_linked_to_record says which are).
with ranked as (
    {{ record_people('contact', 'external') }}
),

records as (
    select * from {{ ref('int_records_unioned') }}
),

contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

opportunities as (
    select opportunity_id, account_id, primary_contact_id from {{ ref('stg_crm__opportunities') }}
)

select
    ranked.record_type,
    ranked.record_id,
    ranked.person_id as contact_id,
    contacts.full_name as contact_name,
    contacts.account_id,
    ranked.interactions,
    ranked.last_contacted_at,
    ranked.rank,
    -- Linked: the contact itself, a contact of the account, or of the opportunity's account.
    coalesce(
        (ranked.record_type = 'contact' and ranked.person_id = ranked.record_id)
        or (ranked.record_type = 'account' and contacts.account_id = ranked.record_id)
        or (ranked.record_type = 'opportunity' and contacts.account_id = opportunities.account_id),
        false
    ) as is_linked_to_record
from ranked
inner join records
    on ranked.record_type = records.record_type and ranked.record_id = records.record_id
-- Current contacts only: a deleted one, or one no file holds (int_unknown_references), is no one's.
inner join contacts on ranked.person_id = contacts.contact_id
left join opportunities
    on ranked.record_type = 'opportunity' and ranked.record_id = opportunities.opportunity_id

-- Every existing record (not deleted), open or closed: opportunities, leads, accounts, contacts.
-- A contact has no owner of its own in the canonical tables; its account's owner stands in.
with accounts as (
    select * from {{ ref('stg_crm__accounts') }}
)

select
    'opportunity' as record_type,
    opportunities.opportunity_id as record_id,
    opportunities.opportunity_name as record_name,
    accounts.account_name as company_name,
    opportunities.owner_id
from {{ ref('stg_crm__opportunities') }} as opportunities
left join accounts on opportunities.account_id = accounts.account_id

union all

select
    'lead' as record_type,
    lead_id as record_id,
    full_name as record_name,
    company_name,
    owner_id
from {{ ref('stg_crm__leads') }}

union all

select
    'account' as record_type,
    account_id as record_id,
    account_name as record_name,
    account_name as company_name,
    owner_id
from accounts

union all

select
    'contact' as record_type,
    contacts.contact_id as record_id,
    contacts.full_name as record_name,
    accounts.account_name as company_name,
    accounts.owner_id
from {{ ref('stg_crm__contacts') }} as contacts
left join accounts on contacts.account_id = accounts.account_id

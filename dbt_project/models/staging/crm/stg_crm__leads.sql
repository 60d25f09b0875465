with current_leads as (
    {{ current_versions(source('crm', 'leads'), 'lead_id') }}
)

select
    lead_id,
    full_name,
    company_name,
    lower(email) as email,
    status as lead_status,
    owner_id,
    created_at,
    modified_at
from current_leads
where not {{ excluded_person('lead', 'current_leads.lead_id') }}

with current_opportunities as (
    {{ current_versions(source('crm', 'opportunities'), 'opportunity_id') }}
)

select
    opportunity_id,
    name as opportunity_name,
    account_id,
    primary_contact_id,
    owner_id,
    product,
    stage,
    status as opportunity_status,
    estimated_value,
    actual_value,
    estimated_close_date,
    actual_close_date,
    created_at,
    record_url,
    modified_at
from current_opportunities

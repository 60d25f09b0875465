with current_accounts as (
    {{ current_versions(source('crm', 'accounts'), 'account_id') }}
)

select
    account_id,
    name as account_name,
    industry,
    annual_revenue,
    employees,
    country,
    parent_account_id,
    owner_id,
    modified_at
from current_accounts

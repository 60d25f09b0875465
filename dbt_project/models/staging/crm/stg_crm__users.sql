with current_users as (
    {{ current_versions(source('crm', 'users'), 'user_id') }}
)

select
    user_id,
    full_name,
    lower(email) as email,
    team,
    manager_id,
    coalesce(is_active, true) as is_active,
    modified_at
from current_users
where not {{ excluded_person('user', 'current_users.user_id') }}

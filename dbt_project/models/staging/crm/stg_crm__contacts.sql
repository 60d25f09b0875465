with current_contacts as (
    {{ current_versions(source('crm', 'contacts'), 'contact_id') }}
)

select
    contact_id,
    account_id,
    full_name,
    lower(email) as email,
    job_title,
    modified_at
from current_contacts
where not {{ excluded_person('contact', 'current_contacts.contact_id') }}

with current_activities as (
    {{ current_versions(source('crm', 'activities'), 'activity_id') }}
)

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

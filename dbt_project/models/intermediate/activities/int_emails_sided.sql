-- Incremental (docs/incremental.md): a night recomputes only the activities whose rows may have
-- changed (incremental_activities.sql); a table, as every mart and several tests read it.
{{ activity_table_config('emails') }}
{%- set scope = incremental_scope() %}

-- The emails that reply figures are about: counted (both sides take part), completed by the end
-- of the as-of date D, with a direction. One row per email, with its side and pairing keys.
select
    activity_id,
    activity_at,
    case direction when 'outgoing' then 'team' else 'customer' end as side,
    message_id,
    in_reply_to,
    conversation_id,
    regarding_type,
    regarding_id,
    {{ normalized_subject('subject') }} as subject_key
from {{ ref('int_activities_classified') }}
where
    activity_type = 'email'
    and is_counted
    and direction in ('outgoing', 'incoming')
    and activity_at < {{ as_of_end() }}
    and {{ in_scope('activity_id', scope) }}

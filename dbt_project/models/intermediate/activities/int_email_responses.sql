-- Incremental (docs/incremental.md): a night recomputes only the activities whose rows may have
-- changed (incremental_activities.sql); a table, as the reply models and their tests read it several times.
{{ activity_table_config('responses') }}
{%- set scope = incremental_scope() %}

-- One row per email of int_emails_sided, with the response it got: the first reply from the
-- other side, counted only when it came within the response window (inclusive). Reply figures
-- belong to the email being answered (its records, its period).
with emails as (
    select * from {{ ref('int_emails_sided') }}
    where {{ in_scope('activity_id', scope) }}
),

first_replies as (
    select
        parent_id,
        activity_id,
        activity_at,
        row_number() over (partition by parent_id order by activity_at, activity_id) as reply_order
    from {{ ref('int_email_replies') }}
    where parent_id in (select activity_id from emails)
),

answered as (
    select
        emails.activity_id,
        emails.side,
        emails.activity_at,
        first_replies.activity_id as first_reply_id,
        first_replies.activity_at as first_reply_at,
        {{ dbt.dateadd('day', var('response_window_days'), 'emails.activity_at') }} as window_end
    from emails
    left join first_replies
        on emails.activity_id = first_replies.parent_id and first_replies.reply_order = 1
)

select
    activity_id,
    side,
    activity_at,
    window_end,
    window_end <= {{ as_of_end() }} as is_window_closed,
    case when first_reply_at <= window_end then first_reply_id end as response_id,
    case when first_reply_at <= window_end then first_reply_at end as response_at,
    case
        when first_reply_at <= window_end
            then {{ dbt.datediff('activity_at', 'first_reply_at', 'second') }} / cast(3600 as {{ type_double() }})
    end as response_hours
from answered

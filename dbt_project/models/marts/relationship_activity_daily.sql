-- Daily counts of completed activities by kind for each record, over the activity_daily_days
-- days ending with the as-of date D (UTC days). Only days with activity have rows; only current
-- records (deleted ones and ones no file holds have none).
with kinds as (
    select
        memberships.record_type,
        memberships.record_id,
        cast(activities.activity_at as date) as activity_date,
        case
            when activities.activity_type = 'email' and activities.direction = 'outgoing' then 'sent_email'
            when activities.activity_type = 'email' and activities.direction = 'incoming' then 'received_email'
            when activities.activity_type = 'appointment' and activities.organizer_side = 'internal'
                then 'sent_meeting_invite'
            when activities.activity_type = 'appointment' and activities.organizer_side = 'external'
                then 'received_meeting_invite'
            when activities.activity_type = 'phone_call' and activities.direction = 'outgoing' then 'outgoing_call'
            when activities.activity_type = 'phone_call' and activities.direction = 'incoming' then 'incoming_call'
            when activities.activity_type = 'task' then 'task'
        end as activity_kind
    from {{ ref('int_record_activities') }} as memberships
    inner join {{ ref('int_records_unioned') }} as records
        on memberships.record_type = records.record_type and memberships.record_id = records.record_id
    inner join {{ ref('int_activities_classified') }} as activities
        on memberships.activity_id = activities.activity_id
    where
        activities.is_counted
        and activities.activity_at < {{ as_of_end() }}
        and activities.activity_at >= cast(
            {{ dbt.dateadd('day', 1 - var('activity_daily_days'), as_of_date()) }}
            as {{ dbt.type_timestamp() }}
        )
)

select
    record_type,
    record_id,
    activity_date,
    activity_kind,
    cast(count(*) as {{ dbt.type_bigint() }}) as activity_count
from kinds
where activity_kind is not null
group by record_type, record_id, activity_date, activity_kind

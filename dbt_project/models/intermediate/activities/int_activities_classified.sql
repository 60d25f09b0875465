-- Incremental (docs/incremental.md): a night recomputes only the activities whose rows may have
-- changed (incremental_activities.sql); a table, as every mart and several tests read it.
{{ activity_table_config('activities') }}
{%- set scope = incremental_scope() %}

-- One row per current activity, with what every KPI needs to know about it: when it happened or
-- is scheduled, which sides took part, who initiated it, and whether it counts at all.
-- depends_on: {{ ref('stg_crm__activities') }}
with activities as (
    select * from {{ staged_in_scope('stg_crm__activities', scope) }} as staged
),

people as (
    select
        activity_id,
        sum(case when side = 'internal' then 1 else 0 end) as internal_people,
        sum(case when side = 'external' then 1 else 0 end) as external_people,
        sum(case when side = 'internal' and not is_sender then 1 else 0 end) as internal_recipients,
        sum(case when side = 'external' and not is_sender then 1 else 0 end) as external_recipients,
        max(case when is_sender then side end) as sender_side,
        -- Several organizers are rare; an internal one makes it our invite.
        case max(case when is_organizer then case when side = 'internal' then 1 else 0 end end)
            when 1 then 'internal'
            when 0 then 'external'
        end as organizer_side
    from {{ ref('int_activity_people_classified') }}
    where {{ in_scope('activity_id', scope) }}
    group by activity_id
),

classified as (
    select
        activities.activity_id,
        activities.activity_type,
        activities.activity_status,
        activities.owner_id,
        activities.regarding_type,
        activities.regarding_id,
        activities.subject,
        activities.conversation_id,
        activities.message_id,
        activities.in_reply_to,
        activities.duration_minutes,
        activities.scheduled_start,
        activities.scheduled_end,
        -- A completed activity without an actual time happened when it was planned.
        case
            when activities.activity_status = 'completed'
                then coalesce(activities.occurred_at, activities.scheduled_start)
        end as activity_at,
        case
            when activities.activity_status = 'open'
                then coalesce(activities.scheduled_start, activities.scheduled_end)
        end as scheduled_at,
        cast(coalesce(people.internal_people, 0) as {{ dbt.type_bigint() }}) as internal_people,
        cast(coalesce(people.external_people, 0) as {{ dbt.type_bigint() }}) as external_people,
        coalesce(people.internal_recipients, 0) as internal_recipients,
        coalesce(people.external_recipients, 0) as external_recipients,
        people.sender_side,
        -- Meetings, calls and tasks last their actual duration, else their scheduled one, else the
        -- configured default of their type. Emails cost writing and reading time instead.
        case
            when activities.activity_type = 'email' then null
            when activities.duration_minutes >= 0 then activities.duration_minutes
            when activities.scheduled_end > activities.scheduled_start
                then {{ dbt.datediff('activities.scheduled_start', 'activities.scheduled_end', 'second') }} / cast(60 as {{ type_double() }})
            {%- for activity_type, minutes in var('default_duration_minutes').items() %}
            when activities.activity_type = {{ sql_string(activity_type) }} then {{ minutes }}
            {%- endfor %}
        end as effective_duration_minutes,
        -- Emails and calls without a direction take it from their sender's side.
        case
            when activities.activity_type in ('email', 'phone_call')
                then coalesce(
                    activities.direction,
                    case people.sender_side
                        when 'internal' then 'outgoing'
                        when 'external' then 'incoming'
                    end
                )
        end as direction,
        -- A meeting that lists no organizer was organised by its owner, a user.
        case
            when activities.activity_type = 'appointment'
                then coalesce(
                    people.organizer_side,
                    case when activities.owner_id is not null then 'internal' end
                )
        end as organizer_side
    from activities
    left join people on activities.activity_id = people.activity_id
)

select
    *,
    -- Time invested in person-minutes: every person who took part, on each side.
    {%- for owner, side in [('team', 'internal'), ('customer', 'external')] %}
    cast(
        case
            when activity_type = 'email'
                then
                    case when sender_side = '{{ side }}' then {{ var('email_write_minutes') }} else 0 end
                    + {{ side }}_recipients * {{ var('email_read_minutes') }}
            else coalesce(effective_duration_minutes, 0) * {{ side }}_people
        end as {{ type_double() }}
    ) as {{ owner }}_minutes,
    {%- endfor %}
    -- Emails, calls and meetings are conversations only when both sides take part.
    activity_type <> 'task' and internal_people > 0 and external_people > 0 as is_conversation,
    -- Tasks are our own work and count too; canceled activities count nowhere.
    activity_status <> 'canceled'
    and (activity_type = 'task' or (internal_people > 0 and external_people > 0)) as is_counted,
    case
        when activity_type = 'task' or internal_people = 0 or external_people = 0 then null
        when direction = 'outgoing' or organizer_side = 'internal' then 'team'
        when direction = 'incoming' or organizer_side = 'external' then 'customer'
    end as initiated_by
from classified

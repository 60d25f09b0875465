{#- The deal warnings' codes (deal_warning_severities gives each its severity). -#}
{% macro deal_warning_codes() -%}
    {{ return(['going_dark', 'unanswered', 'single_threaded', 'no_recent_meeting', 'close_date_pushed',
        'past_close_date', 'health_declining', 'slow_team_replies']) }}
{%- endmacro %}

{#- The warnings holding at the end of each deal's day: the one definition of every warning, for
    deal_warnings (open deals on D) and int_closed_deal_warnings (closed deals some days before
    their close). `deals` names a relation with one row per opportunity: opportunity_id,
    warning_day, the record as of that day (estimated_close_date, created_day) and its health
    history row of that day (days_since_two_way, customer_people, health_trend, health_score,
    earlier_health_score; null when there is none). What counts is what happened by the end of
    warning_day: activities, replies and responses by their time, close date pushes by the
    version's modified_at, the health history up to that day. A subquery with one row per deal and
    warning: opportunity_id, warning, since (the first day of its current run, null when the
    history has no break), reason, figure, figure_unit, threshold. -#}
{% macro deal_warnings_as_of(deals) -%}
{%- set unanswered = var('deal_warning_unanswered') %}
{%- set slow = var('deal_warning_slow_replies') %}
{%- set meeting_days = var('deal_warning_meeting_days') %}
{%- set slow_hours = slow['target_factor'] * var('health_team_response_target_hours') %}
(
with days as (
    select
        *,
        cast({{ dbt.dateadd('day', 1, 'warning_day') }} as {{ dbt.type_timestamp() }}) as day_end
    from {{ deals }}
),

-- For the warnings read from the health history: the last day up to the deal's day each did not
-- hold (the day before its current run of days began).
history_breaks as (
    select
        days.opportunity_id,
        max(case when not coalesce(history.days_since_two_way >= {{ var('deal_warning_going_dark_days') }}, false)
            then history.as_of_date end) as going_dark_broken,
        max(case when coalesce(history.customer_people, 0) <> {{ var('deal_warning_single_threaded_people') }}
            then history.as_of_date end) as single_threaded_broken,
        max(case when history.health_trend <> 'Declining' then history.as_of_date end) as health_declining_broken
    from days
    inner join {{ ref('relationship_health_history') }} as history
        on history.record_type = 'opportunity'
        and history.record_id = days.opportunity_id
        and history.as_of_date <= days.warning_day
    group by days.opportunity_id
),

-- Our emails on the deal sent by the end of its day, newest first, and whether the customer had
-- replied to each by then (a reply without a time counts whenever it came).
team_emails as (
    select
        days.opportunity_id,
        emails.activity_id,
        emails.activity_at,
        exists (
            select 1 from {{ ref('int_email_replies') }} as replies
            where replies.parent_id = emails.activity_id
                and coalesce(replies.activity_at < days.day_end, true)
        ) as is_answered,
        row_number() over (
            partition by days.opportunity_id
            order by emails.activity_at desc, emails.activity_id desc
        ) as newest
    from days
    inner join {{ ref('int_record_activities') }} as memberships
        on memberships.record_type = 'opportunity' and memberships.record_id = days.opportunity_id
    inner join {{ ref('int_emails_sided') }} as emails
        on memberships.activity_id = emails.activity_id
    where emails.side = 'team' and emails.activity_at < days.day_end
),

unanswered as (
    select
        opportunity_id,
        max(case when newest = 1 then activity_at end) as latest_sent_at
    from team_emails
    where newest <= {{ unanswered['emails'] }}
    group by opportunity_id
    having
        count(*) = {{ unanswered['emails'] }}
        and max(case when is_answered then 1 else 0 end) = 0
),

-- The day from whose end the latest email is `days` days old (a moment exactly at midnight is
-- reached by the end of the day before).
unanswered_aged as (
    select
        opportunity_id,
        latest_sent_at,
        case
            when aged_at = cast(cast(aged_at as date) as {{ dbt.type_timestamp() }})
                then cast({{ dbt.dateadd('day', -1, 'cast(aged_at as date)') }} as date)
            else cast(aged_at as date)
        end as aged_day
    from (
        select *, {{ dbt.dateadd('day', unanswered['days'], 'latest_sent_at') }} as aged_at
        from unanswered
    ) as dated
),

meetings as (
    select
        days.opportunity_id,
        max(cast(activities.activity_at as date)) as last_meeting_day
    from days
    inner join {{ ref('int_record_activities') }} as memberships
        on memberships.record_type = 'opportunity' and memberships.record_id = days.opportunity_id
    inner join {{ ref('int_activities_classified') }} as activities
        on memberships.activity_id = activities.activity_id
    where
        activities.activity_type = 'appointment'
        and activities.is_conversation
        and activities.activity_status = 'completed'
        and activities.activity_at < days.day_end
    group by days.opportunity_id
),

-- The pushes of the close date made by the end of the deal's day, in order.
pushes as (
    select
        pushes.opportunity_id,
        pushes.pushed_at,
        pushes.previous_close_date,
        row_number() over (
            partition by pushes.opportunity_id
            order by pushes.pushed_at, pushes.previous_close_date, pushes.estimated_close_date
        ) as push_order
    from days
    inner join {{ ref('int_opportunity_close_date_pushes') }} as pushes
        on days.opportunity_id = pushes.opportunity_id
    where pushes.pushed_at < days.day_end
),

pushed as (
    select
        opportunity_id,
        cast(count(*) as {{ dbt.type_bigint() }}) as pushes,
        max(case when push_order = {{ var('deal_warning_close_date_pushes') }} then cast(pushed_at as date) end)
            as pushed_day,
        -- The close date before the first push.
        max(case when push_order = 1 then previous_close_date end) as first_close_date
    from pushes
    group by opportunity_id
),

-- Our responses to the customer's emails sent in the last `days` days, from the day each was
-- known (the response's day) to the day its email leaves the window: the mean is a running sum of
-- these deltas, so the day its current run of days began is known too.
slow_responses as (
    select
        days.opportunity_id,
        days.warning_day,
        cast(responses.response_at as date) as known_day,
        cast({{ dbt.dateadd('day', slow['days'], 'cast(responses.activity_at as date)') }} as date) as left_day,
        responses.response_hours
    from days
    inner join {{ ref('int_record_activities') }} as memberships
        on memberships.record_type = 'opportunity' and memberships.record_id = days.opportunity_id
    inner join {{ ref('int_email_responses') }} as responses
        on memberships.activity_id = responses.activity_id
    where
        responses.side = 'customer'
        and responses.response_hours is not null
),

slow_deltas as (
    select opportunity_id, event_day, sum(responses) as responses, sum(hours) as hours
    from (
        select opportunity_id, warning_day, known_day as event_day, 1 as responses, response_hours as hours
        from slow_responses
        where known_day < left_day
        union all
        select opportunity_id, warning_day, left_day as event_day, -1 as responses, -response_hours as hours
        from slow_responses
        where known_day < left_day
    ) as events
    where event_day <= warning_day
    group by opportunity_id, event_day
),

slow_days as (
    select
        opportunity_id,
        event_day,
        sum(responses) over running as responses,
        sum(hours) over running as hours
    from slow_deltas
    window running as (partition by opportunity_id order by event_day rows unbounded preceding)
),

slow_runs as (
    select
        opportunity_id,
        event_day,
        responses,
        hours / nullif(responses, 0) as mean_hours,
        coalesce(hours / nullif(responses, 0) > {{ slow_hours }}, false) as is_slow,
        lead(event_day) over (partition by opportunity_id order by event_day) as next_event_day
    from slow_days
),

slow_replies as (
    select
        opportunity_id,
        max(case when is_slow and next_event_day is null then mean_hours end) as mean_hours,
        max(case when is_slow and next_event_day is null then responses end) as responses,
        -- The run began the day after the last change that left the mean within the target.
        coalesce(
            max(case when not is_slow then next_event_day end),
            min(event_day)
        ) as since
    from slow_runs
    group by opportunity_id
    having max(case when is_slow and next_event_day is null then 1 else 0 end) = 1
)

select
    days.opportunity_id,
    'going_dark' as warning,
    cast({{ dbt.dateadd('day', 1, 'history_breaks.going_dark_broken') }} as date)
        as since,
    'no two-way activity with the customer in ' || {{ count_of('days.days_since_two_way', 'day') }}
        as reason,
    cast(days.days_since_two_way as {{ type_double() }}) as figure,
    'days' as figure_unit,
    {{ var('deal_warning_going_dark_days') }} as threshold
from days
left join history_breaks on days.opportunity_id = history_breaks.opportunity_id
where days.days_since_two_way >= {{ var('deal_warning_going_dark_days') }}

union all

select
    days.opportunity_id,
    'unanswered' as warning,
    unanswered_aged.aged_day as since,
    {{ sql_string('our last ' ~ unanswered['emails'] ~ ' emails to the customer got no reply, the latest sent ') }}
        || {{ count_of(dbt.datediff('cast(unanswered_aged.latest_sent_at as date)', 'days.warning_day', 'day'), 'day') }}
        || ' ago' as reason,
    cast({{ unanswered['emails'] }} as {{ type_double() }}) as figure,
    'emails' as figure_unit,
    {{ unanswered['emails'] }} as threshold
from days
inner join unanswered_aged on days.opportunity_id = unanswered_aged.opportunity_id
where unanswered_aged.aged_day <= days.warning_day

union all

select
    days.opportunity_id,
    'single_threaded' as warning,
    cast({{ dbt.dateadd('day', 1, 'history_breaks.single_threaded_broken') }} as date)
        as since,
    'only ' || {{ count_of('days.customer_people', 'customer person') }}
        || {{ sql_string(' in two-way activities in the last ' ~ var('health_signal_days') ~ ' days') }} as reason,
    cast(days.customer_people as {{ type_double() }}) as figure,
    'people' as figure_unit,
    {{ var('deal_warning_single_threaded_people') }} as threshold
from days
left join history_breaks on days.opportunity_id = history_breaks.opportunity_id
where days.customer_people = {{ var('deal_warning_single_threaded_people') }}

union all

select
    days.opportunity_id,
    'no_recent_meeting' as warning,
    coalesce(
        cast({{ dbt.dateadd('day', meeting_days, 'meetings.last_meeting_day') }} as date),
        days.created_day
    ) as since,
    {{ sql_string('no meeting with the customer in the last ' ~ meeting_days ~ ' days') }}
        || case
            when meetings.last_meeting_day is null then ' (none yet)'
            else ' (the last ' || {{ count_of(dbt.datediff('meetings.last_meeting_day', 'days.warning_day', 'day'), 'day') }} || ' ago)'
        end as reason,
    cast({{ dbt.datediff('meetings.last_meeting_day', 'days.warning_day', 'day') }} as {{ type_double() }}) as figure,
    'days' as figure_unit,
    {{ meeting_days }} as threshold
from days
left join meetings on days.opportunity_id = meetings.opportunity_id
where
    meetings.last_meeting_day is null
    or meetings.last_meeting_day <= {{ dbt.dateadd('day', -meeting_days, 'days.warning_day') }}

union all

select
    days.opportunity_id,
    'close_date_pushed' as warning,
    pushed.pushed_day as since,
    'the estimated close date moved later ' || {{ count_of('pushed.pushes', 'time') }}
        || ', from ' || cast(pushed.first_close_date as {{ dbt.type_string() }})
        || ' to ' || cast(days.estimated_close_date as {{ dbt.type_string() }}) as reason,
    cast(pushed.pushes as {{ type_double() }}) as figure,
    'pushes' as figure_unit,
    {{ var('deal_warning_close_date_pushes') }} as threshold
from days
inner join pushed on days.opportunity_id = pushed.opportunity_id
where pushed.pushes >= {{ var('deal_warning_close_date_pushes') }}

union all

select
    opportunity_id,
    'past_close_date' as warning,
    cast({{ dbt.dateadd('day', 1, 'estimated_close_date') }} as date) as since,
    'the estimated close date ' || cast(estimated_close_date as {{ dbt.type_string() }})
        || ' passed ' || {{ count_of(dbt.datediff('estimated_close_date', 'warning_day', 'day'), 'day') }}
        || ' ago and the deal is still open' as reason,
    cast({{ dbt.datediff('estimated_close_date', 'warning_day', 'day') }} as {{ type_double() }}) as figure,
    'days' as figure_unit,
    0 as threshold
from days
where estimated_close_date < warning_day

union all

select
    days.opportunity_id,
    'health_declining' as warning,
    cast({{ dbt.dateadd('day', 1, 'history_breaks.health_declining_broken') }} as date)
        as since,
    'health fell from ' || cast(days.earlier_health_score as {{ dbt.type_string() }})
        || ' to ' || cast(days.health_score as {{ dbt.type_string() }})
        || {{ sql_string(' in ' ~ var('health_trend_days') ~ ' days') }} as reason,
    cast(days.health_score - days.earlier_health_score as {{ type_double() }}) as figure,
    'points' as figure_unit,
    -{{ var('health_trend_step') }} as threshold
from days
left join history_breaks on days.opportunity_id = history_breaks.opportunity_id
where days.health_trend = 'Declining'

union all

select
    days.opportunity_id,
    'slow_team_replies' as warning,
    slow_replies.since,
    'we replied to the customer in ' || {{ number_text(tenths('slow_replies.mean_hours')) }}
        || {{ sql_string(' hours on average over the last ' ~ slow['days'] ~ ' days (a warning above ' ~ slow_hours ~ ')') }}
        as reason,
    cast(slow_replies.mean_hours as {{ type_double() }}) as figure,
    'hours' as figure_unit,
    {{ slow_hours }} as threshold
from days
inner join slow_replies on days.opportunity_id = slow_replies.opportunity_id
)
{%- endmacro %}

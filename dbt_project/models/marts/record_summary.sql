-- A few plain sentences per record, from its KPIs: what happened in the trailing period, how
-- each side replies, the last and next contact, and the time each side invested.
{%- set text = dbt.type_string() %}

with kpis as (
    select * from {{ ref('relationship_kpis') }}
    where period = 'trailing'
),

users as (
    select user_id, full_name from {{ ref('stg_crm__users') }}
),

sentences as (
    select
        kpis.record_type,
        kpis.record_id,
        case
            when kpis.past_activities = 0
                then 'No completed activity in the last ' || cast(kpis.period_days as {{ text }}) || ' days.'
            else
                'In the last ' || cast(kpis.period_days as {{ text }}) || ' days: '
                || {{ count_of('kpis.emails_sent', 'email') }} || ' sent and '
                || cast(kpis.emails_received as {{ text }}) || ' received, '
                || {{ count_of('kpis.meetings', 'meeting') }} || ', '
                || {{ count_of('kpis.calls_outgoing + kpis.calls_incoming', 'call') }} || ' and '
                || {{ count_of('kpis.past_activities - kpis.emails_sent - kpis.emails_received - kpis.meetings - kpis.calls_outgoing - kpis.calls_incoming', 'task') }}
                || '.'
        end as activity_sentence,
        case
            when kpis.customer_response_rate is not null
                then 'The customer answered '
                || cast(cast(round(round(kpis.customer_response_rate * 100, 9)) as {{ dbt.type_bigint() }}) as {{ text }})
                || '% of our emails'
                || case
                    when kpis.customer_response_hours is not null
                        then ', after ' || {{ one_decimal('kpis.customer_response_hours') }} || ' hours on average'
                    else ''
                end
                || '.'
        end as customer_reply_sentence,
        case
            when kpis.team_response_hours is not null
                then 'We answered the customer after ' || {{ one_decimal('kpis.team_response_hours') }}
                || ' hours on average.'
        end as team_reply_sentence,
        case
            when kpis.last_contacted_at is null then 'Not contacted in this period.'
            else 'Last contact on ' || cast(cast(kpis.last_contacted_at as date) as {{ text }})
                || coalesce(' by ' || last_by.full_name, '') || '.'
        end as last_contact_sentence,
        case
            when kpis.next_contact_at is null then 'No contact scheduled.'
            else 'Next contact on ' || cast(cast(kpis.next_contact_at as date) as {{ text }})
                || coalesce(' by ' || next_by.full_name, '') || '.'
        end as next_contact_sentence,
        case
            when kpis.team_time_minutes + kpis.customer_time_minutes > 0
                then 'Time invested: ' || {{ one_decimal('kpis.team_time_minutes / 60') }}
                || ' hours by our team, ' || {{ one_decimal('kpis.customer_time_minutes / 60') }}
                || ' by the customer.'
        end as time_sentence
    from kpis
    left join users as last_by on kpis.last_contacted_by = last_by.user_id
    left join users as next_by on kpis.next_contact_by = next_by.user_id
)

select
    record_type,
    record_id,
    activity_sentence
    || coalesce(' ' || customer_reply_sentence, '')
    || coalesce(' ' || team_reply_sentence, '')
    || ' ' || last_contact_sentence
    || ' ' || next_contact_sentence
    || coalesce(' ' || time_sentence, '') as summary
from sentences

-- A table, not a view: the similar-deals model reads it, then both deal marts join it.
{{ config(materialized='table') }}

-- One row per opportunity: what any deal has before it closes (the similarity's features) and its
-- engagement over the whole history up to its figures date: the end of D for an open deal, the end
-- of its close date for a closed one (docs/metrics.md: record analytics), but never after D.
with opportunities as (
    select
        *,
        case
            when opportunity_status = 'open' then 'open'
            -- Closed after D: not yet known as of D, so neither scored nor anyone's neighbour.
            when actual_close_date > {{ as_of_date() }} then 'closed_later'
            else opportunity_status
        end as state_as_of
    from {{ ref('stg_crm__opportunities') }}
),

dated as (
    select
        *,
        case
            when state_as_of in ('won', 'lost') and actual_close_date is not null
                then actual_close_date
            else {{ as_of_date() }}
        end as figures_as_of
    from opportunities
),

engagement as (
    select
        dated.opportunity_id,
        sum(case when activities.initiated_by = 'team' then 1 else 0 end) as team_initiated,
        sum(case when activities.initiated_by = 'customer' then 1 else 0 end) as customer_initiated,
        sum(case when activities.activity_type = 'email' and activities.direction = 'outgoing' then 1 else 0 end)
            as emails_sent,
        sum(case when activities.activity_type = 'email' and activities.direction = 'incoming' then 1 else 0 end)
            as emails_received,
        sum(activities.team_minutes) as team_time_minutes,
        sum(activities.customer_minutes) as customer_time_minutes
    from dated
    inner join {{ ref('int_record_activities') }} as memberships
        on memberships.record_type = 'opportunity' and dated.opportunity_id = memberships.record_id
    inner join {{ ref('int_activities_classified') }} as activities
        on memberships.activity_id = activities.activity_id
    where
        activities.is_counted
        and activities.activity_at
        < cast({{ dbt.dateadd('day', 1, 'dated.figures_as_of') }} as {{ dbt.type_timestamp() }})
    group by dated.opportunity_id
),

counted as (
    select
        dated.opportunity_id,
        dated.opportunity_name,
        dated.opportunity_status,
        dated.state_as_of,
        dated.figures_as_of,
        dated.stage,
        dated.product,
        cast(dated.estimated_value as {{ type_double() }}) as estimated_value,
        cast(dated.actual_value as {{ type_double() }}) as actual_value,
        dated.created_at,
        dated.estimated_close_date,
        dated.actual_close_date,
        cast({{ dbt.datediff('cast(dated.created_at as date)', 'dated.figures_as_of', 'day') }}
            as {{ dbt.type_bigint() }}) as age_days,  -- Spark's datediff is an int
        dated.account_id,
        accounts.industry as account_industry,
        cast(accounts.employees as {{ type_double() }}) as account_employees,
        cast(accounts.annual_revenue as {{ type_double() }}) as account_annual_revenue,
        accounts.country as account_country,
        dated.owner_id,
        owners.team as owner_team,
        {%- for count in ['team_initiated', 'customer_initiated', 'emails_sent', 'emails_received'] %}
        cast(coalesce(engagement.{{ count }}, 0) as {{ dbt.type_bigint() }}) as {{ count }},
        {%- endfor %}
        cast(coalesce(engagement.team_time_minutes, 0) as {{ type_double() }}) as team_time_minutes,
        cast(coalesce(engagement.customer_time_minutes, 0) as {{ type_double() }})
            as customer_time_minutes
    from dated
    left join {{ ref('stg_crm__accounts') }} as accounts on dated.account_id = accounts.account_id
    left join {{ ref('stg_crm__users') }} as owners on dated.owner_id = owners.user_id
    left join engagement on dated.opportunity_id = engagement.opportunity_id
)

select
    *,
    cast(emails_sent as {{ type_double() }}) / nullif(emails_received, 0) as email_send_ratio,
    cast(emails_received as {{ type_double() }}) / nullif(emails_sent, 0)
        as customer_email_send_ratio
from counted

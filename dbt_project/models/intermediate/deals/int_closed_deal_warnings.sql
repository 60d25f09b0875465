-- Which deal warnings held on a closed deal some days before it closed: one row per opportunity
-- won or lost by the end of D and warning, for the deals whose day
-- deal_warning_outcome_days_before_close days before their actual close lies within the health
-- history. The warnings are deal_warnings' (macro deal_warnings_as_of, with its thresholds), as of
-- the end of that day: the record version modified by then (else the first one the ingest kept),
-- the activities and pushes by then, the health history row of that day. Read by the report
-- deal_warning_outcomes, which counts the wins with and without each: a table, so that the report
-- reads it rather than computing it again.
{{ config(materialized='table') }}
{%- set days_before_close = var('deal_warning_outcome_days_before_close') %}
{%- if days_before_close is not number or days_before_close < 0 %}
    {{ exceptions.raise_compiler_error("deal_warning_outcome_days_before_close must be a whole number of days, 0 or more, got '" ~ days_before_close ~ "'") }}
{%- endif %}
with closed as (
    select
        opportunity_id,
        opportunity_status = 'won' as is_won,
        actual_close_date,
        cast({{ dbt.dateadd('day', -days_before_close, 'actual_close_date') }} as date) as warning_day
    from {{ ref('stg_crm__opportunities') }}
    where opportunity_status in ('won', 'lost') and actual_close_date <= {{ as_of_date() }}
),

-- The record as of the end of the deal's day: its latest version modified by then, else (a record
-- first kept later) its first version.
versions as (
    select
        closed.opportunity_id,
        versions.estimated_close_date,
        cast(versions.created_at as date) as created_day,
        row_number() over (
            partition by closed.opportunity_id
            order by
                case when versions.modified_at < {{ dbt.dateadd('day', 1, 'closed.warning_day') }} then 0 else 1 end,
                case when versions.modified_at < {{ dbt.dateadd('day', 1, 'closed.warning_day') }} then versions.modified_at end desc,
                versions.modified_at,
                versions._source_file desc,
                versions._row_number desc
        ) as version_rank
    from closed
    inner join {{ source('crm', 'opportunities') }} as versions
        on closed.opportunity_id = versions.opportunity_id
),

deals as (
    select
        closed.opportunity_id,
        closed.warning_day,
        versions.estimated_close_date,
        versions.created_day,
        history.days_since_two_way,
        history.customer_people,
        history.health_trend,
        history.health_score,
        history.earlier_health_score
    from closed
    inner join versions
        on closed.opportunity_id = versions.opportunity_id and versions.version_rank = 1
    inner join {{ ref('relationship_health_history') }} as history
        on history.record_type = 'opportunity'
        and history.record_id = closed.opportunity_id
        and history.as_of_date = closed.warning_day
),

held as (
    select opportunity_id, warning, reason from {{ deal_warnings_as_of('deals') }} as warnings
),

warning_codes as (
    {%- for warning in deal_warning_codes() %}
    select {{ sql_string(warning) }} as warning{% if not loop.last %} union all{% endif %}
    {%- endfor %}
)

select
    deals.opportunity_id,
    closed.is_won,
    closed.actual_close_date,
    deals.warning_day,
    warning_codes.warning,
    held.warning is not null as is_held,
    held.reason
from deals
inner join closed on deals.opportunity_id = closed.opportunity_id
cross join warning_codes
left join held
    on deals.opportunity_id = held.opportunity_id and warning_codes.warning = held.warning

-- Deal warnings: one row per open opportunity and warning holding as of D, with its severity,
-- since when it has held without a break (within the health history), a sentence with the figures
-- and the figures themselves. Every threshold is a dbt var (deal_warning_*). The rules are the
-- macro deal_warnings_as_of (macros/deal_warnings.sql), which int_closed_deal_warnings applies to
-- closed deals. A table computed from the (incremental) intermediate tables and the health history:
-- a night gives the rows of a full build.
{%- set severities = var('deal_warning_severities') %}
{%- set known = deal_warning_codes() %}
{%- if severities.keys() | sort != known | sort %}
    {{ exceptions.raise_compiler_error("deal_warning_severities must give a severity to each of " ~ known | join(', ') ~ ", and to nothing else; got " ~ severities.keys() | join(', ')) }}
{%- endif %}
{%- for warning, severity in severities.items() if severity not in ('high', 'medium', 'low') %}
    {{ exceptions.raise_compiler_error("deal_warning_severities: the severity of " ~ warning ~ " must be high, medium or low, got '" ~ severity ~ "'") }}
{%- endfor %}
{%- set history_start = 'cast(' ~ health_history_start() ~ ' as date)' %}
with opportunities as (
    select
        opportunities.opportunity_id,
        opportunities.opportunity_name,
        opportunities.owner_id,
        opportunities.estimated_close_date,
        opportunities.record_url,
        cast(opportunities.created_at as date) as created_day
    from {{ ref('stg_crm__opportunities') }} as opportunities
    where opportunities.opportunity_status = 'open'
),

health as (
    select * from {{ ref('relationship_health') }}
    where record_type = 'opportunity'
),

-- Each open deal on D, with its health of D.
deals as (
    select
        opportunities.opportunity_id,
        {{ as_of_date() }} as warning_day,
        opportunities.estimated_close_date,
        opportunities.created_day,
        health.days_since_two_way,
        health.customer_people,
        health.health_trend,
        health.health_score,
        health.earlier_health_score
    from opportunities
    left join health on opportunities.opportunity_id = health.record_id
),

warnings as (
    select * from {{ deal_warnings_as_of('deals') }} as warnings
)

select
    warnings.opportunity_id,
    opportunities.opportunity_name as name,
    opportunities.owner_id,
    health.company_name,
    {{ as_of_date() }} as as_of_date,
    warnings.warning,
    case warnings.warning
        {%- for warning, severity in severities.items() %}
        when {{ sql_string(warning) }} then {{ sql_string(severity) }}
        {%- endfor %}
    end as severity,
    -- Most severe first, ties in the order of deal_warning_severities: deal_tracking's top warning.
    cast(case warnings.warning
        {%- for warning, severity in severities.items() %}
        when {{ sql_string(warning) }} then {{ {'high': 0, 'medium': 100, 'low': 200}[severity] + loop.index }}
        {%- endfor %}
    end as integer) as priority,
    -- Within the health history: a run that began earlier shows its first day.
    greatest(coalesce(warnings.since, {{ history_start }}), {{ history_start }}) as since,
    warnings.reason,
    warnings.figure,
    warnings.figure_unit,
    cast(warnings.threshold as {{ type_double() }}) as threshold,
    opportunities.record_url
from warnings
inner join opportunities on warnings.opportunity_id = opportunities.opportunity_id
left join health on warnings.opportunity_id = health.record_id

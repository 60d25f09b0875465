-- Open opportunities expected to close after D, for the deal-tracking bubble chart: close date
-- against health, sized by estimated revenue, coloured by stage. Past or missing close dates
-- are left out. With the deal's warnings (deal_warnings): how many, and the most severe.
{%- set colors = var('deal_stage_colors') %}
select
    opportunities.opportunity_id,
    opportunities.opportunity_name as name,
    opportunities.owner_id,
    opportunities.stage,
    case opportunities.stage
        {%- for stage, color in colors.items() %}
        when {{ sql_string(stage) }} then {{ sql_string(color['name']) }}
        {%- endfor %}
    end as stage_color,
    case opportunities.stage
        {%- for stage, color in colors.items() %}
        when {{ sql_string(stage) }} then {{ sql_string(color['hex']) }}
        {%- endfor %}
    end as stage_color_hex,
    opportunities.estimated_close_date,
    opportunities.estimated_value,
    health.health_score,
    health.health_status,
    opportunities.record_url,
    health.company_name,
    cast(coalesce(warnings.warnings, 0) as {{ dbt.type_bigint() }}) as warnings,
    top_warning.warning as top_warning,
    top_warning.reason as top_warning_reason
from {{ ref('stg_crm__opportunities') }} as opportunities
left join {{ ref('relationship_health') }} as health
    on health.record_type = 'opportunity' and opportunities.opportunity_id = health.record_id
left join (
    select opportunity_id, count(*) as warnings, min(priority) as top_priority
    from {{ ref('deal_warnings') }}
    group by opportunity_id
) as warnings
    on opportunities.opportunity_id = warnings.opportunity_id
left join {{ ref('deal_warnings') }} as top_warning
    on
        warnings.opportunity_id = top_warning.opportunity_id
        and warnings.top_priority = top_warning.priority
where
    opportunities.opportunity_status = 'open'
    and opportunities.estimated_close_date > {{ as_of_date() }}

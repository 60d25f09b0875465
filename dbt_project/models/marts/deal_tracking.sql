-- Open opportunities expected to close after D, for the deal-tracking bubble chart: close date
-- against health, sized by estimated revenue, coloured by stage. Past or missing close dates
-- are left out.
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
    health.company_name
from {{ ref('stg_crm__opportunities') }} as opportunities
left join {{ ref('relationship_health') }} as health
    on health.record_type = 'opportunity' and opportunities.opportunity_id = health.record_id
where
    opportunities.opportunity_status = 'open'
    and opportunities.estimated_close_date > {{ as_of_date() }}

-- Every open opportunity's engagement so far against the average over its similar won deals,
-- each of those as of its close date (docs/metrics.md: record analytics). One row per measure.
{#- A view: the similar-deals model writes its table after dbt has run, and the view reads it
    then; so one `dbt build` per run serves the model's features and its marts (docs/metrics.md). -#}
{{ config(materialized='view') }}
{%- set measures = [
    'team_initiated', 'team_time_minutes', 'customer_time_minutes', 'email_send_ratio',
    'customer_email_send_ratio'
] %}
with features as (
    select * from {{ ref('int_opportunity_features') }}
),

measured as (
    {%- for measure in measures %}
    select
        opportunity_id,
        '{{ measure }}' as measure,
        cast({{ measure }} as {{ type_double() }}) as value
    from features
    {%- if not loop.last %}

    union all
    {% endif -%}
    {%- endfor %}
),

open_measured as (
    select measured.*
    from measured
    inner join features on measured.opportunity_id = features.opportunity_id
    where features.state_as_of = 'open'
)

select
    open_measured.opportunity_id,
    open_measured.measure,
    open_measured.value,
    -- Empty values (a ratio with nothing to divide by) are left out of the average.
    avg(similar_deal.value) as similar_won_avg,
    count(similar_deal.value) as similar_won_deals,
    {{ as_of_date() }} as as_of_date
from open_measured
left join {{ ref('similar_won_deals') }} as neighbours
    on open_measured.opportunity_id = neighbours.opportunity_id
left join measured as similar_deal
    on
        neighbours.similar_opportunity_id = similar_deal.opportunity_id
        and open_measured.measure = similar_deal.measure
group by open_measured.opportunity_id, open_measured.measure, open_measured.value

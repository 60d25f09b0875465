-- The model's neighbours with what a seller needs to recognise the similar deal.
{#- A view: the similar-deals model writes its table after dbt has run, and the view reads it
    then; so one `dbt build` per run serves the model's features and its marts (docs/metrics.md). -#}
{{ config(materialized='view') }}
with neighbours as (
    select * from {{ source('learn', 'won_deal_neighbours') }}
),

features as (
    select * from {{ ref('int_opportunity_features') }}
)

select
    neighbours.opportunity_id,
    neighbours.similar_opportunity_id,
    cast(neighbours.rank as {{ dbt.type_bigint() }}) as rank,
    cast(neighbours.similarity as {{ type_double() }}) as similarity,
    neighbours.reasons,
    neighbours.method,
    {{ as_of_date() }} as as_of_date,
    similar_deal.opportunity_name as similar_opportunity_name,
    similar_deal.product as similar_product,
    similar_deal.estimated_value as similar_estimated_value,
    similar_deal.actual_value as similar_actual_value,
    similar_deal.actual_close_date as similar_close_date
from neighbours
left join features as similar_deal
    on neighbours.similar_opportunity_id = similar_deal.opportunity_id

-- Fails with every open opportunity whose engagement in int_opportunity_features (computed as of
-- each deal's own date) differs from its whole-history relationship_kpis row (as of D): for an open
-- deal both are as of D, so any difference is a bug in one of the two.
{{ config(meta={'dagster': {'ref': {'name': 'int_opportunity_features'}}}) }}

select features.opportunity_id
from {{ ref('int_opportunity_features') }} as features
inner join {{ ref('relationship_kpis') }} as kpis
    on
        kpis.record_type = 'opportunity'
        and kpis.record_id = features.opportunity_id
        and kpis.period = 'all'
where
    features.state_as_of = 'open'
    and (
        features.team_initiated <> kpis.team_initiated
        or features.customer_initiated <> kpis.customer_initiated
        or features.emails_sent <> kpis.emails_sent
        or features.emails_received <> kpis.emails_received
        or abs(features.team_time_minutes - kpis.team_time_minutes) > 1e-9
        or abs(features.customer_time_minutes - kpis.customer_time_minutes) > 1e-9
    )

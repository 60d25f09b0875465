-- Relationship health of every record as of D: the last day of relationship_health_history,
-- with the record's name and owner for list views.
select
    history.record_type,
    history.record_id,
    records.record_name,
    records.company_name,
    records.owner_id,
    history.as_of_date,
    history.health_score,
    history.health_status,
    history.health_trend,
    history.earlier_health_score,
    history.signal_recency,
    history.signal_frequency,
    history.signal_reciprocity,
    history.signal_responsiveness,
    history.signal_breadth,
    history.reasons,
    history.has_enough_history,
    history.two_way_activities
from {{ ref('relationship_health_history') }} as history
inner join {{ ref('int_records_unioned') }} as records
    on history.record_type = records.record_type and history.record_id = records.record_id
where history.as_of_date = {{ as_of_date() }}

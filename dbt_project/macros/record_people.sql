{#- For each record, the people of one side who interacted with it most: an interaction is a
    completed email, call or meeting of the record (by the end of D) in which the person took part
    together with someone of the other side. One row per record and person, ranked. -#}
{% macro record_people(party_type, side) -%}
with interactions as (
    select
        memberships.record_type,
        memberships.record_id,
        people.person_id,
        activities.activity_at
    from {{ ref('int_record_activities') }} as memberships
    inner join {{ ref('int_activities_classified') }} as activities
        on memberships.activity_id = activities.activity_id
    inner join {{ ref('int_activity_people_classified') }} as people
        on memberships.activity_id = people.activity_id
    where
        activities.is_conversation
        and activities.activity_status = 'completed'
        and activities.activity_at < {{ as_of_end() }}
        and people.party_type = '{{ party_type }}'
        and people.side = '{{ side }}'
),

counted as (
    select
        record_type,
        record_id,
        person_id,
        count(*) as interactions,
        max(activity_at) as last_contacted_at
    from interactions
    group by record_type, record_id, person_id
)

select
    record_type,
    record_id,
    person_id,
    cast(interactions as {{ dbt.type_bigint() }}) as interactions,
    last_contacted_at,
    cast(row_number() over (
        partition by record_type, record_id
        order by interactions desc, last_contacted_at desc, person_id
    ) as {{ dbt.type_bigint() }}) as rank
from counted
{%- endmacro %}

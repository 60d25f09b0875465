-- Our users who interacted most with each record's customer, including users who do not own it.
with ranked as (
    {{ record_people('user', 'internal') }}
),

records as (
    select * from {{ ref('int_records_unioned') }}
),

users as (
    select * from {{ ref('stg_crm__users') }}
)

select
    ranked.record_type,
    ranked.record_id,
    ranked.person_id as user_id,
    users.full_name as user_name,
    users.team,
    ranked.interactions,
    ranked.last_contacted_at,
    ranked.rank,
    coalesce(ranked.person_id = records.owner_id, false) as is_record_owner
from ranked
inner join records
    on ranked.record_type = records.record_type and ranked.record_id = records.record_id
left join users on ranked.person_id = users.user_id

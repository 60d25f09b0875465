-- For every account, our users ranked by their strongest tie to anyone there (who_knows_whom's
-- strength), naming that contact, with how many of its contacts each knows.
with ties as (
    select
        account_id,
        user_id,
        user_name,
        contact_id,
        contact_name,
        strength,
        last_interaction_at,
        count(*) over (partition by account_id, user_id) as contacts_known,
        sum(two_way_interactions) over (partition by account_id, user_id) as two_way_interactions,
        row_number() over (
            partition by account_id, user_id
            order by strength desc, last_interaction_at desc, contact_id
        ) as tie_order
    from {{ ref('who_knows_whom') }}
    where account_id is not null
)

select
    ties.account_id,
    accounts.account_name,
    ties.user_id,
    ties.user_name,
    {{ as_of_date() }} as as_of_date,
    cast(row_number() over (
        partition by ties.account_id
        order by ties.strength desc, ties.contacts_known desc, ties.user_id
    ) as {{ dbt.type_bigint() }}) as rank,
    ties.contact_id as strongest_contact_id,
    ties.contact_name as strongest_contact_name,
    ties.strength as strongest_strength,
    ties.last_interaction_at as strongest_last_interaction_at,
    cast(ties.contacts_known as {{ dbt.type_bigint() }}) as contacts_known,
    cast(ties.two_way_interactions as {{ dbt.type_bigint() }}) as two_way_interactions
from ties
inner join {{ ref('stg_crm__accounts') }} as accounts on ties.account_id = accounts.account_id
where ties.tie_order = 1

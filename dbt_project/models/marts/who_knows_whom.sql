-- Who knows whom: for every customer contact, the users who know them, strongest first. An
-- interaction is a completed email, call or meeting up to the end of D in which both took part;
-- a two-way one is a meeting, or an email or call from the contact. The connection strength sums
-- the two-way interactions, each weighted 0.5 ^ (whole days before D / connection_half_life_days).
-- A pair counts once the contact has answered, so to speak: it needs a two-way interaction.
with people as (
    select activity_id, person_id, party_type, side, is_sender
    from {{ ref('int_activity_people_classified') }}
    where party_type in ('user', 'contact')
),

interactions as (
    select
        users.person_id as user_id,
        contacts.person_id as contact_id,
        activities.activity_type,
        activities.activity_at,
        users.is_sender as user_sent,
        contacts.is_sender as contact_sent,
        activities.activity_type = 'appointment' or contacts.is_sender as is_two_way,
        {{ dbt.datediff('cast(activities.activity_at as date)', as_of_date(), 'day') }} as days_before
    from {{ ref('int_activities_classified') }} as activities
    inner join people as users
        on activities.activity_id = users.activity_id
        and users.party_type = 'user' and users.side = 'internal'
    inner join people as contacts
        on activities.activity_id = contacts.activity_id
        and contacts.party_type = 'contact' and contacts.side = 'external'
    where
        activities.is_conversation
        and activities.activity_status = 'completed'
        and activities.activity_at < {{ as_of_end() }}
),

pairs as (
    select
        contact_id,
        user_id,
        -- Rounded, so that the order the terms are summed in cannot change the ranking.
        round(sum(case when is_two_way then power(
            0.5, days_before / cast({{ var('connection_half_life_days') }} as {{ type_double() }})
        ) else 0 end), 6) as strength,
        count(*) as interactions,
        sum(case when is_two_way then 1 else 0 end) as two_way_interactions,
        sum(case when activity_type = 'email' and user_sent then 1 else 0 end) as emails_sent,
        sum(case when activity_type = 'email' and contact_sent then 1 else 0 end) as emails_received,
        sum(case when activity_type = 'phone_call' then 1 else 0 end) as calls,
        sum(case when activity_type = 'appointment' then 1 else 0 end) as meetings,
        max(activity_at) as last_interaction_at
    from interactions
    group by contact_id, user_id
    having sum(case when is_two_way then 1 else 0 end) > 0
)

select
    pairs.contact_id,
    contacts.full_name as contact_name,
    contacts.account_id,
    pairs.user_id,
    users.full_name as user_name,
    {{ as_of_date() }} as as_of_date,
    cast(pairs.strength as {{ type_double() }}) as strength,
    cast(row_number() over (
        partition by pairs.contact_id
        order by pairs.strength desc, pairs.last_interaction_at desc, pairs.user_id
    ) as {{ dbt.type_bigint() }}) as rank,
    {%- for count in ['interactions', 'two_way_interactions', 'emails_sent', 'emails_received', 'calls', 'meetings'] %}
    cast(pairs.{{ count }} as {{ dbt.type_bigint() }}) as {{ count }},
    {%- endfor %}
    pairs.last_interaction_at
from pairs
-- Current contacts and users only.
inner join {{ ref('stg_crm__contacts') }} as contacts on pairs.contact_id = contacts.contact_id
inner join {{ ref('stg_crm__users') }} as users on pairs.user_id = users.user_id

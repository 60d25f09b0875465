-- Incremental (docs/incremental.md): a night recomputes only the activities whose rows may have
-- changed (incremental_activities.sql); a table, as every mart and several tests read it.
{{ activity_table_config('activities', dated=false) }}
{%- set scope = incremental_scope() %}

-- One row per person taking part in an activity, with their side (internal / external).
-- Who takes part depends on the kind of activity: emails from/to/cc/bcc, calls from/to, meetings
-- organizer and attendees, tasks their owner. A person holding several roles is one person.
-- depends_on: {{ ref('stg_crm__activities') }}, {{ ref('stg_crm__activity_parties') }}
with activities as (
    select activity_id, activity_type, owner_id
    from {{ staged_in_scope('stg_crm__activities', scope) }} as staged
),

-- A CRM export's party known only by its address is the user, else the contact, with that
-- address (the smallest id where several share it); an address nobody has stays unresolved. A
-- canonical file's unresolved party is one its producer could not resolve: it stays so.
known_addresses as (
    select email as address, 'user' as party_type, min(user_id) as party_id, 1 as preference
    from {{ ref('stg_crm__users') }}
    where email is not null
    group by email
    union all
    select email as address, 'contact' as party_type, min(contact_id) as party_id, 2 as preference
    from {{ ref('stg_crm__contacts') }}
    where email is not null
    group by email
),

address_owners as (
    select address, party_type, party_id
    from (
        select
            *,
            row_number() over (partition by address order by preference) as choice
        from known_addresses
    ) as ranked
    where choice = 1
),

parties as (
    select
        staged.activity_id,
        staged.role,
        coalesce(address_owners.party_type, staged.party_type) as party_type,
        coalesce(address_owners.party_id, staged.party_id) as party_id,
        staged.address
    from {{ staged_in_scope('stg_crm__activity_parties', scope) }} as staged
    left join address_owners
        on
            staged.from_export
            and staged.party_type = 'unresolved'
            and staged.address = address_owners.address
),

internal_domains as (
    select distinct {{ dbt.split_part('email', "'@'", 2) }} as domain
    from {{ ref('stg_crm__users') }}
    where email like '%@%'
    {%- for domain in org_domains() %}
    union
    select {{ sql_string(domain) }} as domain
    {%- endfor %}
),

participating as (
    select parties.activity_id, parties.role, parties.party_type, parties.party_id, parties.address
    from parties
    inner join activities on parties.activity_id = activities.activity_id
    where
        (activities.activity_type = 'email' and parties.role in ('from', 'to', 'cc', 'bcc'))
        or (activities.activity_type = 'phone_call' and parties.role in ('from', 'to'))
        or (
            activities.activity_type = 'appointment'
            and parties.role in ('organizer', 'required_attendee', 'optional_attendee')
        )
        or (activities.activity_type = 'task' and parties.role = 'owner')

    union all

    -- A task's owner takes part even when the export lists no owner party.
    select activity_id, 'owner' as role, 'user' as party_type, owner_id as party_id, null as address
    from activities
    where activity_type = 'task' and owner_id is not null
),

sided as (
    select
        participating.activity_id,
        participating.party_type,
        coalesce(participating.party_id, participating.address) as person_id,
        participating.role,
        case
            when participating.party_type = 'user' then 1
            when participating.party_type = 'unresolved' and internal_domains.domain is not null then 1
            else 0
        end as is_internal
    from participating
    left join internal_domains
        on
            participating.party_type = 'unresolved'
            and {{ dbt.split_part('participating.address', "'@'", 2) }} = internal_domains.domain
    where coalesce(participating.party_id, participating.address) is not null
)

select
    activity_id,
    party_type,
    person_id,
    case when max(is_internal) = 1 then 'internal' else 'external' end as side,
    max(case when role = 'from' then 1 else 0 end) = 1 as is_sender,
    max(case when role = 'organizer' then 1 else 0 end) = 1 as is_organizer
from sided
group by activity_id, party_type, person_id

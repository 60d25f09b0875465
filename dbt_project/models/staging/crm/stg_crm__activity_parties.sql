-- The parties of an activity belong to its latest version: the last file (in name order) that
-- lists any parties for the activity replaces earlier sets; a version without parties keeps them.
with parties as (
    select
        *,
        max(_source_file) over (partition by activity_id) as latest_source_file
    from {{ source('crm', 'activity_parties') }}
)

select
    activity_id,
    role,
    party_type,
    party_id,
    lower(address) as address
from parties
where _source_file = latest_source_file

-- The parties of an activity belong to its latest version: the last party set (in name order)
-- that lists any parties for the activity replaces earlier sets; a version without parties keeps
-- them. A canonical file is one party set. A CRM export's pages split one table across files, so
-- an export folder (`dataverse/activityparty/`, ...) is one set: an activity's parties may sit on
-- two pages of it.
with parties as (
    select
        *,
        _source_file like 'dataverse/%' or _source_file like 'salesforce/%' as from_export,
        case
            when _source_file like 'dataverse/%' or _source_file like 'salesforce/%'
                then {{ regexp_replace_all('_source_file', "'/[^/]*$'", "''") }}
            else _source_file
        end as party_set
    from {{ source('crm', 'activity_parties') }}
),

latest as (
    select
        *,
        max(party_set) over (partition by activity_id) as latest_party_set
    from parties
)

select
    activity_id,
    role,
    party_type,
    party_id,
    lower(address) as address,
    from_export
from latest
where party_set = latest_party_set

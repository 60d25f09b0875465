-- Every time an opportunity's estimated close date moved later: one row per record version whose
-- estimated close date is later than the version's before it, in the order the ingest keeps the
-- versions (modified_at, then file and row). Versions changed after D come after every version of
-- D, so a reader takes those pushed by the end of D (deal_warnings' close_date_pushed).
with versions as (
    select
        opportunity_id,
        modified_at,
        _source_file,
        _row_number,
        estimated_close_date,
        lag(estimated_close_date) over (
            partition by opportunity_id order by modified_at, _source_file, _row_number
        ) as previous_close_date
    from {{ source('crm', 'opportunities') }}
)

select
    opportunity_id,
    modified_at as pushed_at,
    previous_close_date,
    estimated_close_date
from versions
where estimated_close_date > previous_close_date

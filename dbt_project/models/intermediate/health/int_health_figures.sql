-- Every record's health figures over the computed days: the history's days and, before them, the
-- trend distance. A running sum of int_health_events per record, with a row on the first day and
-- on each day the figures change (they hold until the next); each row uses only deltas dated on or
-- before its day. (relationship_health_history's nightly runs call the same macro for the records
-- and days they recompute.)
{{ health_running_figures(
    "select record_type, record_id, cast(" ~ health_first_day() ~ " as date) as first_day from "
    ~ ref('int_records_unioned')
) }}

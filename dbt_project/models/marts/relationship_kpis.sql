-- Every per-record KPI, over the whole history (period 'all') and the trailing period_days
-- ending with the as-of date D (period 'trailing'). Upcoming activities and the next contact are
-- the same in both periods. Every existing record has both rows, with zeros where nothing happened.
-- The KPIs come from int_record_kpis, which a night recomputes only for the records it changes;
-- the records' attributes and D are joined here, so that they are always the current ones.
with records as (
    select * from {{ ref('int_records_unioned') }}
),

periods as (
    {{ kpi_periods() }}
),

counted as (
    select
        records.record_type,
        records.record_id,
        records.record_name,
        records.company_name,
        records.owner_id,
        periods.period,
        periods.period_days,
        {{ as_of_date() }} as as_of_date,
        kpis.last_contacted_at,
        kpis.last_contacted_by,
        kpis.next_contact_at,
        kpis.next_contact_by,
        {%- for kpi in kpi_counts() %}
        coalesce(kpis.{{ kpi }}, 0) as {{ kpi }},
        {%- endfor %}
        kpis.customer_response_rate,
        kpis.customer_response_hours,
        kpis.customer_response_hours_median,
        kpis.team_response_hours,
        kpis.team_response_hours_median,
        coalesce(kpis.team_time_minutes, 0) as team_time_minutes,
        coalesce(kpis.customer_time_minutes, 0) as customer_time_minutes
    from records
    cross join periods
    left join {{ ref('int_record_kpis') }} as kpis
        on
            records.record_type = kpis.record_type
            and records.record_id = kpis.record_id
            and periods.period = kpis.period
)

select
    *,
    cast(emails_sent as {{ type_double() }}) / nullif(emails_received, 0) as email_send_ratio,
    cast(emails_received as {{ type_double() }}) / nullif(emails_sent, 0)
        as customer_email_send_ratio
from counted

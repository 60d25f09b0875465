{#- Generic tests the project needs; dbt packages (dbt_utils) cannot be fetched on these machines. -#}

{#- Fails with the rows whose combination of columns is not unique. -#}
{% test unique_combination(model, columns) %}
{{ adapter.dispatch('repeated_combinations', 'relanalytics')(model, columns) }}
{% endtest %}

{% macro default__repeated_combinations(model, columns) -%}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{%- endmacro %}

{#- DuckDB: grouped first by the combination's hash, one integer, then by the columns themselves
    only where a hash repeats (a collision or a real repeat): at 10M activities, 10.7 -> 3.4 s on
    int_record_activities' 22.6M rows and 6.1 -> 3.5 s on int_health_events' 32M, one night each. -#}
{% macro duckdb__repeated_combinations(model, columns) -%}
{%- set combination = 'hash(' ~ columns | join(', ') ~ ')' %}
with repeated_hashes as (
    select {{ combination }} as combination_hash
    from {{ model }}
    group by combination_hash
    having count(*) > 1
)

select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
where {{ combination }} in (select combination_hash from repeated_hashes)
group by {{ columns | join(', ') }}
having count(*) > 1
{%- endmacro %}

{#- Fails with the rows where `<column> <expression>` is not true (empty values pass). -#}
{% test expression_is_true(model, column_name, expression) %}
select *
from {{ model }}
where {{ column_name }} is not null and not ({{ column_name }} {{ expression }})
{% endtest %}

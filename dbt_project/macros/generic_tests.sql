{#- Generic tests the project needs; dbt packages (dbt_utils) cannot be fetched on these machines. -#}

{#- Fails with the rows whose combination of columns is not unique. -#}
{% test unique_combination(model, columns) %}
{{ adapter.dispatch('repeated_combinations', 'relanalytics')(model, columns) }}
{% endtest %}

{#- A model's writes: the table beside it, `<model>_writes` (in `schema`, default the model's),
    recording what its latest build wrote: rows of its `keys`, each with the first day written
    (`from_column`) when the model has days, or a row of nulls when it wrote every row. -#}
{% macro writes_table(model, schema=none) -%}
    {{ return(api.Relation.create(
        database=model.database, schema=schema or model.schema, identifier=model.identifier ~ '_writes'
    )) }}
{%- endmacro %}

{#- unique_combination over the rows the latest build of an incremental model wrote, as its writes
    record them (writes_table; `writes_schema`, default the model's): those whose `keys` match a
    row of it and, with `day_column`, whose day is on or after its `from_column`; every row after
    a build that wrote every row. The rows a build kept cannot repeat: its keys contain the
    writes' keys, or the day too, so no kept row shares a key with a written one, and they passed
    this test when they were written. So a night's test reads that night's rows, not the tens of
    millions the table holds. -#}
{% test unique_combination_written(model, columns, keys, day_column=none, from_column=none, writes_schema=none) %}
{%- set writes = writes_table(model, writes_schema) -%}
{%- set written -%}
    (select written.*
    from {{ model }} as written
    inner join {{ writes }} as writes
        on {% for key in keys %}{{ 'and ' if not loop.first }}written.{{ key }} = writes.{{ key }} {% endfor %}
        {%- if day_column %}and written.{{ day_column }} >= writes.{{ from_column }}{% endif %}
    union all
    select * from {{ model }}
    where exists (select 1 from {{ writes }} where {{ keys[0] }} is null)) as written_rows
{%- endset %}
{{ adapter.dispatch('repeated_combinations', 'relanalytics')(written, columns) }}
{% endtest %}

{% macro default__repeated_combinations(model, columns) -%}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{%- endmacro %}

{#- DuckDB: grouped first by the combination's hash, one integer, then by the columns themselves
    only where a hash repeats (a collision or a real repeat): grouping by one integer is far
    cheaper than by several text columns, and a repeat is rare. -#}
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

{#- Fails (or warns, at severity warn) with every row of a model that lists problems. -#}
{% test is_empty(model) %}
select * from {{ model }}
{% endtest %}

{#- Fails with the records of a mart that are not current records (int_records_unioned): deleted
    ones and ones no file holds. `record_id` names the column of the record's id; its type is in
    the column `record_type`, or is `of_type` for a mart of one type (opportunity). -#}
{#- The records are found by name, not ref(): a second parent would have the test run (dbt's eager
    selection) with the first of them, before a mart built after a Python asset (similar_won_deals)
    exists. int_records_unioned is upstream of every mart's inputs and built with them. -#}
{% test only_current_records(model, record_id, of_type=none) %}
{%- set record_type = sql_string(of_type) if of_type else 'mart.record_type' %}
{%- set records = (graph.nodes.values() | selectattr('name', 'equalto', 'int_records_unioned')
    | list)[0].relation_name if execute else none %}
select {{ record_type }} as record_type, mart.{{ record_id }} as record_id, count(*) as mart_rows
from {{ model }} as mart
where
    mart.{{ record_id }} is not null
    and not exists (
        select 1 from {{ records }} as records
        where records.record_type = {{ record_type }} and records.record_id = mart.{{ record_id }}
    )
group by 1, 2
{% endtest %}

{#- Generic tests the project needs; dbt packages (dbt_utils) cannot be fetched on these machines. -#}

{#- Fails with the rows whose combination of columns is not unique. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Fails with the rows where `<column> <expression>` is not true (empty values pass). -#}
{% test expression_is_true(model, column_name, expression) %}
select *
from {{ model }}
where {{ column_name }} is not null and not ({{ column_name }} {{ expression }})
{% endtest %}

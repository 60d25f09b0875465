{#- Pieces of plain-English sentences, portable: "1 email", "3 emails", "20.5". -#}
{% macro count_of(expression, noun) -%}
    cast({{ expression }} as {{ dbt.type_string() }}) || ' {{ noun }}'
    || case when {{ expression }} = 1 then '' else 's' end
{%- endmacro %}

{% macro one_decimal(expression) -%}
    {{ return(adapter.dispatch('one_decimal', 'relanalytics')(expression)) }}
{%- endmacro %}

{% macro default__one_decimal(expression) -%}
    cast(round(cast({{ expression }} as {{ type_double() }}), 1) as {{ dbt.type_string() }})
{%- endmacro %}

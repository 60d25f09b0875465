{#- Pieces of plain-English sentences, portable: "1 email", "3 emails", "20.5". -#}
{% macro count_of(expression, noun) -%}
    cast({{ expression }} as {{ dbt.type_string() }}) || ' {{ noun }}'
    || case when {{ expression }} = 1 then '' else 's' end
{%- endmacro %}

{#- A figure to one decimal, as sentences show it. Rounded to 9 digits first: a mean summed in
    another order differs in its last bits, which would tip a value like x.x5 one way or the
    other between two builds of the same data. Then half away from zero as a decimal: the double
    nearest 4.85 is 4.8499999999999996, which DuckDB would round to 4.8 and Spark to 4.9. -#}
{% macro tenths(expression) -%}
    cast(round(cast(round(cast({{ expression }} as {{ type_double() }}), 9) as decimal(38, 9)), 1) as decimal(38, 1))
{%- endmacro %}

{% macro one_decimal(expression) -%}
    cast({{ tenths(expression) }} as {{ dbt.type_string() }})
{%- endmacro %}

{#- A number as a seller reads it: whole numbers without decimals, others with one. Whole is
    asked of the number as a double: Spark compares a decimal with its floor at the floor's scale
    (72.4 rounded to 72, so "72"); a double holds a figure of one decimal (tenths) exactly enough
    to tell it from its floor. -#}
{% macro number_text(expression) -%}
    {%- set value = 'cast(' ~ expression ~ ' as ' ~ type_double() ~ ')' -%}
    case
        when {{ value }} = floor({{ value }})
            then cast(cast({{ expression }} as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }})
        else {{ one_decimal(expression) }}
    end
{%- endmacro %}

{#- Engine-specific spellings behind adapter.dispatch, so that models stay portable
    (DuckDB today; another engine adds its `<adapter>__` variants where it spells them otherwise). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'relanalytics')()) }}
{%- endmacro %}

{% macro default__type_double() -%}double{%- endmacro %}

{#- The newest version of every record of a raw CRM table, deleted records removed. The ingest
    keeps one row per (key, modified_at); file name order breaks what ties remain. `scope`, a query
    of keys, keeps only those records (none: all), filtered before their versions are ranked. -#}
{% macro current_versions(relation, key, scope=none) -%}
    select *
    from (
        select
            versions.*,
            row_number() over (
                partition by {{ key }}
                order by modified_at desc, _source_file desc, _row_number desc
            ) as version_rank
        from {{ relation }} as versions
        where {{ in_scope(key, scope) }}
    ) as ranked
    where version_rank = 1 and not is_deleted
{%- endmacro %}

{#- The interpolated median (50th percentile) of an expression, as an aggregate. -#}
{% macro median(expression) -%}
    {{ return(adapter.dispatch('median', 'relanalytics')(expression)) }}
{%- endmacro %}

{% macro default__median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{#- Replace every match of a regular expression (RE2 / POSIX / Java syntax in common use). -#}
{% macro regexp_replace_all(expression, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'relanalytics')(expression, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}

{#- An aggregate: `value` on the row where the tuple `order_columns` is largest (`largest`) or
    smallest, among the rows where `condition` holds; null when none does. Ties of the whole tuple
    are the caller's to avoid. One pass of the aggregate, where a row_number window would sort
    every row. -#}
{% macro value_at_extreme(value, order_columns, largest, condition) -%}
    {{ return(adapter.dispatch('value_at_extreme', 'relanalytics')(value, order_columns, largest, condition)) }}
{%- endmacro %}

{% macro default__value_at_extreme(value, order_columns, largest, condition) -%}
    (array_agg({{ value }} order by
        {%- for column in order_columns %} {{ column }} {{ 'desc' if largest else 'asc' }}{{ ',' if not loop.last }}{% endfor %})
        filter (where {{ condition }}))[1]
{%- endmacro %}

{#- DuckDB: arg_max_null keeps a null value on that row (arg_max would skip to another row). -#}
{% macro duckdb__value_at_extreme(value, order_columns, largest, condition) -%}
    {{ 'arg_max_null' if largest else 'arg_min_null' }}({{ value }}, ({{ order_columns | join(', ') }})) filter (where {{ condition }})
{%- endmacro %}

{#- In a select list: one row per day from `first_day` to `last_day` (dates, both included). -#}
{% macro each_day(first_day, last_day) -%}
    {{ return(adapter.dispatch('each_day', 'relanalytics')(first_day, last_day)) }}
{%- endmacro %}

{% macro default__each_day(first_day, last_day) -%}
    cast(unnest(generate_series(cast({{ first_day }} as timestamp), cast({{ last_day }} as timestamp), interval 1 day)) as date)
{%- endmacro %}

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

{#- Spark: regexp_replace replaces every match. -#}
{% macro spark__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, {{ pattern }}, {{ replacement }})
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

{#- A timestamp as whole microseconds since 1970: a number, which a window's RANGE frame can
    count back from ("1 preceding": strictly earlier). -#}
{% macro epoch_microseconds(timestamp) -%}
    {{ return(adapter.dispatch('epoch_microseconds', 'relanalytics')(timestamp)) }}
{%- endmacro %}

{% macro default__epoch_microseconds(timestamp) -%}
    epoch_us({{ timestamp }})
{%- endmacro %}

{% macro spark__epoch_microseconds(timestamp) -%}
    unix_micros({{ timestamp }})
{%- endmacro %}

{#- In a select list: one row per day from `first_day` to `last_day` (dates, both included). -#}
{% macro each_day(first_day, last_day) -%}
    {{ return(adapter.dispatch('each_day', 'relanalytics')(first_day, last_day)) }}
{%- endmacro %}

{% macro default__each_day(first_day, last_day) -%}
    cast(unnest(generate_series(cast({{ first_day }} as timestamp), cast({{ last_day }} as timestamp), interval 1 day)) as date)
{%- endmacro %}

{#- Spark: sequence() refuses a last day before the first, where DuckDB's series is empty: the
    series runs to the later of the two, then keeps the days up to `last_day`. -#}
{% macro spark__each_day(first_day, last_day) -%}
    explode(filter(
        sequence(cast({{ first_day }} as date), greatest(cast({{ first_day }} as date), cast({{ last_day }} as date)), interval 1 day),
        each -> each <= cast({{ last_day }} as date)
    ))
{%- endmacro %}

{#- Spark: max_by over the tuple as a struct (compared field by field), which keeps a null value
    on that row. -#}
{% macro spark__value_at_extreme(value, order_columns, largest, condition) -%}
    {{ 'max_by' if largest else 'min_by' }}({{ value }}, struct({{ order_columns | join(', ') }})) filter (where {{ condition }})
{%- endmacro %}

{#- Spark: the contracts' column types are spelled as DuckDB names them; Spark has no unbounded
    `varchar` (it asks for a length) and calls that type `string`. dbt casts to each declared type
    to check a contract, through this macro. -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ 'string' if type | trim | lower == 'varchar' else type }})
{%- endmacro %}

{#- Spark: Parquet tables enforce no constraint (dbt-spark adds them to Delta tables only). A model
    with an enforced contract has its rows checked against its not_null, check and primary_key
    constraints once built; where a row breaks one, the table is dropped and the build fails, as
    on DuckDB, whose table refuses the row. -#}
{% macro spark__persist_constraints(relation, model) -%}
    {%- if not config.get('contract').enforced -%}{{ return(none) }}{%- endif -%}
    {#- Each rule, by name: how many rows break it, as an aggregate over the table. -#}
    {%- set broken = {} -%}
    {%- for column in model.columns.values() -%}
        {%- for constraint in column.constraints -%}
            {%- if constraint.type == 'not_null' -%}
                {%- do broken.update({column.name ~ ' not null': 'count_if(' ~ column.name ~ ' is null)'}) -%}
            {%- elif constraint.type == 'check' -%}
                {%- do broken.update({constraint.expression: 'count_if(not (' ~ constraint.expression ~ '))'}) -%}
            {%- elif constraint.type == 'primary_key' -%}
                {%- do broken.update({column.name ~ ' a key': 'count(*) - count(distinct ' ~ column.name ~ ')'}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- for constraint in model.constraints -%}
        {%- if constraint.type == 'check' -%}
            {%- do broken.update({constraint.expression: 'count_if(not (' ~ constraint.expression ~ '))'}) -%}
        {%- elif constraint.type == 'primary_key' -%}
            {%- set key = constraint.columns | join(', ') -%}
            {%- do broken.update({'(' ~ key ~ ') a key': 'count(*) - count(distinct ' ~ key ~ ')'}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not broken -%}{{ return(none) }}{%- endif -%}
    {%- set names = broken.keys() | list -%}
    {%- set counts = [] -%}
    {%- for name in names %}{% do counts.append(broken[name]) %}{% endfor -%}
    {%- set found = run_query('select ' ~ counts | join(', ') ~ ' from ' ~ relation).rows[0] -%}
    {%- set failures = [] -%}
    {%- for name in names -%}
        {%- if found[loop.index0] > 0 -%}
            {%- do failures.append(name ~ ' (' ~ found[loop.index0] ~ ' rows break it)') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if failures -%}
        {%- do adapter.drop_relation(relation) -%}
        {{ exceptions.raise_compiler_error(relation ~ ' breaks its contract: ' ~ failures | join('; ')) }}
    {%- endif -%}
{%- endmacro %}

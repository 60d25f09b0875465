{#- The one incremental mechanism of the project (docs/incremental.md): the materialization
    `scoped_incremental`. A model declares, in its config:

    - scope: the name of a macro `scope(previous)` returning a query of what a night recomputes
      (its `scope_columns`), or none to build every row; `previous` is the last build's
      {'since': SQL timestamp of the newest load it saw, 'as_of_day': 'YYYY-MM-DD'}.
    - scope_columns: the scope's columns and types, a leading part of the table's key, and
      `from_day` last when the table has days (`day_column`): a record is recomputed from that day.
    - settings: the vars its rows depend on; other values rebuild it in full.
    - stale_rows (optional): the name of a macro `stale_rows(alias)`, a condition on the rows a
      night drops besides its scope.
    - changes_for: the models that read what it changed (each gets its own rows of the log);
      log: what a night logs for them, 'rows' (the keys whose rows differ from those before) or
      'scope' (its scope); log_full: what a build of every row within the table logs,
      'everything' (one row of nulls) or 'rows'; log_keys: the columns of a change (default the
      scope's keys); log_day: the day of a row, the first of which is logged with its change.

    A build is every row when: the table is new, --full-refresh, no earlier build is recorded in
    incremental_builds, the settings differ, the as-of date is earlier, a model it reads logged a
    build of every row for it, or the scope macro says so. Then it is a plain CREATE TABLE AS.
    Otherwise, in one transaction: store the scope, delete the rows in it, insert the model's rows
    (the model reads only its scope, through incremental_scope()). Either way it then logs its
    changes for its readers, records what it wrote (<model>_writes), deletes the log rows it read
    and records the build. -#}

{% materialization scoped_incremental, default %}
    {%- set target = this.incorporate(type='table') -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- set scope = scope_query() -%}
    {%- set scope_table = scoped_relation('scope') -%}
    {%- set previous_rows = scoped_relation('previous') -%}
    {%- set log_full = config.get('log_full', 'everything') -%}
    {%- set keep_previous = config.get('changes_for') and (
        (scope is not none and config.get('log') == 'rows')
        or (scope is none and existing is not none and not should_full_refresh() and log_full == 'rows')
    ) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- for statement_sql in create_bookkeeping_tables() %}{% do run_query(statement_sql) %}{% endfor -%}

    {%- if scope is not none -%}
        {%- do run_query('create or replace table ' ~ scope_table ~ ' as ' ~ scope) -%}
        {%- if keep_previous -%}
            {%- do run_query('create or replace table ' ~ previous_rows ~ ' as ' ~ stored_scope_rows()) -%}
        {%- endif -%}
        {%- do run_query('delete from ' ~ target ~ ' as kept using ' ~ scope_table ~ ' as scope where '
            ~ in_stored_scope('kept', 'scope')) -%}
        {%- set stale_rows = config.get('stale_rows') -%}
        {%- if stale_rows -%}
            {%- do run_query('delete from ' ~ target ~ ' as kept where ' ~ context[stale_rows]('kept')) -%}
        {%- endif -%}
        {%- set build_sql = 'insert into ' ~ target ~ ' by name ' ~ sql -%}
    {%- else -%}
        {%- if keep_previous -%}
            {%- do run_query('create or replace table ' ~ previous_rows ~ ' as select * from ' ~ target) -%}
        {%- endif -%}
        {%- if existing is not none -%}{%- do adapter.drop_relation(existing) -%}{%- endif -%}
        {%- set build_sql = create_table_as(False, target, sql) -%}
    {%- endif -%}
    {%- call statement('main') -%}{{ build_sql }}{%- endcall -%}

    {%- for statement_sql in scoped_bookkeeping(scope, keep_previous) -%}
        {%- do run_query(statement_sql) -%}
    {%- endfor -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {%- do adapter.commit() -%}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target]}) }}
{% endmaterialization %}

{#- Spark (Parquet tables: no row deletes, no transactions) builds every row of every incremental
    model at every build, as a table materialization does, and records it in <model>_writes as a
    build of every row (docs/incremental.md#on-spark). It keeps no build state: previous_build()
    is none, so the model's SQL reads everything. -#}
{% materialization scoped_incremental, adapter='spark' %}
    {%- set target = this.incorporate(type='table') -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- set writes = writes_table(this, generate_schema_name('intermediate')) -%}
    {{ run_hooks(pre_hooks) }}
    {%- if existing is not none -%}{%- do adapter.drop_relation(existing) -%}{%- endif -%}
    {%- call statement('main') -%}{{ create_table_as(False, target, sql) }}{%- endcall -%}
    {%- do persist_docs(target, model) -%}
    {%- do persist_constraints(target, model) -%}
    {%- do run_query('drop table if exists ' ~ writes) -%}
    {%- do run_query('create table ' ~ writes ~ ' using parquet as ' ~ writes_query(none, none)) -%}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [target]}) }}
{% endmaterialization %}

{#- The state of every build (one row per model) and the log of changes (rows addressed to the
    model that reads them; a row of nulls: recompute everything). -#}
{% macro incremental_builds() -%}
    {{ return(api.Relation.create(
        database=this.database, schema=generate_schema_name('intermediate'), identifier='incremental_builds'
    )) }}
{%- endmacro %}

{% macro incremental_changes() -%}
    {{ return(api.Relation.create(
        database=this.database, schema=generate_schema_name('intermediate'), identifier='incremental_changes'
    )) }}
{%- endmacro %}

{% macro create_bookkeeping_tables() -%}
    {{ return([
        'create table if not exists ' ~ incremental_builds()
            ~ ' (model varchar, loaded_through timestamp, as_of_date date, settings varchar)',
        'create table if not exists ' ~ incremental_changes() ~ ' (for_model varchar, logged_by varchar,'
            ~ ' activity_id varchar, record_type varchar, record_id varchar, changed_from date)',
    ]) }}
{%- endmacro %}

{#- A scratch table of the model's build, `intermediate.<model>__<suffix>` (never in the marts). -#}
{% macro scoped_relation(suffix) -%}
    {{ return(api.Relation.create(
        database=this.database, schema=generate_schema_name('intermediate'), identifier=this.identifier ~ '__' ~ suffix
    )) }}
{%- endmacro %}

{% macro scoped_settings_fingerprint() -%}
    {%- set settings = {} -%}
    {%- for name in config.get('settings', []) -%}
        {%- do settings.update({name: org_domains() if name == 'org_domains'
            else run_var(name) if name == 'privacy_rules' else var(name)}) -%}
    {%- endfor -%}
    {{ return(local_md5(tojson(settings, sort_keys=true))) }}
{%- endmacro %}

{#- The last build of this model, {'since', 'as_of_day'}, when this build may keep its rows; else
    none. Unit tests have no relation of their own (`this`): they take the full path. -#}
{% macro previous_build() -%}
    {{ return(adapter.dispatch('previous_build', 'relanalytics')()) }}
{%- endmacro %}

{% macro spark__previous_build() -%}
    {{ return(none) }}
{%- endmacro %}

{% macro default__previous_build() -%}
    {%- if not (execute and this is not none) or should_full_refresh() %}{{ return(none) }}{% endif -%}
    {%- for table in [this, incremental_builds(), incremental_changes()] -%}
        {%- if adapter.get_relation(table.database, table.schema, table.identifier) is none -%}
            {{ return(none) }}
        {%- endif -%}
    {%- endfor -%}
    {%- set rows = run_query(
        "select cast(loaded_through as varchar), cast(as_of_date as varchar), settings, "
        ~ "(select count(*) from " ~ incremental_changes() ~ " where for_model = '" ~ this.identifier
        ~ "' and activity_id is null and record_id is null) from " ~ incremental_builds()
        ~ " where model = '" ~ this.identifier ~ "'"
    ).rows -%}
    {%- if rows | length != 1 or rows[0][0] is none or rows[0][2] != scoped_settings_fingerprint()
        or rows[0][1] > as_of_day() or rows[0][3] > 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return({'since': "cast('" ~ rows[0][0] ~ "' as " ~ dbt.type_timestamp() ~ ")", 'as_of_day': rows[0][1]}) }}
{%- endmacro %}

{#- The query of this build's scope, or none: every row. Worked out once per build, with the
    queries it takes: dbt asks first as it compiles the model's SQL (incremental_scope), then the
    materialization as it runs the model; the answer is kept in dbt's graph of the project, the one
    object both see during an invocation (nothing of it is written anywhere). -#}
{% macro scope_query() -%}
    {%- set scopes = graph.setdefault('scoped_incremental_scopes', {}) if execute else {} -%}
    {%- if model.unique_id not in scopes -%}
        {%- set previous = previous_build() -%}
        {%- do scopes.update({model.unique_id:
            none if previous is none else context[config.require('scope')](previous)}) -%}
    {%- endif -%}
    {{ return(scopes[model.unique_id]) }}
{%- endmacro %}

{#- For the model's SQL: a query of the scope stored for this build, or none (every row). -#}
{% macro incremental_scope() -%}
    {%- if scope_query() is none %}{{ return(none) }}{% endif -%}
    {{ return('select * from ' ~ scoped_relation('scope')) }}
{%- endmacro %}

{% macro scope_keys() -%}
    {{ return(config.require('scope_columns').keys() | reject('equalto', 'from_day') | list) }}
{%- endmacro %}

{#- The columns of a change logged (`log_keys`, default the scope's keys). -#}
{% macro log_keys() -%}
    {{ return(config.get('log_keys') or scope_keys()) }}
{%- endmacro %}

{#- A row of the table (as `alias`) is in the stored scope's row `scope`: its keys match and, for
    a table with days, its day is on or after the scope's from_day. Rows are matched to the scope
    by a join (each key is once in the scope), not `exists`: DuckDB evaluates a correlated
    `exists` with a day condition far more slowly than the join. -#}
{% macro in_stored_scope(alias, scope) -%}
    {%- for key in scope_keys() %}{{ ' and ' if not loop.first }}{{ scope }}.{{ key }} = {{ alias }}.{{ key }}{% endfor -%}
    {%- if config.get('day_column') %} and {{ alias }}.{{ config.get('day_column') }} >= {{ scope }}.from_day{% endif -%}
{%- endmacro %}

{#- A query of the table's rows in the stored scope. -#}
{% macro stored_scope_rows() -%}
    select kept.* from {{ this }} as kept
    inner join {{ scoped_relation('scope') }} as scope on {{ in_stored_scope('kept', 'scope') }}
{%- endmacro %}

{#- The log rows of keys whose rows differ between `before` and `after` (queries), each with the
    first day of those rows (`log_day`, an expression over the table's columns). -#}
{% macro changed_keys(before, after) -%}
    {%- set day = config.get('log_day') -%}
    with before as ({{ before }}), after as ({{ after }})
    select {{ log_keys() | join(', ') }}, {{ 'min(' ~ day ~ ')' if day else 'cast(null as date)' }} as changed_from
    from ((select * from before except all select * from after)
        union all (select * from after except all select * from before)) as changed
    group by {{ log_keys() | join(', ') }}
{%- endmacro %}

{#- After the model's rows are in: the statements of the bookkeeping, in order. -#}
{% macro scoped_bookkeeping(scope, keep_previous) -%}
    {%- set scope_table = scoped_relation('scope') -%}
    {%- set previous_rows = scoped_relation('previous') -%}
    {%- set keys = log_keys() -%}
    {%- set log_columns = ['activity_id', 'record_type', 'record_id'] -%}
    {%- if scope is not none and config.get('log') == 'scope' -%}
        {%- set logged = 'select * from ' ~ scope_table -%}
    {%- elif scope is not none -%}
        {%- set logged = changed_keys('select * from ' ~ previous_rows, stored_scope_rows()) -%}
    {%- elif keep_previous -%}
        {%- set logged = changed_keys('select * from ' ~ previous_rows, 'select * from ' ~ this) -%}
    {%- else -%}
        {%- set logged = 'select ' ~ (['null'] * (keys | length + 1)) | join(', ') -%}
    {%- endif -%}
    {%- set log_values = [] -%}
    {%- for column in log_columns -%}
        {%- do log_values.append(column if column in keys else 'null') -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {#- One statement for every reader: the changes are worked out once. -#}
    {%- set readers = [] -%}
    {%- for reader in config.get('changes_for', []) -%}
        {%- do readers.append('select ' ~ sql_string(reader) ~ ' as for_model') -%}
    {%- endfor -%}
    {%- if readers -%}
        {%- do statements.append('insert into ' ~ incremental_changes() ~ ' select readers.for_model, '
            ~ sql_string(this.identifier) ~ ', ' ~ log_values | join(', ') ~ ', changed_from from ('
            ~ logged ~ ') as logged (' ~ keys | join(', ') ~ ', changed_from) cross join ('
            ~ readers | join(' union all ') ~ ') as readers') -%}
    {%- endif -%}
    {%- set writes = writes_table(this, generate_schema_name('intermediate')) -%}
    {#- The build whose rows a night kept: the one its writes name. -#}
    {%- set kept_build = none -%}
    {%- if scope is not none and adapter.get_relation(writes.database, writes.schema, writes.identifier) is not none -%}
        {%- set kept_build = run_query('select max(build_id) from ' ~ writes).rows[0][0] -%}
    {%- endif -%}
    {%- do statements.append('create or replace table ' ~ writes ~ ' as '
        ~ writes_query(scope_table if scope is not none else none, kept_build)) -%}
    {%- do statements.append('delete from ' ~ incremental_changes() ~ ' where for_model = ' ~ sql_string(this.identifier)) -%}
    {%- do statements.append('delete from ' ~ incremental_builds() ~ ' where model = ' ~ sql_string(this.identifier)) -%}
    {%- do statements.append('insert into ' ~ incremental_builds() ~ ' ' ~ scoped_build_state()) -%}
    {%- do statements.append('drop table if exists ' ~ scope_table) -%}
    {%- do statements.append('drop table if exists ' ~ previous_rows) -%}
    {{ return(statements) }}
{%- endmacro %}

{#- The rows of <model>_writes: the stored scope (`scope_table`), or a row of nulls after a build
    of every row (none); with this build's id and that of the build whose rows it kept. -#}
{% macro writes_query(scope_table, kept_build) -%}
    {%- set written = [] -%}
    {%- for column, type in config.require('scope_columns').items() -%}
        {%- set name = 'written_from' if column == 'from_day' else column -%}
        {%- do written.append((column if scope_table else dbt.cast('null', type)) ~ ' as ' ~ name) -%}
    {%- endfor -%}
    {%- do written.append(sql_string(invocation_id) ~ ' as build_id') -%}
    {%- do written.append((sql_string(kept_build) if kept_build else dbt.cast('null', 'varchar'))
        ~ ' as previous_build_id') -%}
    {{ return('select ' ~ written | join(', ') ~ (' from ' ~ scope_table if scope_table else '')) }}
{%- endmacro %}

{#- This build's state: the newest load of the raw tables the models read (a night finds what it
    loaded since through it), its as-of date and settings. -#}
{% macro scoped_build_state() -%}
    select
        {{ sql_string(this.identifier) }},
        (
            select max(loaded_at) from (
                {%- for entity in activity_inputs() %}
                {{- ' union all' if not loop.first }}
                select max(_loaded_at) as loaded_at from {{ source('crm', entity) }}
                {%- endfor %}
                {%- if removed_rows() is not none %}
                union all
                select max(removed_at) from {{ removed_rows() }}
                {%- endif %}
            ) as loads
        ),
        {{ as_of_date() }},
        {{ sql_string(scoped_settings_fingerprint()) }}
{%- endmacro %}

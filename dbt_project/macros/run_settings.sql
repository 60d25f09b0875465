{#- A var whose value is the run's (as_of_date, window_start, window_end, org_domains, privacy_rules):
    its value from --vars (a `dbt build` by hand), else from the JSON object in the environment
    variable RELANALYTICS_RUN_VARS, where Dagster passes a run's values. Not as --vars: any change
    to those makes dbt parse the whole project again, and they change every night. The variable is
    read only as the models run, never while dbt parses them (`execute` is false then), so nothing
    dbt parses depends on the run and every run reuses the last one's parse. -#}
{% macro run_var(name) -%}
    {%- set value = var(name, '') -%}
    {%- if not value and execute -%}
        {%- set value = fromjson(env_var('RELANALYTICS_RUN_VARS', '{}')).get(name) -%}
    {%- endif -%}
    {{ return(value or '') }}
{%- endmacro %}

{#- The run's as-of date D as a SQL date literal. -#}
{% macro as_of_date() -%}
    cast('{{ as_of_day() }}' as date)
{%- endmacro %}

{#- D as YYYY-MM-DD: the as_of_date var, else the partition window's last day, else
    RELANALYTICS_AS_OF, else yesterday (UTC). None while dbt parses (see run_var). -#}
{% macro as_of_day() -%}
    {%- if not execute %}{{ return(none) }}{% endif -%}
    {%- set configured = run_var('as_of_date') -%}
    {%- set window_end = window_day('window_end') -%}
    {%- set window_start = window_day('window_start') -%}
    {%- if window_start and window_end and window_start >= window_end -%}
        {{ exceptions.raise_compiler_error("window_start (" ~ window_start ~ ") must be before window_end (" ~ window_end ~ ", exclusive)") }}
    {%- endif -%}
    {%- if not configured and window_end -%}
        {%- set configured = (modules.datetime.date.fromisoformat(window_end) - modules.datetime.timedelta(days=1)).isoformat() -%}
    {%- endif -%}
    {%- set configured = configured or env_var('RELANALYTICS_AS_OF', '') -%}
    {%- if not configured -%}
        {%- set today = modules.datetime.datetime.now(modules.pytz.utc).date() -%}
        {%- set configured = (today - modules.datetime.timedelta(days=1)).isoformat() -%}
    {%- endif -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', configured | string) -%}
        {{ exceptions.raise_compiler_error("as_of_date must be YYYY-MM-DD, got '" ~ configured ~ "'") }}
    {%- endif -%}
    {{ return(configured | string) }}
{%- endmacro %}

{#- The end of day D (exclusive): what happened before it counts, what is scheduled from it on is upcoming. -#}
{% macro as_of_end() -%}
    cast({{ dbt.dateadd('day', 1, as_of_date()) }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The configured organisation domains as a list of lower-case strings. -#}
{% macro org_domains() -%}
    {%- if not execute %}{{ return([]) }}{% endif -%}
    {%- set configured = run_var('org_domains') or env_var('RELANALYTICS_ORG_DOMAINS', '') -%}
    {%- set domains = [] -%}
    {%- for part in (configured | string).split(',') -%}
        {%- set domain = part | trim | lower -%}
        {%- if domain.startswith('@') %}{% set domain = domain[1:] %}{% endif -%}
        {%- if domain and domain not in domains %}{% do domains.append(domain) %}{% endif -%}
    {%- endfor -%}
    {{ return(domains) }}
{%- endmacro %}

{#- A partition window's bound ('window_start' inclusive, 'window_end' exclusive) as YYYY-MM-DD,
    checked; none when the var is not set. -#}
{% macro window_day(name) -%}
    {%- set value = run_var(name) -%}
    {%- if value and not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value | string) -%}
        {{ exceptions.raise_compiler_error(name ~ " must be YYYY-MM-DD, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return((value | string) if value else none) }}
{%- endmacro %}

{#- A value as a SQL string literal: quotes doubled, nothing else special (DuckDB's and standard
    SQL's strings keep backslashes as they are). Every setting that reaches SQL as text goes
    through it. -#}
{% macro sql_string(value) -%}
    {{- adapter.dispatch('sql_string', 'relanalytics')(value) -}}
{%- endmacro %}

{% macro default__sql_string(value) -%}
    {{- "'" ~ (value | string | replace("'", "''")) ~ "'" -}}
{%- endmacro %}

{#- Spark reads a backslash in a string as an escape (`\s` would reach a regular expression as `s`),
    and two quotes as two strings: both are escaped with a backslash. -#}
{% macro spark__sql_string(value) -%}
    {{- "'" ~ (value | string | replace("\\", "\\\\") | replace("'", "\\'")) ~ "'" -}}
{%- endmacro %}

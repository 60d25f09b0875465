{#- The run's as-of date D as a SQL date literal: var, else RELANALYTICS_AS_OF, else yesterday (UTC). -#}
{% macro as_of_date() -%}
    {%- set configured = var('as_of_date', '') or env_var('RELANALYTICS_AS_OF', '') -%}
    {%- if not configured -%}
        {%- set today = modules.datetime.datetime.now(modules.pytz.utc).date() -%}
        {%- set configured = (today - modules.datetime.timedelta(days=1)).isoformat() -%}
    {%- endif -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', configured | string) -%}
        {{ exceptions.raise_compiler_error("as_of_date must be YYYY-MM-DD, got '" ~ configured ~ "'") }}
    {%- endif -%}
    cast('{{ configured }}' as date)
{%- endmacro %}

{#- The end of day D (exclusive): what happened before it counts, what is scheduled from it on is upcoming. -#}
{% macro as_of_end() -%}
    cast({{ dbt.dateadd('day', 1, as_of_date()) }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The configured organisation domains as a list of lower-case strings. -#}
{% macro org_domains() -%}
    {%- set configured = var('org_domains', '') or env_var('RELANALYTICS_ORG_DOMAINS', '') -%}
    {%- set domains = [] -%}
    {%- for part in (configured | string).split(',') -%}
        {%- set domain = part | trim | lower -%}
        {%- if domain.startswith('@') %}{% set domain = domain[1:] %}{% endif -%}
        {%- if domain and domain not in domains %}{% do domains.append(domain) %}{% endif -%}
    {%- endfor -%}
    {{ return(domains) }}
{%- endmacro %}

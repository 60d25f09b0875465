{#- An email subject reduced to what a reply keeps of it: lower case, reply and forward prefixes
    (var reply_prefixes, with ':' or '：', repeated) stripped, runs of spaces collapsed. -#}
{% macro normalized_subject(subject) -%}
    {%- set prefixes = [] -%}
    {%- for prefix in var('reply_prefixes') %}{% do prefixes.append(modules.re.escape(prefix | string)) %}{% endfor -%}
    nullif(trim({{ regexp_replace_all(
        regexp_replace_all('lower(' ~ subject ~ ')', sql_string('^\\s*((' ~ prefixes | join('|') ~ ')\\s*[:：]\\s*)+'), sql_string('')),
        sql_string('\\s+'), sql_string(' ')
    ) }}), '')
{%- endmacro %}

{#- An email subject reduced to what a reply keeps of it: lower case, reply and forward prefixes
    (var reply_prefixes, with ':' or '：', repeated) stripped, runs of spaces collapsed. -#}
{% macro normalized_subject(subject) -%}
    {%- set prefixes = var('reply_prefixes') | join('|') -%}
    nullif(trim({{ regexp_replace_all(
        regexp_replace_all('lower(' ~ subject ~ ')', "'^\\s*((" ~ prefixes ~ ")\\s*[:：]\\s*)+'", "''"),
        "'\\s+'", "' '"
    ) }}), '')
{%- endmacro %}

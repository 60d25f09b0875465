{#- Layers live in schemas named exactly staging, intermediate and marts (the BI contract names
    `marts`), not dbt's default <target_schema>_<custom_schema>. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}

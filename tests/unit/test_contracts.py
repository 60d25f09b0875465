"""docs/contracts.md lists every table the Python code and dbt share, so it cannot fall behind.

The names are collected from the code as it is, parsed, never run:
- Python: every `schema.table` in the package's strings (docstrings left out) in a schema of
  the warehouse; an f-string's field reads as `*` (`f"crm.{entity.name}"` is `crm.*`).
- dbt: the sources' tables; the relations macros create or look up (`api.Relation.create`,
  `adapter.get_relation`), by their schema and identifier, a part that is no literal read as `*`
  (`this.identifier ~ '_writes'` is `*_writes`); `schema.table` after FROM, JOIN, INTO or TABLE
  in the SQL of models and macros.
- The writes logs that a mart's `meta.writes` names (expectation suites, dbt YAML).
- The dbt vars the run sets and the environment variables dbt reads.

An entry of the doc is a name in backticks in a heading or in the first cell of a table row.
Its placeholders stand for names the code knows: `<entity>` a raw contract entity, `<model>` a
dbt model, `<mart>` a model of the marts. A name the code builds with `*` needs an entry with a
placeholder there; a plain name, an entry that spells it or whose placeholders cover it.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

import pytest
import yaml

from relanalytics_pipeline.raw_contract import ENTITIES

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "contracts.md"
PACKAGE = ROOT / "relanalytics_pipeline"
DBT = ROOT / "dbt_project"

# The warehouse's schemas: the ingest's, the model's, the quality checks' and dbt's layers.
SCHEMAS = ("crm", "ingest", "quarantine", "learn", "quality", "staging", "intermediate", "marts")
TABLE_NAME = re.compile(rf"(?<![\w./*-])({'|'.join(SCHEMAS)})\.([\w*]+)")
# Strings that look like a table and are not one.
NOT_TABLES = {"marts.duckdb": "the published DuckDB file's name"}
SQL_TABLE = re.compile(
    rf"\b(?:from|join|into|table|exists)\s+({'|'.join(SCHEMAS)})\.(\w+)", re.IGNORECASE
)
JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
SQL_COMMENT = re.compile(r"--[^\n]*")
# The arguments of a call, with one level of parentheses inside (`ref('x').schema`).
RELATION_CALL = re.compile(
    r"(?:api\.Relation\.create|adapter\.get_relation)\(((?:[^()]|\([^()]*\))*)\)"
)
MACRO = re.compile(r"\{%-?\s*macro\s+(\w+)\(([^)]*)\)(.*?)\{%-?\s*endmacro", re.DOTALL)
PLACEHOLDER = re.compile(r"<(\w+)>")


def python_strings(tree: ast.AST) -> list[str]:
    """The module's strings but its docstrings (and other bare strings), f-string fields as `*`."""
    strings: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant | ast.JoinedStr):
            return
        if isinstance(node, ast.JoinedStr):
            strings.append(
                "".join(
                    part.value if isinstance(part, ast.Constant) else "*" for part in node.values
                )
            )
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.append(node.value)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return strings


def python_tables() -> dict[str, Path]:
    """The tables the package names, each with a file naming it."""
    tables = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for text in python_strings(ast.parse(path.read_text(encoding="utf-8"))):
            for schema, table in TABLE_NAME.findall(text):
                if f"{schema}.{table}" not in NOT_TABLES:
                    tables[f"{schema}.{table}"] = path
    return tables


def dbt_files(extension: str) -> list[Path]:
    """The dbt project's files of that extension, its build artefacts left out."""
    files = DBT.rglob(f"*.{extension}")
    return sorted(p for p in files if "target" not in p.relative_to(DBT).parts)


@functools.cache
def dbt_yaml() -> dict[Path, dict]:
    """The dbt project's YAML files (with libyaml where installed: the pure parser takes 0.5 s)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return {
        path: yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
        for path in dbt_files("yml")
    }


def dbt_sources() -> dict[str, Path]:
    tables = {}
    for path, content in dbt_yaml().items():
        for source in content.get("sources", []):
            schema = source.get("schema", source["name"])
            tables |= {f"{schema}.{table['name']}": path for table in source.get("tables", [])}
    return tables


def jinja_literal_parts(expression: str, literals: dict[str, list[str]]) -> list[str]:
    """The values of a Jinja expression joined with `~`: literals as they are, a parameter of the
    macro with its literal values at the call sites (`literals`), anything else as `*`."""
    values = [""]
    for part in (p.strip() for p in expression.split("~")):
        quoted = re.fullmatch(r"'(\w*)'", part)
        options = [quoted[1]] if quoted else literals.get(part, ["*"])
        values = [value + option for value in values for option in options]
    return [re.sub(r"\*+", "*", value) for value in values]


def relation_argument(arguments: str, name: str) -> str | None:
    found = re.search(rf"\b{name}\s*=\s*([^,]+)", arguments)
    return found[1].strip() if found else None


def dbt_relations() -> dict[str, Path]:
    """The tables dbt's macros create or look up beside the models, and those their SQL names."""
    sql = {
        path: JINJA_COMMENT.sub("", path.read_text(encoding="utf-8")) for path in dbt_files("sql")
    }
    everything = "\n".join(sql.values())
    tables = {}
    for path, text in sql.items():
        for macro, parameters, body in MACRO.findall(text):
            # A parameter's literal values where the macro is called with one first: `suffix` of
            # scoped_relation('scope').
            first = parameters.split(",")[0].split("=")[0].strip()
            literals = {first: re.findall(rf"\b{macro}\(\s*'(\w+)'", everything)} if first else {}
            for arguments in RELATION_CALL.findall(body):
                identifier = relation_argument(arguments, "identifier")
                if identifier is None:  # a relation passed on by its parts: found where made
                    continue
                schema = relation_argument(arguments, "schema") or "*"
                schema = re.fullmatch(r"'(\w+)'", schema)[1] if schema.startswith("'") else "*"
                for table in jinja_literal_parts(identifier, literals):
                    tables[f"{schema}.{table}"] = path
        for schema, table in SQL_TABLE.findall(SQL_COMMENT.sub("", text)):
            tables[f"{schema}.{table}"] = path
    return tables


def writes_logs() -> dict[str, Path]:
    """The `meta.writes` of the marts' suites and of dbt models."""
    logs = {}
    for path in sorted((ROOT / "expectations").rglob("*.json")):
        logs[json.loads(path.read_text(encoding="utf-8")).get("meta", {}).get("writes")] = path
    for path, content in dbt_yaml().items():
        if "models" not in path.relative_to(DBT).parts:
            continue  # dbt_project.yml's `models` configures folders
        for model in content.get("models", []):
            meta = {**model.get("meta", {}), **model.get("config", {}).get("meta", {})}
            logs[meta.get("writes")] = path
    logs.pop(None, None)
    return logs


def run_vars() -> dict[str, Path]:
    """The vars the Dagster dbt asset sets from the run (RUN_VARS in defs/transform/assets.py)."""
    path = PACKAGE / "defs" / "transform" / "assets.py"
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["RUN_VARS"]:
            return dict.fromkeys(ast.literal_eval(node.value), path)
    raise AssertionError(f"RUN_VARS not found in {path}")


def dbt_environment() -> dict[str, Path]:
    return {
        name: path
        for path in [*dbt_files("sql"), *dbt_files("yml")]
        for name in re.findall(r"env_var\(\s*'(\w+)'", path.read_text(encoding="utf-8"))
    }


def placeholder_names() -> dict[str, list[str]]:
    models = [p.stem for p in dbt_files("sql") if "models" in p.relative_to(DBT).parts]
    marts = [p.stem for p in (DBT / "models" / "marts").glob("*.sql")]
    return {"entity": list(ENTITIES), "model": models, "mart": marts}


def doc_entries(text: str) -> set[str]:
    """The names in backticks in the doc's headings and in the first cells of its tables."""
    entries = set()
    for line in text.splitlines():
        if line.startswith("#"):
            entries |= set(re.findall(r"`([^`]+)`", line))
        elif line.startswith("|"):
            entries |= set(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return entries


def documented(name: str, entries: set[str]) -> bool:
    names = placeholder_names()
    for entry in entries:
        unknown = set(PLACEHOLDER.findall(entry)) - set(names)
        assert not unknown, f"{entry}: the test knows no placeholder <{unknown.pop()}>"
        if "*" in name:
            # A name the code builds: the entry must say what stands there.
            entry_schema, _, entry_table = PLACEHOLDER.sub("*", entry).partition(".")
            schema, _, table = name.partition(".")
            if schema in ("*", entry_schema) and table == entry_table:
                return True
        else:
            spelled = "".join(
                f"(?:{'|'.join(map(re.escape, names[part]))})" if i % 2 else re.escape(part)
                for i, part in enumerate(PLACEHOLDER.split(entry))
            )
            if re.fullmatch(spelled, name):
                return True
    return False


@functools.cache
def shared_names() -> dict[str, str]:
    """Every name the doc must list, with a file that names it."""
    collected = [python_tables, dbt_sources, dbt_relations, writes_logs, run_vars, dbt_environment]
    return {
        name: str(path.relative_to(ROOT))
        for collect in collected
        for name, path in collect().items()
    }


def test_every_shared_table_var_and_variable_has_an_entry():
    entries = doc_entries(DOC.read_text(encoding="utf-8"))
    missing = [
        f"{name} (in {where})"
        for name, where in sorted(shared_names().items())
        if not documented(name, entries)
    ]
    assert not missing, (
        "Missing from docs/contracts.md; give each an entry (who writes it, who reads it, grain, "
        f"columns, lifecycle): {', '.join(missing)}"
    )


@pytest.mark.parametrize(
    "name",
    [
        "crm.activities",  # a dbt source
        "ingest.removed_rows",  # looked up by dbt's incremental_activities.sql
        "ingest.outranked_*",  # f"ingest.outranked_{entity.name}" in defs/ingest/load.py
        "learn.won_deal_neighbours",  # written by defs/learn, a dbt source
        "*.*_writes",  # writes_table in generic_tests.sql
        "*.*__scope",  # scoped_relation('scope') in scoped_incremental.sql
        "*.incremental_builds",
        "*.incremental_changes",
        "intermediate.int_opportunity_features",  # read by defs/learn
        "marts.*",  # every mart, read by the quality checks and the publication
        "quality.validated_builds",
        "as_of_date",
        "RELANALYTICS_WAREHOUSE",
    ],
)
def test_the_collection_finds_the_known_contracts(name):
    # The collection finds what is known to cross; a parser that found nothing would pass the
    # test above on an empty doc.
    assert name in shared_names()

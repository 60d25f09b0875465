"""The project reaches Dagster through its public API, which keeps working across releases; a
private module (`dagster._...`) is imported only where Dagster exports nothing that does the job."""

import ast

from relanalytics_pipeline.settings import PROJECT_ROOT

# Private imports with no public export to take their place, and why they are needed.
NO_PUBLIC_EXPORT = {
    # An engine event naming a process, as a run's step records it (a dead run to be freed).
    ("tests/pipeline/test_nightly.py", "dagster._core.events"),
}


def private_dagster_imports() -> set[tuple[str, str]]:
    found = set()
    for folder in ("relanalytics_pipeline", "tests", "benchmarks"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom):
                    modules = [node.module or ""]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                else:
                    continue
                found |= {
                    (path.relative_to(PROJECT_ROOT).as_posix(), module)
                    for module in modules
                    if module.startswith("dagster._")
                }
    return found


def test_dagster_is_imported_through_its_public_api():
    assert private_dagster_imports() == NO_PUBLIC_EXPORT

#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up .venv, lint, then run every test.
# It needs no service: DuckDB is embedded and dbt and Dagster run in-process or as subprocesses.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The dbt manifest, built once before the test processes start rather than by each of them.
.venv/bin/python -c "import relanalytics_pipeline.defs.transform.resources"
# pytest exits 5 when it collects no test: that is a failure here like any other non-zero code.
# One process per core, each taking whole test files, so that a file's shared runs stay shared.
exec .venv/bin/python -m pytest -n auto --dist loadfile "$@"

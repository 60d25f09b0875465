#!/usr/bin/env bash
# Create the virtualenv .venv (if missing) and install the project with its dev tools into it.
# Sourced by demo.sh and test.sh; safe to run again (pip only adds what is missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"relanalytics needs Python 3.11 or newer; {sys.executable} is {sys.version.split()[0]}")
PY
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# pip compiles .pyc files at install time: without them (PYTHONDONTWRITEBYTECODE is set on some
# machines) importing dagster and dbt takes twice as long, in every Dagster step process.
# requirements.lock pins what CI last passed with; pyproject.toml keeps the ranges.
# The Spark extra too: the Spark tests (tests/spark) run with the rest.
.venv/bin/python -m pip install --quiet -c requirements.lock -e '.[dev,spark]'
# An older DuckDB beside the project's, only for the test that opens the published marts file as
# BI tools' DuckDB 1.2 drivers do (tests/unit/test_publish.py); kept apart from the project's packages.
OLD_DUCKDB=1.2.2
if [ ! -d ".venv/duckdb-$OLD_DUCKDB/duckdb" ]; then
    .venv/bin/python -m pip install --quiet --no-deps --target ".venv/duckdb-$OLD_DUCKDB" "duckdb==$OLD_DUCKDB"
fi

#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, then generate a sample CRM (unless
# RELANALYTICS_LANDING_DIR points at real data), ingest it, build the marts, print where they are.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/relanalytics demo "$@"

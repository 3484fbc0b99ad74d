#!/usr/bin/env bash
# The test command (README): set-up, lint, format check, types, layers, then every test.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin_dir=$(hack/setup.sh)
export BACKFILL_BIN_DIR=$bin_dir
export PATH="$root/.venv/bin:$bin_dir:$PATH"
set -x
ruff check .
ruff format --check .
mypy
lint-imports
pytest "$@"

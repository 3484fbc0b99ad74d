#!/usr/bin/env bash
# The main job (README, first command): set up, start the local control plane, install the
# CRDs, run the operator, apply examples/sales-pipeline.yaml, show progress to the end, print
# the final status and an excerpt of the metrics. Everything it started is stopped at the end
# (set KEEP=1 to leave the cluster and the operator running for a look around).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin_dir=$(hack/setup.sh kubernetes etcd kwok)  # helm is only for the chart tests
export BACKFILL_BIN_DIR=$bin_dir
export PATH="$root/.venv/bin:$bin_dir:$PATH"
exec python hack/demo.py "$@"

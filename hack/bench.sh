#!/usr/bin/env bash
# The benchmark command (`make bench`, docs/benchmarks.md): set-up, then each benchmark on its
# own fresh local control plane, then one summary table. Numbers only: nothing here fails on a
# timing. Exit code: non-zero when a benchmark itself failed to run.
#   BENCH_SCALE_SECONDS   length of the 1,000,000-partition operator run (default 60)
#   BENCH_KEEP=1          keep the benchmarks' cluster data directories (logs) in /tmp
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin_dir=$(hack/setup.sh)
export BACKFILL_BIN_DIR=$bin_dir
export PATH="$root/.venv/bin:$bin_dir:$PATH"

out=$(mktemp -d "${TMPDIR:-/tmp}/backfill-bench-results.XXXXXX")
trap 'rm -rf "$out"' EXIT
failed=()

echo "== machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -f bench/bench_partitions.py ]; then
  echo
  echo "== bench/bench_partitions.py (partition space: build, select, key)"
  python bench/bench_partitions.py || failed+=(partitions)
fi

echo
python bench/bench_dispatch.py --json "$out/dispatch.json" || failed+=(dispatch)

echo
python bench/bench_scale.py --seconds "${BENCH_SCALE_SECONDS:-60}" --json "$out/scale.json" ||
  failed+=(scale)

echo
python bench/bench_schedule.py --json "$out/schedule.json" || failed+=(schedule)

echo
python bench/bench_steps.py --json "$out/steps.json" || failed+=(steps)

echo
python bench/bench_ui.py --json "$out/ui.json" || failed+=(ui)

echo
python bench/bench_many.py --json "$out/many.json" || failed+=(many)

echo
echo "== summary ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); goals from issue 3, docs/benchmarks.md)"
python bench/common.py summary "$out/dispatch.json" "$out/scale.json" "$out/schedule.json" \
  "$out/steps.json" "$out/ui.json" "$out/many.json"

if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: failed to run: ${failed[*]}" >&2
  exit 1
fi

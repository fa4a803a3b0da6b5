#!/usr/bin/env bash
# Time the README's first command as a new user runs it: a fresh virtual environment and a fresh
# working directory, then `/usr/bin/time -v` over
#   pip install torch==2.13.0 && pip install . && nas search --budget-mflops 150 --target armv8
# Every line the command prints gets the seconds since the start, so the phases (install,
# Ray's start, the search, confirm, the report) can be read off; the machine's load is taken
# before and after, since a figure is only an idle figure when nothing else ran.
#
#   benchmarks/quick_start.sh                  # from the checkout; about 5 minutes on 2 idle cores
#   QUICK_START_NO_INSTALL=1 benchmarks/quick_start.sh    # the search alone, in the current env
#
# Raw output: benchmarks/results/quick_start/<UTC date and time>.txt (the timestamped log, the
# load and /usr/bin/time's report). Read the phases with
#   grep -E 'Ray:|confirm:|front|^ *[0-9.]+ (study|nas search)' benchmarks/results/quick_start/<file>
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out_dir="$repo/benchmarks/results/quick_start"
mkdir -p "$out_dir"
out="$out_dir/$(date -u +%Y-%m-%dT%H%M%SZ).txt"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -n "${QUICK_START_NO_INSTALL:-}" ]; then
    command="nas search --budget-mflops 150 --target armv8"
else
    python3 -m venv "$work/venv"
    # shellcheck disable=SC1091
    . "$work/venv/bin/activate"
    command="pip install -q torch==2.13.0 && pip install -q '$repo' && nas search --budget-mflops 150 --target armv8"
fi
mkdir "$work/run"
cd "$work/run"

{
    echo "# quick start: $command"
    echo "# host: $(uname -n), $(nproc) CPUs, $(python3 --version 2>&1), commit $(git -C "$repo" rev-parse --short HEAD)"
    echo "# load before: $(uptime)"
} >"$out"
start=${EPOCHREALTIME/./}
set +e
/usr/bin/time -v -o "$work/time.txt" sh -c "$command" 2>&1 |
    while IFS= read -r line; do
        elapsed=$((${EPOCHREALTIME/./} - start))
        printf '%5d.%d %s\n' $((elapsed / 1000000)) $((elapsed / 100000 % 10)) "$line"
    done >>"$out"
status=${PIPESTATUS[0]}
set -e
{
    echo "# load after: $(uptime)"
    echo "# exit status: $status"
    cat "$work/time.txt"
} >>"$out"
grep -E 'Elapsed \(wall clock\)|Maximum resident|exit status|load (before|after)' "$out"
echo "raw output: $out"
exit "$status"

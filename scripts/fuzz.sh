#!/usr/bin/env bash
# Fuzzes every parser of outside input (fuzz/fuzz_targets: the access code,
# the commune code and the day, the report's JSON body, the declaration
# form's body, the CSV import, the mairies' contacts a prefecture uploads,
# ProConnect's redirect back) with cargo fuzz: libFuzzer and
# AddressSanitizer. Each target starts from its committed inputs
# (fuzz/seeds/<target>: examples, and every crash ever found, kept there as
# a regression test) and runs for FUZZ_SECONDS (default 60) or, if set,
# FUZZ_RUNS executions. A crash fails the run; its input is left in
# fuzz/artifacts/<target>/ — add it to fuzz/seeds/<target>/ with the fix.
#   scripts/fuzz.sh                        # the test command's short run
#   FUZZ_RUNS=10000000 scripts/fuzz.sh     # the long run of the closing notes
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: run ./scripts/tools.sh" >&2; exit 1; }
# cargo fuzz passes nightly-only flags (the sanitizer, coverage); the one
# stable toolchain of this machine accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
limit="-max_total_time=${FUZZ_SECONDS:-60}"
[ -n "${FUZZ_RUNS:-}" ] && limit="-runs=$FUZZ_RUNS"
cargo fuzz build -O
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  log=$(mktemp)
  started=$(date +%s)
  if ! cargo fuzz run -O "$target" "corpus/$target" "seeds/$target" -- "$limit" -print_final_stats=1 >"$log" 2>&1; then
    grep -E "panicked|ERROR|SUMMARY|Test unit written|artifact" "$log" | head -20 >&2
    echo "[fuzz] $target: CRASH (input in fuzz/artifacts/$target/)" >&2
    rm -f "$log"
    exit 1
  fi
  runs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
  echo "[fuzz] $target: $runs executions in $(( $(date +%s) - started )) s, 0 crashes"
  rm -f "$log"
done

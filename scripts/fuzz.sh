#!/usr/bin/env bash
# The long fuzz run: every proptest fuzz target with many more cases than
# CI's bounded run (`cargo nextest run --workspace` runs them at their
# defaults). PROPTEST_CASES sets the count (default 20000, about a minute
# for all but the wire test; the wire test, whose cases each try every
# operation of every module, gets a tenth: 2000 cases take about 140 s).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${PROPTEST_CASES:-20000}"
run() { echo "== $* (PROPTEST_CASES=$CASES)"; PROPTEST_CASES="$CASES" cargo test -p "$@"; }
CASES="$N" run berth-iam --test fuzz
CASES="$N" run berth-model --test fuzz
CASES="$N" run berth-api --lib fuzz
CASES="$N" run berth-api --test fuzz_edge
CASES="$((N / 10))" run berth-wire --test fuzz

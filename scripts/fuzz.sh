#!/usr/bin/env bash
# The long fuzz run: every proptest fuzz target with many more cases than
# CI's bounded run (`cargo nextest run --workspace` runs them at their
# defaults). PROPTEST_CASES sets the count (default 20000; the edge test,
# which hits a SQLite store per case, gets a tenth of it).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${PROPTEST_CASES:-20000}"
run() { echo "== $* (PROPTEST_CASES=$CASES)"; PROPTEST_CASES="$CASES" cargo test --release -p "$@"; }
CASES="$N" run berth-iam --test fuzz
CASES="$N" run berth-model --test fuzz
CASES="$N" run berth-api --lib fuzz
CASES="$((N / 10))" run berth-api --test fuzz_edge
CASES="$((N / 10))" run berth-wire --test fuzz

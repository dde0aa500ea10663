#!/usr/bin/env bash
# Installs what the benchmark harness needs (Debian packages: runc, tini,
# the registry and image tools, PostgreSQL, and podman as a baseline
# where it installs), builds the release binaries (berth, berth-shim,
# berth-bench) and runs `berth-bench all` (or the arguments given, e.g.
# `./scripts/bench.sh launch --launches 50`). Needs root. Results go to
# bench-results/ (JSON and the table as Markdown).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_install ca-certificates runc tini nftables iproute2 skopeo umoci docker-registry busybox-static postgresql
# podman is a baseline only: the bench says "not measured" without it.
apt_install podman || echo "== podman could not be installed; the bench will say podman: not measured"
need_cargo
cargo build --release -p berth-bench -p berth-cli -p berth-runtime -p berth-microvm -p berth-guest --bins
[ $# -gt 0 ] || set -- all
exec "$(target_dir)/release/berth-bench" "$@"

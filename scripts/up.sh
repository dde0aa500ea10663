#!/usr/bin/env bash
# Installs what `berth up` needs, builds Berth, and runs `berth up` in the
# foreground with the embedded store. Arguments go to `berth up`
# (e.g. --data-dir DIR --listen 127.0.0.1:7420).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_install ca-certificates runc tini nftables
need_cargo
# The micro-VM runtime's shim and guest /init sit beside berth (--isolation microvm).
cargo build --release -p berth-cli -p berth-runtime -p berth-microvm -p berth-guest --bins
exec "$(target_dir)/release/berth" up "$@"

#!/usr/bin/env bash
# Installs what Berth's tests need (Debian packages, cargo-nextest, a Python
# virtualenv with the aws CLI, boto3 and pytest from PyPI) and runs the
# whole suite: the Rust tests (unit, router, store on SQLite and
# PostgreSQL, binary) and the compatibility tests that drive a real
# `berth up` with the aws CLI and boto3.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_install ca-certificates postgresql python3-venv runc tini nftables iproute2 skopeo umoci docker-registry busybox-static
# Micro-VM isolation: QEMU (microvm machine, TCG where KVM cannot run the
# guest), mkfs.ext4 for image disks, and what scripts/microvm-kernel.sh
# needs to turn Debian's cloud kernel (downloaded, not installed) into the
# guest kernel, once, in /var/lib/berth/microvm/kernel.
apt_install qemu-system-x86 e2fsprogs lz4 kmod
if [ "$(id -u)" -eq 0 ]; then scripts/microvm-kernel.sh; fi
need_cargo
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest

VENV=.venv-test
if [ ! -x "$VENV/bin/pytest" ] || ! cmp -s tests/compat/requirements.txt "$VENV/requirements.txt"; then
  echo "== creating $VENV (aws CLI, boto3, pytest from PyPI)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/compat/requirements.txt
  cp tests/compat/requirements.txt "$VENV/requirements.txt"
fi

echo "== wire types are up to date with botocore's model"
"$VENV/bin/python" tools/codegen/gen_wire.py ecs 2014-11-13 crates/berth-wire/src/ecs.rs --check
"$VENV/bin/python" tools/codegen/gen_wire.py logs 2014-03-28 crates/berth-wire/src/logs.rs --check

echo "== cargo nextest (unit, router, store on SQLite and PostgreSQL, binary)"
cargo build --workspace --bins
cargo nextest run --workspace --no-fail-fast

echo "== compatibility: the aws CLI and boto3 against a real berth up"
BERTH_BIN="$PWD/target/debug/berth" PATH="$PWD/$VENV/bin:$PATH" \
  "$VENV/bin/pytest" -q tests/compat

#!/usr/bin/env bash
# Builds Berth's minimal micro-VM guest kernel from Debian's linux-source
# package with the config kept in the repo
# (crates/berth-microvm/kernel/microvm-x86_64.config, merged over
# `make tinyconfig`), into a kernel directory the runtime takes like the
# cloud kernel's (`berth up --guest-kernel DIR`):
#
#   scripts/microvm-kernel-build.sh [DIR]   (default /var/lib/berth/microvm/kernel-minimal)
#
#   DIR/vmlinux  DIR/release  DIR/modules.list (empty: everything is built in)
#
# Needs: apt-get, dpkg-deb, xz-utils, gcc, make, bc, flex, bison, libelf-dev.
# Not part of every CI run (a kernel build takes minutes); this script is
# its test: it fails unless every option of the repo's config is in the
# built kernel's.
set -euo pipefail
dir=$(realpath -m "${1:-/var/lib/berth/microvm/kernel-minimal}")
# `berth kernel build` passes the config it carries.
config=${BERTH_KERNEL_CONFIG:-$(cd "$(dirname "$0")/.." && pwd)/crates/berth-microvm/kernel/microvm-x86_64.config}
work=${BERTH_KERNEL_WORK:-$(mktemp -d)}
cd "$work"
if [[ ! -d linux-source-6.1 ]]; then
  apt-get download -q linux-source-6.1 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
  dpkg-deb --fsys-tarfile linux-source-6.1_*.deb | tar -x ./usr/src/linux-source-6.1.tar.xz
  tar -xJf usr/src/linux-source-6.1.tar.xz
fi
cd linux-source-6.1
make -s tinyconfig
scripts/kconfig/merge_config.sh -m .config "$config" > /dev/null
make -s olddefconfig
# Every option the repo's config asks for must have survived olddefconfig.
missing=0
while read -r line; do
  case $line in
    CONFIG_*=*) grep -qx "$line" .config || { echo "kernel config: $line did not take" >&2; missing=1; } ;;
    "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}; ! grep -q "^$opt=" .config || { echo "kernel config: $opt is set" >&2; missing=1; } ;;
  esac
done < "$config"
[[ $missing == 0 ]] || exit 1
make -s -j"$(nproc)" vmlinux
release=$(make -s kernelrelease)
mkdir -p "$dir.tmp/modules"
cp vmlinux "$dir.tmp/vmlinux"
echo "$release" > "$dir.tmp/release"
: > "$dir.tmp/modules.list"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "minimal guest kernel $release in $dir ($(du -h "$dir/vmlinux" | cut -f1))"

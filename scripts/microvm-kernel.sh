#!/usr/bin/env bash
# Prepares the micro-VM runtime's guest kernel once, into a cache dir:
#
#   scripts/microvm-kernel.sh [DIR]      (default /var/lib/berth/microvm/kernel)
#
# From Debian's linux-image-cloud-amd64 (fetched with apt-get download and
# unpacked with dpkg-deb -x: it is NOT installed as the host's kernel) it makes
#   DIR/vmlinux        the uncompressed kernel, booted through PVH (QEMU -kernel)
#   DIR/release        its `uname -r`
#   DIR/modules/*.ko   the virtio-mmio, blk, net and console drivers and overlayfs,
#   DIR/modules.list   in load order (resolved by depmod + modprobe --show-depends)
# The bzImage payload is LZ4: the vmlinux is the bytes from the LZ4 legacy
# magic (02 21 4c 18) on, decompressed. Booting it saves ~0.45 s under TCG.
# Needs: apt-get, dpkg-deb, lz4, kmod (depmod, modprobe). Idempotent: a DIR
# holding a complete kernel is left as it is.
set -euo pipefail

dir=$(realpath -m "${1:-/var/lib/berth/microvm/kernel}")
if [[ -s $dir/vmlinux && -s $dir/modules.list && -s $dir/release ]]; then
  echo "guest kernel $(cat "$dir/release") already in $dir"
  exit 0
fi
for tool in apt-get apt-cache dpkg-deb lz4 depmod modprobe; do
  command -v "$tool" >/dev/null || { echo "microvm-kernel: $tool is missing (apt-get install lz4 kmod)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# The metapackage names the versioned image package it depends on.
pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[[ -n $pkg ]] || { echo "microvm-kernel: cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2; exit 1; }
apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
dpkg-deb -x ./"$pkg"_*.deb root
release=$(ls root/lib/modules)
vmlinuz=root/boot/vmlinuz-$release

# The LZ4 payload of the bzImage.
offset=$(grep -obUaP '\x02\x21\x4c\x18' "$vmlinuz" | head -1 | cut -d: -f1)
[[ -n $offset ]] || { echo "microvm-kernel: no LZ4 payload in $vmlinuz" >&2; exit 1; }
tail -c +$((offset + 1)) "$vmlinuz" | lz4 -dc > vmlinux 2>/dev/null || true
head -c 4 vmlinux | grep -q ELF || { echo "microvm-kernel: the payload of $vmlinuz is not an ELF kernel" >&2; exit 1; }

# The drivers the guest needs, in dependency order. The package ships no
# modules.dep: depmod makes one in the unpacked tree.
depmod -b root "$release"
wanted=(virtio_mmio virtio_blk virtio_net virtio_console overlay)
mkdir -p out/modules
: > out/modules.list
modprobe -a -d root -S "$release" --show-depends "${wanted[@]}" | awk '$1 == "insmod" {print $2}' | while read -r ko; do
  name=$(basename "$ko")
  if ! grep -qx "$name" out/modules.list; then
    cp "$ko" out/modules/
    echo "$name" >> out/modules.list
  fi
done
mv vmlinux out/vmlinux
echo "$release" > out/release
mkdir -p "$(dirname "$dir")"
rm -rf "$dir.tmp"
mv out "$dir.tmp"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "guest kernel $release in $dir ($(wc -l < "$dir/modules.list") modules)"

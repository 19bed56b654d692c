#!/usr/bin/env bash
# Makes (once) and prints the path of a Debian root filesystem for a foreign architecture
# with Debian's own `nodejs` in it, for running our prebuilt ARM binaries under qemu-user.
#
#   scripts/arm-rootfs.sh <arm64|armhf> [suite]      suite: bookworm (default), trixie, ...
#
# The roots live outside the repo (they are ~200 MB each), in $IIOKIT_ARM_CACHE or
# /var/cache/iiokit-arm, as <suite>-<arch>/, and are made on demand so a fresh CI machine
# can rebuild them. Making one downloads ~45 MB and takes a minute or two; later calls
# return at once.
#
# `debootstrap --foreign` downloads the packages and unpacks the essential ones without
# running anything of the target architecture. Its second stage would run every
# maintainer script under emulation (and needs binfmt_misc, which containers often lack),
# so instead the remaining packages are unpacked with dpkg-deb: node needs files, not
# configured packages. qemu-<arch>-static is copied in so `chroot <root> /usr/bin/qemu-…
# /usr/bin/node` runs without binfmt_misc.
set -euo pipefail

arch=${1:?usage: arm-rootfs.sh <arm64|armhf> [suite]}
suite=${2:-bookworm}
case $arch in
  arm64) qemu=qemu-aarch64-static ;;
  armhf) qemu=qemu-arm-static ;;
  *) echo "arm-rootfs: unknown architecture '$arch' (arm64 or armhf)" >&2; exit 2 ;;
esac
cache=${IIOKIT_ARM_CACHE:-/var/cache/iiokit-arm}
root=$cache/$suite-$arch
mirror=${IIOKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ -f "$root/.iiokit-ready" ]; then
  echo "$root"
  exit 0
fi

for tool in debootstrap dpkg-deb "$qemu" chroot flock; do
  if ! command -v "$tool" >/dev/null; then
    echo "arm-rootfs: '$tool' not found (apt-get install -y debootstrap qemu-user-static)" >&2
    exit 1
  fi
done
if [ "$(id -u)" != 0 ]; then
  echo "arm-rootfs: making $root needs root (debootstrap, chroot)" >&2
  exit 1
fi

mkdir -p "$cache/debs"
exec 9>"$cache/.lock-$suite-$arch"
flock 9
# Another run may have finished it while we waited for the lock.
if [ -f "$root/.iiokit-ready" ]; then
  echo "$root"
  exit 0
fi

work=$root.partial
rm -rf "$work"
log=$cache/$suite-$arch.log
echo "arm-rootfs: making $root (debootstrap --foreign $suite $arch; log in $log)" >&2
if ! debootstrap --foreign --arch="$arch" --variant=minbase --include=nodejs \
  --cache-dir="$cache/debs" "$suite" "$work" "$mirror" >"$log" 2>&1; then
  tail -20 "$log" >&2
  echo "arm-rootfs: debootstrap failed (see $log)" >&2
  exit 1
fi

# Unpack what the first stage only downloaded (nodejs and everything it depends on).
n=0
for deb in "$work"/var/cache/apt/archives/*.deb; do
  dpkg-deb -x "$deb" "$work"
  n=$((n + 1))
done
echo "arm-rootfs: unpacked $n packages" >>"$log"
rm -f "$work"/var/cache/apt/archives/*.deb

cp "$(command -v "$qemu")" "$work/usr/bin/"
# Debian's node loads the system CA bundle (ca-certificates is not installed): an empty one
# keeps it quiet.
mkdir -p "$work/etc/ssl/certs"
[ -e "$work/etc/ssl/certs/ca-certificates.crt" ] || : >"$work/etc/ssl/certs/ca-certificates.crt"
# A minimal /dev for node (it opens /dev/null and /dev/urandom).
mkdir -p "$work/dev" "$work/tmp" "$work/proc"
chmod 1777 "$work/tmp"
for d in null:1:3 zero:1:5 random:1:8 urandom:1:9; do
  IFS=: read -r name major minor <<<"$d"
  [ -e "$work/dev/$name" ] || mknod -m 666 "$work/dev/$name" c "$major" "$minor"
done

if ! version=$(chroot "$work" "/usr/bin/$qemu" /usr/bin/node -p \
  'process.version + " " + process.arch + " napi " + process.versions.napi' 2>>"$log"); then
  tail -5 "$log" >&2
  echo "arm-rootfs: node does not run in $work under $qemu" >&2
  exit 1
fi
echo "arm-rootfs: $suite $arch: node $version" >&2
echo "$version" >"$work/.iiokit-ready"
mv "$work" "$root"
echo "$root"

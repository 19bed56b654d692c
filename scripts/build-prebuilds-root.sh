#!/usr/bin/env bash
# Makes (once) and prints the path of the root filesystem the prebuilt binaries are
# compiled in: Debian 11 (bullseye, amd64) with its g++, g++-aarch64-linux-gnu and
# g++-arm-linux-gnueabihf (GCC 10, glibc 2.31).
#
# Why not the host's compilers: a binary needs the glibc and libstdc++ symbol versions of
# the system it was linked on. Debian 12's GCC 12 / glibc 2.36 give our addon GLIBC_2.34
# (pthread_*, moved into libc) and GLIBCXX_3.4.30 (condition_variable::wait), which
# Debian 11, Ubuntu 20.04 and Raspberry Pi OS bullseye (ADI Kuiper 1.x) do not have, while
# Node 18/20 themselves run there. Bullseye's toolchain lowers the floor to their level.
#
# The root lives outside the repo (~1.2 GB; ~400 MB of packages downloaded once) in
# $IIOKIT_BUILD_CACHE or /var/cache/iiokit-build; making it takes a few minutes, later
# calls return at once. The host's node, npm's node-gyp and Node's headers are copied in
# when they changed, so the build runs the node-gyp a user's fallback build would.
set -euo pipefail

suite=${IIOKIT_BUILD_SUITE:-bullseye}
cache=${IIOKIT_BUILD_CACHE:-/var/cache/iiokit-build}
root=$cache/$suite-amd64
mirror=${IIOKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ ! -f "$root/.iiokit-ready" ]; then
  for tool in debootstrap chroot flock; do
    command -v "$tool" >/dev/null || {
      echo "build-prebuilds-root: '$tool' not found (apt-get install -y debootstrap)" >&2
      exit 1
    }
  done
  [ "$(id -u)" = 0 ] || { echo "build-prebuilds-root: making $root needs root" >&2; exit 1; }
  mkdir -p "$cache/debs"
  exec 9>"$cache/.lock-$suite"
  flock 9
  if [ ! -f "$root/.iiokit-ready" ]; then
    work=$root.partial
    # debootstrap mounts /proc in the target; never delete through a mount.
    umount "$work/proc" 2>/dev/null || true
    rm -rf --one-file-system "$work"
    log=$cache/$suite-amd64.log
    echo "build-prebuilds-root: making $root (debootstrap $suite; log in $log)" >&2
    if ! debootstrap --variant=minbase \
      --include=g++,make,python3,g++-aarch64-linux-gnu,g++-arm-linux-gnueabihf \
      --cache-dir="$cache/debs" "$suite" "$work" "$mirror" >"$log" 2>&1; then
      umount "$work/proc" 2>/dev/null || true
      tail -20 "$log" >&2
      echo "build-prebuilds-root: debootstrap failed (see $log)" >&2
      exit 1
    fi
    umount "$work/proc" 2>/dev/null || true
    rm -f "$work"/var/cache/apt/archives/*.deb
    chroot "$work" sh -c 'g++ --version | head -1; aarch64-linux-gnu-g++ --version | head -1;
      arm-linux-gnueabihf-g++ --version | head -1' >"$work/.iiokit-ready"
    mv "$work" "$root"
  fi
  exec 9>&-
fi

# The host's node (to run node-gyp), npm's node-gyp with its dependencies, Node's headers.
node_bin=$(readlink -f "$(command -v node)")
prefix=$(dirname "$(dirname "$node_bin")")
npm_dir=${NPM_DIR:-$prefix/lib/node_modules/npm}
[ -f "$npm_dir/node_modules/node-gyp/bin/node-gyp.js" ] || {
  echo "build-prebuilds-root: npm's node-gyp not found in $npm_dir (set NPM_DIR)" >&2
  exit 1
}
[ -f "$prefix/include/node/node_api.h" ] || {
  echo "build-prebuilds-root: Node's headers not found in $prefix/include/node" >&2
  exit 1
}
host=$root/opt/iiokit-host
mkdir -p "$host/bin" "$host/include"
cmp -s "$node_bin" "$host/bin/node" || cp "$node_bin" "$host/bin/node"
if ! cmp -s "$npm_dir/package.json" "$host/npm/package.json" ||
  ! cmp -s "$npm_dir/node_modules/node-gyp/package.json" "$host/npm/node_modules/node-gyp/package.json"; then
  rm -rf "$host/npm"
  cp -r "$npm_dir" "$host/npm"
fi
if ! cmp -s "$prefix/include/node/node_version.h" "$host/include/node/node_version.h"; then
  rm -rf "$host/include/node"
  cp -r "$prefix/include/node" "$host/include/node"
fi
mkdir -p "$root/dev"
for d in null:1:3 zero:1:5 urandom:1:9; do
  IFS=: read -r name major minor <<<"$d"
  [ -e "$root/dev/$name" ] || mknod -m 666 "$root/dev/$name" c "$major" "$minor"
done
echo "$root"

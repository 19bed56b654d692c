#!/usr/bin/env bash
# Builds the native module for every Linux target we ship, into
# prebuilds/<platform>-<arch>/iiokit.napi[.armv7].glibc.node, where node-gyp-build finds it.
#
#   scripts/build-prebuilds.sh [x64] [arm64] [arm]     (default: all three)
#   FORCE=1 scripts/build-prebuilds.sh                  rebuild even if up to date
#
# They are compiled in a Debian 11 root (scripts/build-prebuilds-root.sh: bullseye's g++,
# g++-aarch64-linux-gnu and g++-arm-linux-gnueabihf), so they need no newer glibc and
# libstdc++ than Debian 11, Ubuntu 20.04 and Raspberry Pi OS bullseye have.
# IIOKIT_PREBUILD_ROOT=host uses this machine's compilers instead (faster, no root needed,
# but Debian 12's toolchain raises the floor: set IIOKIT_MAX_GLIBC etc. to accept that).
# The addon is compiled against Node-API (NAPI_VERSION in binding.gyp), so one binary
# serves every Node version we support.
#
# Each target is built in its own scratch copy of binding.gyp + native/, so the developer's
# build/Release (which node-gyp-build prefers over prebuilds/) never holds a foreign binary.
# A target whose inputs (sources, binding.gyp, node-addon-api, this script, the compiler)
# have not changed since its last build is skipped, so tests can call this cheaply.
#
# After building, each binary is checked: right ELF machine, and no glibc / libstdc++
# symbol version newer than the floor we document (docs/install.md), so a change in the
# code or the toolchain cannot silently drop older boards.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# The newest C and C++ runtime versions a binary may need: Debian 11's (glibc 2.31,
# libstdc++ of GCC 10).
MAX_GLIBC=${IIOKIT_MAX_GLIBC:-2.31}
MAX_GLIBCXX=${IIOKIT_MAX_GLIBCXX:-3.4.28}
MAX_CXXABI=${IIOKIT_MAX_CXXABI:-1.3.12}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x64 arm64 arm)

mode=${IIOKIT_PREBUILD_ROOT:-bullseye}
if [ "$mode" = host ]; then
  buildroot=""
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  node_gyp=${NODE_GYP:-$prefix/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js}
  # Node's headers: node-gyp would download them; they are installed beside node.
  nodedir=${npm_config_nodedir:-$prefix}
else
  buildroot=$(IIOKIT_BUILD_SUITE=$mode bash scripts/build-prebuilds-root.sh)
  node_gyp=/opt/iiokit-host/npm/node_modules/node-gyp/bin/node-gyp.js
  nodedir=/opt/iiokit-host
fi
[ -n "$buildroot" ] || [ -f "$node_gyp" ] || {
  echo "build-prebuilds: node-gyp not found at $node_gyp (set NODE_GYP)" >&2
  exit 1
}

# Runs a command on this machine or inside the build root (with a clean environment).
in_root() {
  if [ -z "$buildroot" ]; then
    "$@"
  else
    chroot "$buildroot" env -i PATH=/opt/iiokit-host/bin:/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 "$@"
  fi
}

stampdir=$root/node_modules/.cache/iiokit-prebuilds
mkdir -p "$stampdir"

# Prints the newest of the symbol versions with prefix $2 (GLIBC_, ...) that binary $1 needs.
max_version() {
  in_root "$objdump" -T "$1" | grep -o "$2[0-9.]*" | sed "s/^$2//" | sort -V | tail -1
}
# True if version $1 <= $2.
version_le() {
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]
}

for target in "${targets[@]}"; do
  case $target in
    x64) triple=x86_64-linux-gnu machine='X86-64' dir=linux-x64 file=iiokit.napi.glibc.node ;;
    arm64) triple=aarch64-linux-gnu machine='AArch64' dir=linux-arm64 file=iiokit.napi.glibc.node ;;
    arm) triple=arm-linux-gnueabihf machine='ARM' dir=linux-arm file=iiokit.napi.armv7.glibc.node ;;
    *) echo "build-prebuilds: unknown target '$target' (x64, arm64, arm)" >&2; exit 2 ;;
  esac
  cxx=$triple-g++ cc=$triple-gcc strip_bin=$triple-strip objdump=$triple-objdump
  readelf_bin=$triple-readelf ar=$triple-ar
  for tool in "$cxx" "$cc" "$strip_bin" "$objdump"; do
    if ! in_root sh -c "command -v $tool" >/dev/null; then
      echo "build-prebuilds: $tool not found${buildroot:+ in $buildroot};" \
        "apt-get install -y g++ g++-aarch64-linux-gnu g++-arm-linux-gnueabihf" >&2
      exit 1
    fi
  done

  out=$root/prebuilds/$dir/$file
  stamp=$stampdir/$dir.sha256
  inputs=$({
    cat binding.gyp native/* scripts/build-prebuilds.sh node_modules/node-addon-api/package.json
    in_root "$cxx" --version
    echo "$mode $MAX_GLIBC $MAX_GLIBCXX $MAX_CXXABI"
  } | sha256sum | cut -d' ' -f1)
  if [ -z "${FORCE:-}" ] && [ -f "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
    echo "build-prebuilds: $dir/$file is up to date"
    continue
  fi

  # The scratch copy: under the build root's /tmp when building there (chroot sees it as
  # $inner), else under $TMPDIR. node-addon-api is copied, not linked, for the chroot.
  if [ -n "$buildroot" ]; then tmpbase=$buildroot/tmp; else tmpbase=${TMPDIR:-/tmp}; fi
  scratch=$(mktemp -d "$tmpbase/iiokit-prebuild-$target.XXXXXX")
  inner=${scratch#"$buildroot"}
  cp binding.gyp "$scratch/"
  cp -r native "$scratch/"
  mkdir -p "$scratch/node_modules"
  cp -r node_modules/node-addon-api "$scratch/node_modules/"
  echo "build-prebuilds: building $dir with $(in_root "$cxx" --version | head -1)"
  if ! in_root sh -c "cd '$inner' && CC=$cc CXX=$cxx LINK=$cxx AR=$ar \
    node '$node_gyp' rebuild --release --arch=$target --nodedir='$nodedir' -j 2" \
    >"$scratch/build.log" 2>&1; then
    cat "$scratch/build.log" >&2
    echo "build-prebuilds: $dir failed (scratch dir kept: $scratch)" >&2
    exit 1
  fi
  in_root "$strip_bin" --strip-unneeded -o "$inner/stripped.node" "$inner/build/Release/iiokit.node"
  built=$inner/stripped.node

  got=$(in_root "$readelf_bin" -h "$built" | sed -n 's/^ *Machine: *//p')
  case $got in
    *"$machine"*) ;;
    *) echo "build-prebuilds: $dir: expected a $machine binary, got '$got'" >&2; exit 1 ;;
  esac
  glibc=$(max_version "$built" GLIBC_)
  glibcxx=$(max_version "$built" GLIBCXX_)
  cxxabi=$(max_version "$built" CXXABI_)
  for check in "glibc ${glibc:-0} $MAX_GLIBC" "GLIBCXX ${glibcxx:-0} $MAX_GLIBCXX" \
    "CXXABI ${cxxabi:-0} $MAX_CXXABI"; do
    read -r what need max <<<"$check"
    if ! version_le "$need" "$max"; then
      in_root "$objdump" -T "$built" | grep -E "(GLIBC|GLIBCXX|CXXABI)_$need" >&2 || true
      echo "build-prebuilds: $dir needs $what $need, newer than the floor $max we promise" \
        "(docs/install.md); avoid those symbols or raise IIOKIT_MAX_$(echo "$what" | tr a-z A-Z)" >&2
      exit 1
    fi
  done
  mkdir -p "$(dirname "$out")"
  cp "$scratch/stripped.node" "$out.tmp"
  mv "$out.tmp" "$out"
  echo "$inputs" >"$stamp"
  rm -rf "$scratch"
  size=$(stat -c %s "$out")
  echo "build-prebuilds: $dir/$file $size bytes ($got; needs glibc ${glibc:-none}," \
    "GLIBCXX ${glibcxx:-none}, CXXABI ${cxxabi:-none})"
done

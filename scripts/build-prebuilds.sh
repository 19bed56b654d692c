#!/usr/bin/env bash
# Builds the native module for every Linux target we ship, into
# prebuilds/<platform>-<arch>/iiokit.napi[.armv7].glibc.node, where node-gyp-build finds it.
#
#   scripts/build-prebuilds.sh [x64] [arm64] [arm]     (default: all three)
#   FORCE=1 scripts/build-prebuilds.sh                  rebuild even if up to date
#
# x64 is built with the host's g++, arm64 and armv7 with Debian's cross compilers
# (g++-aarch64-linux-gnu, g++-arm-linux-gnueabihf). The addon is compiled against Node-API
# (NAPI_VERSION in binding.gyp), so one binary serves every Node version we support.
#
# Each target is built in its own scratch copy of binding.gyp + native/, so the developer's
# build/Release (which node-gyp-build prefers over prebuilds/) never holds a foreign binary.
# A target whose inputs (sources, binding.gyp, node-addon-api, this script, the compiler)
# have not changed since its last build is skipped, so tests can call this cheaply.
#
# After building, each binary is checked: right ELF machine, and no glibc / libstdc++
# symbol version newer than the floor we document (docs/install.md), so a compiler
# upgrade cannot silently drop older boards.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# The oldest C and C++ runtimes the binaries may need: glibc 2.28 and libstdc++ of GCC 8
# (GLIBCXX_3.4.25, CXXABI_1.3.11), i.e. Debian 10, Ubuntu 20.04, Raspberry Pi OS buster,
# RHEL 8 — the same floor as Node 18's official builds.
MAX_GLIBC=${IIOKIT_MAX_GLIBC:-2.28}
MAX_GLIBCXX=${IIOKIT_MAX_GLIBCXX:-3.4.25}
MAX_CXXABI=${IIOKIT_MAX_CXXABI:-1.3.11}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x64 arm64 arm)

node_gyp=${NODE_GYP:-}
if [ -z "$node_gyp" ]; then
  for c in "$root/node_modules/node-gyp/bin/node-gyp.js" "${npm_config_node_gyp:-}" \
    "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"; do
    if [ -n "$c" ] && [ -f "$c" ]; then node_gyp=$c; break; fi
  done
fi
[ -n "$node_gyp" ] || { echo "build-prebuilds: node-gyp not found (npm ci first)" >&2; exit 1; }

# Node's headers: node-gyp would download them; this machine has them beside node.
nodedir=${npm_config_nodedir:-}
if [ -z "$nodedir" ]; then
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  [ -f "$prefix/include/node/node_api.h" ] && nodedir=$prefix
fi
nodedir_arg=()
[ -n "$nodedir" ] && nodedir_arg=(--nodedir="$nodedir")

stampdir=$root/node_modules/.cache/iiokit-prebuilds
mkdir -p "$stampdir"

# Prints "<max version>" of the symbol versions with prefix $2 that binary $1 needs.
max_version() {
  "$objdump" -T "$1" | grep -o "$2[0-9.]*" | sed "s/^$2//" | sort -V | tail -1
}
# True if version $1 <= $2.
version_le() {
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]
}

for target in "${targets[@]}"; do
  case $target in
    x64) triple=x86_64-linux-gnu machine='X86-64' dir=linux-x64 file=iiokit.napi.glibc.node
      cxx=g++ cc=gcc ;;
    arm64) triple=aarch64-linux-gnu machine='AArch64' dir=linux-arm64 file=iiokit.napi.glibc.node
      cxx=$triple-g++ cc=$triple-gcc ;;
    arm) triple=arm-linux-gnueabihf machine='ARM' dir=linux-arm file=iiokit.napi.armv7.glibc.node
      cxx=$triple-g++ cc=$triple-gcc ;;
    *) echo "build-prebuilds: unknown target '$target' (x64, arm64, arm)" >&2; exit 2 ;;
  esac
  strip_bin=$triple-strip objdump=$triple-objdump readelf_bin=$triple-readelf
  if [ "$target" = x64 ] && ! command -v "$strip_bin" >/dev/null; then
    strip_bin=strip objdump=objdump readelf_bin=readelf
  fi
  for tool in "$cxx" "$cc" "$strip_bin" "$objdump"; do
    if ! command -v "$tool" >/dev/null; then
      echo "build-prebuilds: $tool not found; apt-get install -y g++ g++-aarch64-linux-gnu g++-arm-linux-gnueabihf" >&2
      exit 1
    fi
  done

  out=$root/prebuilds/$dir/$file
  stamp=$stampdir/$dir.sha256
  inputs=$({
    cat binding.gyp native/* scripts/build-prebuilds.sh node_modules/node-addon-api/package.json
    "$cxx" --version
    echo "$MAX_GLIBC $MAX_GLIBCXX $MAX_CXXABI"
  } | sha256sum | cut -d' ' -f1)
  if [ -z "${FORCE:-}" ] && [ -f "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
    echo "build-prebuilds: $dir/$file is up to date"
    continue
  fi

  scratch=$(mktemp -d "${TMPDIR:-/tmp}/iiokit-prebuild-$target.XXXXXX")
  cp binding.gyp "$scratch/"
  cp -r native "$scratch/"
  # binding.gyp asks node for node-addon-api's include dir, resolved from the cwd.
  ln -s "$root/node_modules" "$scratch/node_modules"
  echo "build-prebuilds: building $dir with $cxx"
  if ! (cd "$scratch" && CC=$cc CXX=$cxx LINK=$cxx AR=$triple-ar \
    node "$node_gyp" rebuild --release --arch="$target" "${nodedir_arg[@]}" -j 2 \
    >"$scratch/build.log" 2>&1); then
    cat "$scratch/build.log" >&2
    echo "build-prebuilds: $dir failed (scratch dir kept: $scratch)" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$out")"
  "$strip_bin" --strip-unneeded -o "$out.tmp" "$scratch/build/Release/iiokit.node"

  got=$("$readelf_bin" -h "$out.tmp" | sed -n 's/^ *Machine: *//p')
  case $got in
    *"$machine"*) ;;
    *) echo "build-prebuilds: $dir: expected a $machine binary, got '$got'" >&2; exit 1 ;;
  esac
  glibc=$(max_version "$out.tmp" GLIBC_)
  glibcxx=$(max_version "$out.tmp" GLIBCXX_)
  cxxabi=$(max_version "$out.tmp" CXXABI_)
  for check in "glibc ${glibc:-0} $MAX_GLIBC" "GLIBCXX ${glibcxx:-0} $MAX_GLIBCXX" \
    "CXXABI ${cxxabi:-0} $MAX_CXXABI"; do
    read -r what need max <<<"$check"
    if ! version_le "$need" "$max"; then
      "$objdump" -T "$out.tmp" | grep -E "(GLIBC|GLIBCXX|CXXABI)_$need" >&2 || true
      echo "build-prebuilds: $dir needs $what $need, newer than the floor $max we promise" \
        "(docs/install.md); avoid those symbols or raise IIOKIT_MAX_$(echo "$what" | tr a-z A-Z)" >&2
      exit 1
    fi
  done
  mv "$out.tmp" "$out"
  echo "$inputs" >"$stamp"
  rm -rf "$scratch"
  size=$(stat -c %s "$out")
  echo "build-prebuilds: $dir/$file $((size / 1024)) KiB ($got; needs glibc ${glibc:-none}," \
    "GLIBCXX ${glibcxx:-none}, CXXABI ${cxxabi:-none})"
done

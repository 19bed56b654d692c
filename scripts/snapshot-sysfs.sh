#!/usr/bin/env bash
# Copies the IIO part of the test VM's sysfs and debugfs into a plain directory, values
# included, so unit tests (test/local/) run the local: backend on real kernel layouts
# without a VM. Also records what libiio 0.24 prints there (iio_info, iio_genxml and the
# iio_attr queries of test/fixtures/sysfs/iio-attr-queries.txt), for those tests to diff.
#
#   bash scripts/snapshot-sysfs.sh [6.1|6.12 ...]     # default: both kernels
#
# Writes test/fixtures/sysfs/linux-<major.minor>/:
#   sys/bus/iio/devices/<id>/...   every regular file (and its subdirectories), by value
#   sys/kernel/debug/iio/<id>/...  debugfs files
#   manifest.json                  uname, each directory's readdir order (sysfs lists in its
#                                  own order, which decides libiio's channel order), and the
#                                  files that could not be read (write-only: left empty)
#   iio_info.txt, iio_genxml.xml, iio_attr.txt   libiio's outputs at snapshot time
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${IIO_VM:-}" != 1 ]; then
  vm=""
  for c in "${IIO_VM_RUN:-}" ../shared/iio-vm/run /work/shared/iio-vm/run; do
    if [ -n "$c" ] && [ -x "$c" ]; then vm=$c; break; fi
  done
  [ -n "$vm" ] || { echo "snapshot-sysfs: the IIO test VM (../shared/iio-vm/run) was not found; set IIO_VM_RUN" >&2; exit 1; }
  kernels=("$@"); [ ${#kernels[@]} -gt 0 ] || kernels=(6.1 6.12)
  for k in "${kernels[@]}"; do
    echo "snapshot-sysfs: Linux $k" >&2
    "$vm" --kernel "$k" -- bash scripts/snapshot-sysfs.sh
  done
  exit 0
fi

kv=$(uname -r | cut -d. -f1,2)
out=test/fixtures/sysfs/linux-$kv
rm -rf "$out"
mkdir -p "$out/sys"
order=$(mktemp) unreadable=$(mktemp)

# JSON string of $1 into $J (no subshell: forks are slow under emulation)
json_str() { J=${1//\\/\\\\}; J=\"${J//\"/\\\"}\"; }

# copy_dir SRC REL: copies regular files of SRC (and, recursively, its subdirectories
# other than power/) to $out/sys/REL, recording the directory order.
copy_dir() {
  local src=$1 rel=$2 names=() n
  mkdir -p "$out/sys/$rel"
  while IFS= read -r n; do
    [ "$n" = . ] || [ "$n" = .. ] && continue
    names+=("$n")
  done < <(ls -f "$src")
  json_str "$rel"; local line="$J:[" sep=''
  for n in "${names[@]}"; do json_str "$n"; line+="$sep$J"; sep=','; done
  printf '%s]\n' "$line" >> "$order"
  for n in "${names[@]}"; do
    if [ -L "$src/$n" ] && [ -d "$src/$n" ] && [ "$rel" != bus/iio/devices ]; then
      continue  # subsystem, device, of_node: links out of the device
    elif [ -d "$src/$n" ]; then
      [ "$n" = power ] && continue
      copy_dir "$src/$n" "$rel/$n"
    elif [ -f "$src/$n" ]; then
      if ! cat "$src/$n" > "$out/sys/$rel/$n" 2>/dev/null; then
        : > "$out/sys/$rel/$n"
        json_str "$rel/$n"; printf '%s\n' "$J" >> "$unreadable"
      fi
    fi
  done
}

copy_dir /sys/bus/iio/devices bus/iio/devices
[ -d /sys/kernel/debug/iio ] && copy_dir /sys/kernel/debug/iio kernel/debug/iio

{
  echo '{'
  u=()
  for f in -s -n -r -v -m; do json_str "$(uname $f)"; u+=("$J"); done
  printf '  "uname": {"sysname": %s, "nodename": %s, "release": %s, "version": %s, "machine": %s},\n' "${u[@]}"
  echo '  "readdirOrder": {'
  sed -e 's/^\("[^"]*"\):/    \1: /' -e '$!s/$/,/' "$order"
  echo '  },'
  printf '  "unreadable": ['
  paste -sd, "$unreadable" | tr -d '\n'
  echo ']'
  echo '}'
} > "$out/manifest.json"
rm -f "$order" "$unreadable"

iio_info -u local: > "$out/iio_info.txt" 2>&1 || true
iio_genxml -u local: | grep '^<?xml' > "$out/iio_genxml.xml"

# iio_attr queries (those that read back what they wrote; "!" lines need the kernel).
set -f
: > "$out/iio_attr.txt"
while IFS= read -r q; do
  case "$q" in ''|'#'*|'!'*) continue ;; esac
  read -r -a args <<< "$q"
  rc=0
  iio_attr -u local: "${args[@]}" > /tmp/attr.out 2> /tmp/attr.err || rc=$?
  { echo "=== $q"; echo "--- status $rc"; cat /tmp/attr.out; echo "--- stderr"; cat /tmp/attr.err; } >> "$out/iio_attr.txt"
done < test/fixtures/sysfs/iio-attr-queries.txt
echo "snapshot-sysfs: wrote $out" >&2

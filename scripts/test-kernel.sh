#!/usr/bin/env bash
# Runs the kernel suite (test/kernel) against a real Linux IIO subsystem. Outside the
# VM it boots ../shared/iio-vm (kernel $IIO_VM_KERNEL, default 6.1) and runs itself
# inside; inside (IIO_VM=1) it runs mocha on the compiled tests directly, since the
# VM emulates the CPU and npm/npx startup costs tens of seconds there.
# `bash scripts/test-kernel.sh dist/test/kernel/x.test.js` runs only the files given.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${IIO_VM:-}" = 1 ]; then
  # The config holds no spec, so files given replace the whole suite.
  if [ $# -gt 0 ] && [ -e "$1" ]; then
    exec node node_modules/mocha/bin/mocha.js --config .mocharc.kernel.json "$@"
  fi
  exec node node_modules/mocha/bin/mocha.js --config .mocharc.kernel.json \
    'dist/test/kernel/**/*.test.js' "$@"
fi
vm=""
for c in "${IIO_VM_RUN:-}" ../shared/iio-vm/run /work/shared/iio-vm/run; do
  if [ -n "$c" ] && [ -x "$c" ]; then vm=$c; break; fi
done
if [ -z "$vm" ]; then
  echo "test-kernel: the IIO test VM (../shared/iio-vm/run) was not found; set IIO_VM_RUN" >&2
  [ "${CI:-}" = true ] && exit 1
  echo "test-kernel: SKIPPED (not CI)" >&2
  exit 0
fi
[ -d dist/test/kernel ] || npm run build
# A loaded machine slows the emulated CPU down a lot: allow 40 minutes, not the VM's 15.
exec "$vm" --kernel "${IIO_VM_KERNEL:-6.1}" --timeout "${IIO_VM_TIMEOUT:-2400}" -- bash scripts/test-kernel.sh "$@"

#!/usr/bin/env node
'use strict';
// The iiokit command: libiio's tools (iio_info, iio_attr, iio_readdev, iio_writedev),
// a server (serve) and a scanner (scan), all in one binary.
const { main } = require('../dist/src/cli/main.js');

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (err) => {
    process.stderr.write(`iiokit: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  },
);

// Node-RED entry for the iio-attr-write node: the runtime is compiled TypeScript in dist/.
module.exports = require('../dist/src/nodes/iio-attr-write').default;

// Node-RED entry for the iio-context node: the runtime is compiled TypeScript in dist/.
module.exports = require('../dist/src/nodes/iio-context').default;

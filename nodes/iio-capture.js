// Node-RED entry for the iio-capture node: the runtime is compiled TypeScript in dist/.
module.exports = require('../dist/src/nodes/iio-capture').default;

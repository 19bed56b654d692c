// Node-RED entry for the iio-event node: the runtime is compiled TypeScript in dist/.
module.exports = require('../dist/src/nodes/iio-event').default;

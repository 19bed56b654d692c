// Node-RED entry for the iio-sparkplug node: the runtime is compiled TypeScript in dist/.
module.exports = require('../dist/src/nodes/iio-sparkplug').default;

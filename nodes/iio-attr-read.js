// Node-RED entry for the iio-attr-read node: the runtime is compiled TypeScript in dist/.
module.exports = require('../dist/src/nodes/iio-attr-read').default;

// Node-RED entry for the iio-push node: the runtime is compiled TypeScript in dist/.
module.exports = require('../dist/src/nodes/iio-push').default;

/**
 * Child process for the safety-net tests: opens a buffer of the FIFO device described in
 * IIOKIT_TEST_HANDLE (JSON of a LocalDeviceHandle), says "open", then ends badly as
 * argv[2] asks: `throw` (uncaught exception), `reject` (unhandled rejection), `sigint`
 * (killed by a signal nobody handles), `exit` (process.exit without closing).
 */
import { openLocalBuffer, type LocalDeviceHandle } from '../../src/backends/local/buffer';
import { ChannelMask } from '../../src/model/channel-mask';

async function main(): Promise<void> {
  const h = JSON.parse(process.env.IIOKIT_TEST_HANDLE ?? '') as LocalDeviceHandle;
  await openLocalBuffer(h, {
    samples: 8,
    mask: ChannelMask.of(h.device.channels.length, [0]),
    cyclic: false,
    isOutput: false,
  });
  process.stdout.write('open\n');
  const how = process.argv[2];
  setTimeout(() => {
    if (how === 'throw') throw new Error('an uncaught exception with a buffer open');
    if (how === 'reject') void Promise.reject(new Error('an unhandled rejection'));
    if (how === 'sigint') process.kill(process.pid, 'SIGINT');
    if (how === 'exit') process.exit(3);
  }, 20);
}

void main();

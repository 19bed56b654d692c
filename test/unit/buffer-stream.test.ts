import assert from 'node:assert/strict';
import { IioError } from '../../src/errors';
import { parseScanType } from '../../src/format/scan-type';
import type { Backend, BackendBuffer, RawBlock } from '../../src/model/backend';
import { Context } from '../../src/model/context';
import type { ContextInfo } from '../../src/model/info';

// stream() is a hand-written async iterator (not an async generator, for speed): these pin
// the generator behaviour callers rely on, against a backend buffer that refuses a second
// read() while one is pending, as the iiod backend does ("a refill is already pending").

const format = parseScanType('le:s16/16>>0');
const info: ContextInfo = {
  name: 'test',
  description: 'stream() semantics',
  version: { major: 0, minor: 0, git: 'test' },
  attrs: [],
  devices: [
    {
      id: 'iio:device0',
      name: 'adc',
      channels: [0, 1].map((i) => ({
        id: `voltage${i}`,
        isOutput: false,
        index: i,
        isScanElement: true,
        format,
        attrs: [],
      })),
      attrs: [],
      bufferAttrs: [],
      debugAttrs: [],
    },
    {
      id: 'iio:device1',
      name: 'dac',
      channels: [
        { id: 'voltage0', isOutput: true, index: 0, isScanElement: true, format, attrs: [] },
      ],
      attrs: [],
      bufferAttrs: [],
      debugAttrs: [],
    },
  ],
};

interface Script {
  /** What each read() does, in order: a block's first byte, or an error code. */
  steps: Array<number | string>;
  reads: number;
  released: number[];
}

function backend(script: Script): Backend {
  return {
    name: 'test',
    uri: 'test:',
    info,
    readAttr: async () => '',
    writeAttr: async () => 0,
    getTrigger: async () => null,
    setTrigger: async () => undefined,
    async openBuffer(_dev, opts): Promise<BackendBuffer> {
      let pending = false;
      let closed = false;
      return {
        mask: opts.mask,
        read(): Promise<RawBlock> {
          if (pending) return Promise.reject(new IioError('EBUSY', 'a refill is already pending'));
          pending = true;
          const step = script.steps[script.reads++];
          return new Promise((resolve, reject) =>
            setImmediate(() => {
              pending = false;
              if (closed) return reject(new IioError('ECANCELED', 'closed'));
              if (step === undefined || typeof step === 'string')
                return reject(new IioError(step ?? 'EIO', 'scripted failure'));
              const data = Buffer.alloc(8, step);
              resolve({
                data,
                lost: step === 3 ? 5 : 0,
                release: () => script.released.push(step),
              });
            }),
          );
        },
        write: async () => undefined,
        cancel: () => undefined,
        async close(): Promise<void> {
          closed = true;
        },
      };
    },
    close: async () => undefined,
  };
}

async function open(script: Script, device = 'adc') {
  const ctx = new Context(backend(script));
  const dev = ctx.device(device);
  return dev.createBuffer(2, { channels: dev.channels.map((c) => c.id) });
}

describe('IioBuffer.stream()', () => {
  it('steps one at a time: next() called twice at once reads in turn, in order', async () => {
    const script: Script = { steps: [1, 2, 3], reads: 0, released: [] };
    const buf = await open(script);
    const s = buf.stream();
    const [a, b, c] = await Promise.all([s.next(), s.next(), s.next()]);
    assert.deepEqual(
      [a, b, c].map((r) => (r.done ? 'done' : [r.value.data[0], r.value.seq, r.value.samples])),
      [
        [1, 0, 2],
        [2, 1, 2],
        [3, 2, 2],
      ],
    );
    assert.equal(c.done ? -1 : c.value.lost, 5);
    assert.equal(buf.lost, 5);
    if (!a.done) a.value.release();
    assert.deepEqual(script.released, [1]);
    await buf.close();
  });

  it('ends after an error: the error once, then done', async () => {
    const script: Script = { steps: [1, 'EIO', 2], reads: 0, released: [] };
    const buf = await open(script);
    const s = buf.stream();
    assert.equal((await s.next()).done, false);
    await assert.rejects(s.next(), (e: IioError) => e.code === 'EIO');
    assert.deepEqual(await s.next(), { value: undefined, done: true });
    assert.equal(script.reads, 2);
    await buf.close();
  });

  it('return() ends it (break in for await) and later next() reads nothing', async () => {
    const script: Script = { steps: [1, 2, 3, 4], reads: 0, released: [] };
    const buf = await open(script);
    const s = buf.stream();
    let n = 0;
    for await (const b of s) {
      b.release();
      if (++n === 2) break;
    }
    assert.deepEqual(await s.next(), { value: undefined, done: true });
    assert.equal(script.reads, 2);
    // a new stream() goes on with the next block
    const again = await buf.stream().next();
    assert.equal(again.done ? -1 : again.value.data[0], 3);
    await buf.close();
  });

  it('ends quietly when the buffer is closed while a read waits', async () => {
    const script: Script = { steps: [1, 2], reads: 0, released: [] };
    const buf = await open(script);
    const s = buf.stream();
    const pending = s.next();
    await buf.close();
    assert.deepEqual(await pending, { value: undefined, done: true });
  });

  it('rejects on the first next() for a closed or an output buffer', async () => {
    const script: Script = { steps: [], reads: 0, released: [] };
    const closed = await open(script);
    await closed.close();
    await assert.rejects(closed.stream().next(), (e: IioError) => e.code === 'EBADF');
    const out = await open(script, 'dac');
    await assert.rejects(out.stream().next(), (e: IioError) => e.code === 'EPERM');
    await out.close();
  });
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { IioError } from '../../src/errors';
import { ByteReader } from '../../src/backends/iiod/reader';

// The ip: client's payloads are meant to be copied once, from the socket into the block:
// the TCP transport asks the reader where each socket read goes (readTarget, else a shared
// 64 KiB buffer whose bytes must be copied out, at most readLimit of them). Here the
// transport's loop is replayed as Node runs it: the next read's buffer is chosen right
// after each callback, before the reader's own continuations run, against a wire where
// every read finds its buffer's worth waiting (the worst case: a fast server).

const REPLIES = 8;
const PAYLOAD = 128 * 1024;

function wire(payloads: Buffer[]): Buffer {
  return Buffer.concat(payloads.flatMap((p) => [Buffer.from(`${p.length}\nff\n`), p]));
}

describe('iiod ByteReader: READBUF payloads straight into the block', () => {
  it('copies only the reply headers’ reads out of the shared buffer, never a payload', async () => {
    const payloads = Array.from({ length: REPLIES }, () => randomBytes(PAYLOAD));
    const bytes = wire(payloads);
    const r = new ByteReader((cause) => cause ?? new IioError('EPIPE', 'end'));
    const fallback = Buffer.alloc(65536);
    let direct: Buffer | undefined;
    const pick = (): Buffer => {
      direct = r.readTarget();
      if (direct) return direct;
      const limit = r.readLimit();
      return limit ? fallback.subarray(0, limit) : fallback;
    };
    // the consumer: readbuf.ts's order (length line, mask line, the payload into a block)
    const got: Buffer[] = [];
    const consumer = (async () => {
      for (let i = 0; i < REPLIES; i++) {
        const n = Number(await r.readLine(64));
        assert.equal(await r.readLine(64), 'ff');
        const block = Buffer.alloc(n);
        await r.readInto(block, 0, n);
        got.push(block);
      }
    })();
    let pos = 0;
    let copied = 0;
    let next = pick();
    while (pos < bytes.length) {
      const buf = next;
      const n = Math.min(buf.length, bytes.length - pos);
      bytes.copy(buf, 0, pos, pos + n);
      pos += n;
      if (buf === direct) r.filled(n);
      else {
        r.data(buf.subarray(0, n), true);
        copied += n;
      }
      next = pick(); // Node asks for the next buffer before the microtasks run
      await new Promise((res) => setImmediate(res));
    }
    await consumer;
    assert.equal(got.length, REPLIES);
    got.forEach((b, i) => assert.ok(b.equals(payloads[i]), `payload ${i} intact`));
    // per reply, the reads before its payload's read is issued (the header's, and the one
    // chosen while the header lines resolve) take 256 bytes each, no more
    assert.ok(copied <= REPLIES * 2 * 256, `${copied} bytes went through the shared buffer`);
  });
});

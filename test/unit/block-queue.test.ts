/**
 * BlockQueue (src/model/block-queue.ts): what read() answers in each case, for every
 * backend that streams through it (native, iiod with a connection of its own, iiod on a
 * shared UART).
 */
import assert from 'node:assert/strict';
import { IioError } from '../../src';
import { BlockQueue } from '../../src/model/block-queue';

interface TestBlock {
  readonly n: number;
  released: boolean;
  release(): void;
}

function block(n: number): TestBlock {
  return {
    n,
    released: false,
    release() {
      this.released = true;
    },
  };
}

/** Settles `p` into a value to compare: the block's number or the error's code and text. */
async function outcome(p: Promise<TestBlock>): Promise<number | string> {
  return p.then(
    (b) => b.n,
    (e: IioError) => `${e.code}: ${e.detail}`,
  );
}

describe('BlockQueue', () => {
  it('hands blocks out in order, a failure in its place among them', async () => {
    const q = new BlockQueue<TestBlock>();
    assert.equal(q.push(block(1)), false);
    assert.equal(q.fail(new IioError('EIO', 'broken')), false);
    assert.equal(q.push(block(2)), false);
    assert.equal(q.size, 3);
    assert.deepEqual(
      [await outcome(q.take()), await outcome(q.take()), await outcome(q.take())],
      [1, 'EIO: broken', 2],
    );
  });

  it('a delivery goes straight to a waiting read (and says so)', async () => {
    const q = new BlockQueue<TestBlock>();
    const p = q.take();
    assert.equal(q.waiting, 1);
    assert.equal(q.push(block(7)), true);
    assert.equal(await outcome(p), 7);
    const r = q.take();
    assert.equal(q.fail(new IioError('ETIMEDOUT', 'late')), true);
    assert.equal(await outcome(r), 'ETIMEDOUT: late');
    assert.equal(q.size, 0);
  });

  it('without `busy`, reads wait in turn; with it, a second read is refused', async () => {
    const free = new BlockQueue<TestBlock>();
    const a = free.take();
    const b = free.take();
    free.push(block(1));
    free.push(block(2));
    assert.deepEqual([await outcome(a), await outcome(b)], [1, 2]);

    const one = new BlockQueue<TestBlock>({ busy: () => new IioError('EBUSY', 'pending') });
    const first = one.take();
    assert.equal(await outcome(one.take()), 'EBUSY: pending');
    one.push(block(3));
    assert.equal(await outcome(first), 3);
  });

  it('tells the producer when a queued item is taken, and how many are left', async () => {
    const left: number[] = [];
    const q = new BlockQueue<TestBlock>({ onTake: (n) => left.push(n) });
    q.push(block(1));
    q.push(block(2));
    const waited = q.take().then(() => q.take());
    await waited;
    // a read that waited got its block directly: nothing was taken from the queue
    const r = q.take();
    q.push(block(3));
    await r;
    assert.deepEqual(left, [1, 0]);
  });

  it('a deadline fails a read still waiting, with the error expire() builds', async () => {
    const q = new BlockQueue<TestBlock>({ busy: () => new IioError('EBUSY', 'pending') });
    const p = q.take();
    let expired = 0;
    q.armWaiters(5, () => {
      expired++;
      return new IioError('ETIMEDOUT', 'no data');
    });
    assert.equal(await outcome(p), 'ETIMEDOUT: no data');
    assert.equal(expired, 1);
    assert.equal(q.waiting, 0);
  });

  it('a read served in time, or disarmed, never meets its deadline', async () => {
    const q = new BlockQueue<TestBlock>();
    let expired = 0;
    const expire = (): IioError => {
      expired++;
      return new IioError('ETIMEDOUT', 'no data');
    };
    const served = q.take();
    q.armWaiters(5, expire);
    q.push(block(1));
    assert.equal(await outcome(served), 1);
    const waiting = q.take();
    q.armWaiters(5, expire);
    q.disarmWaiters();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(expired, 0);
    q.push(block(2));
    assert.equal(await outcome(waiting), 2);
  });

  it('end(): what is queued is still read, then every read fails with the end', async () => {
    const q = new BlockQueue<TestBlock>();
    q.push(block(1));
    q.end(new IioError('ECANCELED', 'stopped'));
    assert.equal(await outcome(q.take()), 1);
    assert.equal(await outcome(q.take()), 'ECANCELED: stopped');
    assert.equal(await outcome(q.take()), 'ECANCELED: stopped');
  });

  it('end() and rejectWaiters() fail the reads waiting now', async () => {
    const q = new BlockQueue<TestBlock>();
    const a = q.take();
    q.rejectWaiters(new IioError('ECANCELED', 'cancelled'));
    assert.equal(await outcome(a), 'ECANCELED: cancelled');
    const b = q.take();
    q.end(new IioError('EBADF', 'closed'));
    assert.equal(await outcome(b), 'EBADF: closed');
  });

  it('clear() releases the queued blocks and drops queued errors', () => {
    const q = new BlockQueue<TestBlock>();
    const kept = [block(1), block(2)];
    q.push(kept[0]);
    q.fail(new IioError('EIO', 'x'));
    q.push(kept[1]);
    q.clear();
    assert.equal(q.size, 0);
    assert.deepEqual(
      kept.map((b) => b.released),
      [true, true],
    );
  });
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNative } from '../../src/native';
import { requirePeer, which, type Peer } from '../helpers/peers';

const gcc: Peer = {
  name: 'gcc with the Linux UAPI headers (linux-libc-dev)',
  install: 'apt-get install -y gcc linux-libc-dev',
  available: () => !!which('gcc'),
};

// Printed by gcc from the installed headers. Headers older than 6.11 (Debian 12 ships
// 6.1's) have no DMABUF part in linux/iio/buffer.h: then its definitions from the 6.11
// UAPI are compiled here, still encoded by the headers' own _IOW macro.
const PROGRAM = String.raw`
#include <stdio.h>
#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/iio/events.h>
#include <linux/iio/buffer.h>
#include <linux/dma-heap.h>
#include <linux/dma-buf.h>
#include <linux/sync_file.h>
#ifndef IIO_BUFFER_DMABUF_ATTACH_IOCTL
#define DMABUF_FROM_HEADERS 0
struct iio_dmabuf { __u32 fd; __u32 flags; __u64 bytes_used; };
#define IIO_BUFFER_DMABUF_ATTACH_IOCTL _IOW('i', 0x92, int)
#define IIO_BUFFER_DMABUF_DETACH_IOCTL _IOW('i', 0x93, int)
#define IIO_BUFFER_DMABUF_ENQUEUE_IOCTL _IOW('i', 0x94, struct iio_dmabuf)
#else
#define DMABUF_FROM_HEADERS 1
#endif
#define P(n) printf("\"%s\": %lu,\n", #n, (unsigned long)(n))
int main(void) {
  printf("{\n");
  P(IIO_GET_EVENT_FD_IOCTL);
  P(IIO_BUFFER_GET_FD_IOCTL);
  P(IIO_BUFFER_DMABUF_ATTACH_IOCTL);
  P(IIO_BUFFER_DMABUF_DETACH_IOCTL);
  P(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL);
  P(DMA_HEAP_IOCTL_ALLOC);
  P(DMA_BUF_IOCTL_SYNC);
  P(DMA_BUF_IOCTL_EXPORT_SYNC_FILE);
  P(SYNC_IOC_FILE_INFO);
  printf("\"dmabufFromHeaders\": %d\n}\n", DMABUF_FROM_HEADERS);
  return 0;
}
`;

describe('native module: ioctl numbers and self test', function () {
  it('computes every ioctl number exactly as gcc does from the kernel headers', function () {
    requirePeer(this, gcc);
    const dir = mkdtempSync(join(tmpdir(), 'iiokit-ioctl-'));
    try {
      writeFileSync(join(dir, 'ioctls.c'), PROGRAM);
      execFileSync('gcc', ['-o', join(dir, 'ioctls'), join(dir, 'ioctls.c')]);
      const fromHeaders = JSON.parse(
        execFileSync(join(dir, 'ioctls'), { encoding: 'utf8' }),
      ) as Record<string, number>;
      const ours = loadNative().ioctls();
      const names = Object.keys(ours).sort();
      assert.deepEqual(
        names,
        Object.keys(fromHeaders)
          .filter((k) => k !== 'dmabufFromHeaders')
          .sort(),
      );
      for (const n of names)
        assert.equal(ours[n], fromHeaders[n], `${n}: ours ${ours[n].toString(16)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes its self test (eventfd, ioctl encoding, pool, a stream through a pipe)', () => {
    const r = loadNative().selfTest();
    const failed = r.checks.filter((c) => !c.ok);
    assert.deepEqual(failed, []);
    assert.ok(r.ok);
    assert.ok(r.checks.some((c) => c.name === 'stream through a pipe'));
    assert.ok(r.checks.length >= 8);
  });
});

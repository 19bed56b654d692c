#include "selftest.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "ioctl.h"
#include "pool.h"
#include "stream.h"
#include "sys.h"

namespace iiokit {
namespace selftest {
namespace {

std::string hex(unsigned long v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%lx", v);
  return b;
}

void eventfdCheck(std::vector<Check>* out) {
  sys::Signal s;
  bool ok = s.status() == 0;
  std::string detail = ok ? "" : "eventfd failed";
  if (ok) {
    s.raise();
    s.raise();
    uint64_t a = s.drain();
    uint64_t b = s.drain();
    ok = a == 2 && b == 0;
    detail = "drained " + std::to_string(a) + " then " + std::to_string(b);
  }
  out->push_back({"eventfd raise/drain", ok, detail});
}

void ioctlCheck(std::vector<Check>* out) {
  // Whatever the architecture, the numbers must decode back to their parts.
  struct Want {
    const char* name;
    unsigned long v;
    unsigned dir;
    unsigned type;
    unsigned nr;
    unsigned size;
  } wants[] = {
      {"IIO_GET_EVENT_FD_IOCTL", kIioGetEventFdIoctl, _IOC_READ, 'i', 0x90, 4},
      {"IIO_BUFFER_GET_FD_IOCTL", kIioBufferGetFdIoctl, _IOC_READ | _IOC_WRITE, 'i', 0x91, 4},
      {"IIO_BUFFER_DMABUF_ATTACH_IOCTL", kIioBufferDmabufAttachIoctl, _IOC_WRITE, 'i', 0x92, 4},
      {"IIO_BUFFER_DMABUF_ENQUEUE_IOCTL", kIioBufferDmabufEnqueueIoctl, _IOC_WRITE, 'i', 0x94, 16},
      {"DMA_HEAP_IOCTL_ALLOC", kDmaHeapIoctlAlloc, _IOC_READ | _IOC_WRITE, 'H', 0, 24},
      {"DMA_BUF_IOCTL_SYNC", kDmaBufIoctlSync, _IOC_WRITE, 'b', 0, 8},
      {"DMA_BUF_IOCTL_EXPORT_SYNC_FILE", kDmaBufIoctlExportSyncFile, _IOC_READ | _IOC_WRITE, 'b', 2, 8},
      {"SYNC_IOC_FILE_INFO", kSyncIocFileInfo, _IOC_READ | _IOC_WRITE, '>', 4, 56},
  };
  for (const auto& w : wants) {
    bool ok = _IOC_DIR(w.v) == w.dir && _IOC_TYPE(w.v) == w.type && _IOC_NR(w.v) == w.nr &&
              _IOC_SIZE(w.v) == w.size;
    out->push_back({std::string("ioctl ") + w.name, ok, hex(w.v)});
  }
  // On the generic encoding (x86, ARM, arm64, RISC-V) the numbers are well known.
  if (_IOC_WRITE == 1U && _IOC_DIRSHIFT == 30) {
    bool ok = kIioGetEventFdIoctl == 0x80046990UL && kIioBufferGetFdIoctl == 0xc0046991UL &&
              kIioBufferDmabufAttachIoctl == 0x40046992UL &&
              kIioBufferDmabufEnqueueIoctl == 0x40106994UL && kDmaHeapIoctlAlloc == 0xc0184800UL &&
              kDmaBufIoctlSync == 0x40086200UL;
    out->push_back({"ioctl numbers (generic encoding)", ok, ""});
  }
}

void poolCheck(std::vector<Check>* out) {
  int err = 0;
  auto pool = BlockPool::heap(2, 64, &err);
  if (!pool) {
    out->push_back({"pool round trip", false, "allocation failed"});
    return;
  }
  int a = pool->takeFree();
  int b = pool->takeFree();
  int dry = pool->takeFree();
  uint32_t ga = pool->lend(a);
  bool released = pool->giveBack(a, ga, false);
  bool again = pool->giveBack(a, ga, false);
  pool->putBack(b);
  int c = pool->takeFree();
  uint32_t gc = pool->lend(c);
  bool stale = c == a ? pool->giveBack(c, ga, true) : false;
  bool fin = pool->giveBack(c, gc, true);
  bool ok = a >= 0 && b >= 0 && dry == -1 && released && !again && !stale && fin &&
            pool->freeCount() == 2 && pool->releasedExplicitly() == 1 &&
            pool->releasedByFinalizer() == 1;
  out->push_back({"pool round trip", ok,
                  "dry=" + std::to_string(dry) + " again=" + std::to_string(again) +
                      " stale=" + std::to_string(stale)});
}

void streamCheck(std::vector<Check>* out) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    out->push_back({"stream through a pipe", false, "pipe failed"});
    return;
  }
  StreamConfig cfg;
  cfg.fd = p[0];
  cfg.blockBytes = 8;
  cfg.unitBytes = 4;
  cfg.blocks = 2;
  cfg.timeoutMs = 5000;
  auto s = std::make_shared<Stream>(cfg);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint8_t> got;
  int blocks = 0;
  int r = s->start([&](Delivery* d) {
    std::lock_guard<std::mutex> lk(mu);
    if (d->kind == DeliveryKind::Block) {
      const uint8_t* data = d->fresh ? d->fresh : s->pool()->data(d->idx);
      got.insert(got.end(), data, data + d->len);
      blocks++;
    }
    cv.notify_all();
    return false;  // not taken: the core disposes of it (returns the block)
  });
  const uint8_t msg[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  bool ok = r == 0 && ::write(p[1], msg, sizeof msg) == sizeof msg;
  if (ok) {
    std::unique_lock<std::mutex> lk(mu);
    ok = cv.wait_for(lk, std::chrono::seconds(5), [&] { return got.size() >= 16; });
  }
  s->close();
  ok = ok && blocks == 2 && got.size() == 16;
  for (size_t i = 0; ok && i < 16; i++) ok = got[i] == msg[i];
  ::close(p[0]);
  ::close(p[1]);
  out->push_back({"stream through a pipe", ok, std::to_string(blocks) + " blocks"});
}

}  // namespace

bool run(std::vector<Check>* checks) {
  eventfdCheck(checks);
  ioctlCheck(checks);
  poolCheck(checks);
  streamCheck(checks);
  bool ok = true;
  for (const auto& c : *checks) ok = ok && c.ok;
  return ok;
}

}  // namespace selftest
}  // namespace iiokit

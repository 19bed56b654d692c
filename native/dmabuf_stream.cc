#include "dmabuf_stream.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

#include "ioctl.h"
#include "stream.h"
#include "sys.h"

namespace iiokit {

namespace {
// How long the input thread waits for JS to give a DMABUF back before it copies instead
// (only for consumers that release blocks explicitly; see runInput). Long enough for a
// busy event loop (a Node-RED flow under load), short enough that a consumer that kept
// its blocks costs a hiccup, not a hang.
constexpr int64_t kLendWaitUs = 1000000;
}  // namespace

std::unique_ptr<DmabufTransfer> DmabufTransfer::open(const Config& cfg,
                                                     const std::string& heapPath,
                                                     dmabuf::Failure* fail) {
  if (cfg.count < 1 || cfg.blockBytes == 0) {
    *fail = {EINVAL, "configure"};
    return nullptr;
  }
  std::vector<BlockPool::Dmabuf> blocks;
  if (!dmabuf::allocate(heapPath, cfg.count, cfg.blockBytes, &blocks, fail)) return nullptr;
  const uint64_t rw = cfg.output ? kDmaBufSyncWrite : kDmaBufSyncRead;
  for (size_t i = 0; i < blocks.size(); i++) {
    int r = dmabuf::attach(cfg.bufferFd, blocks[i].fd);
    // Like libiio, a new DMABUF starts with the CPU: SYNC START now, END before the first
    // ENQUEUE (a udmabuf refuses an END that no START preceded).
    if (r == 0) {
      r = sys::dmaBufSync(blocks[i].fd, kDmaBufSyncStart | rw);
      if (r < 0) dmabuf::detach(cfg.bufferFd, blocks[i].fd);
      if (r < 0) *fail = {-r, "sync"};
    } else {
      *fail = {-r, "attach"};
    }
    if (r < 0) {
      for (size_t j = 0; j < i; j++) dmabuf::detach(cfg.bufferFd, blocks[j].fd);
      dmabuf::release(&blocks, cfg.blockBytes);
      return nullptr;
    }
  }
  std::vector<int> fds;
  for (auto& b : blocks) fds.push_back(b.fd);
  std::unique_ptr<DmabufTransfer> t(new DmabufTransfer(cfg, BlockPool::dmabufs(blocks, cfg.blockBytes)));
  t->fds_ = fds;
  t->cpuOwned_.assign(fds.size(), true);
  // Input blocks come back from JS through the pool's return queue: the thread, not the
  // JS thread, gives them to the kernel (SYNC and ENQUEUE may block).
  t->pool_->setReturnQueue(!cfg.output);
  return t;
}

DmabufTransfer::DmabufTransfer(const Config& cfg, std::shared_ptr<BlockPool> pool)
    : cfg_(cfg), pool_(std::move(pool)) {
  if (cfg_.unitBytes < 1) cfg_.unitBytes = 1;
}

DmabufTransfer::~DmabufTransfer() { detach(); }

int DmabufTransfer::detach() {
  if (detached_) return 0;
  detached_ = true;
  for (auto& q : inKernel_)
    if (q.fence >= 0) sys::closeFd(q.fence);
  inKernel_.clear();
  inKernelCount_ = 0;
  int first = 0;
  for (size_t i = 0; i < fds_.size(); i++) {
    int r = dmabuf::detach(cfg_.bufferFd, fds_[i]);
    if (r < 0 && !first) first = r;
    // The mapping keeps the DMABUF alive for the JS Buffers that may still alias it; the
    // fd is not needed any more (and must not outlive the stream: /proc/self/fd).
    pool_->closeDmabufFd(static_cast<int>(i));
  }
  fds_.clear();
  return first;
}

DmabufStats DmabufTransfer::stats() const {
  DmabufStats s;
  s.inKernel = inKernelCount_.load();
  s.enqueued = enqueued_.load();
  s.completed = completed_.load();
  s.errors = errors_.load();
  s.lostUnits = lostUnits_.load();
  s.starved = starved_.load();
  s.lastError = lastError_.load();
  return s;
}

int64_t DmabufTransfer::deadlineFrom(int64_t startUs) const {
  return cfg_.timeoutMs > 0 ? startUs + static_cast<int64_t>(cfg_.timeoutMs) * 1000 : -1;
}

int DmabufTransfer::toKernel(int idx, size_t bytes, bool cyclic) {
  int fd = fds_[idx];
  if (cpuOwned_[idx]) {
    int r = sys::dmaBufSync(fd, kDmaBufSyncEnd | (cfg_.output ? kDmaBufSyncWrite : kDmaBufSyncRead));
    if (r < 0) return r;
    cpuOwned_[idx] = false;
  }
  int r = dmabuf::enqueue(cfg_.bufferFd, fd, bytes, cyclic);
  if (r < 0) return r;
  // The fence is in the DMABUF's reservation object once ENQUEUE returns: export it now
  // to learn its error later (an older kernel without the ioctl: poll the DMABUF instead).
  int fence = dmabuf::exportFence(fd);
  inKernel_.push_back({idx, fence < 0 ? -1 : fence, bytes});
  inKernelCount_ = inKernel_.size();
  enqueued_++;
  return 0;
}

int DmabufTransfer::waitHead(StreamPort& port, int64_t deadlineUs, Queued* done) {
  const Queued& head = inKernel_.front();
  // A sync_file is readable once its fence signals; a DMABUF is writable (POLLOUT) once
  // every fence on it has (POLLIN would not wait for an output DMABUF's read fence).
  int w = head.fence >= 0 ? port.wait(head.fence, POLLIN, deadlineUs)
                          : port.wait(fds_[head.idx], POLLOUT, deadlineUs);
  if (w != 1) return w;
  *done = head;
  inKernel_.pop_front();
  inKernelCount_ = inKernel_.size();
  return 1;
}

int DmabufTransfer::verdict(Queued* q) {
  if (q->fence < 0) return 0;
  int st = dmabuf::fenceStatus(q->fence);
  sys::closeFd(q->fence);
  q->fence = -1;
  return st < 0 ? st : 0;
}

void DmabufTransfer::noteCompletion(int err, size_t bytes) {
  completed_++;
  if (err < 0) {
    errors_++;
    lostUnits_ += bytes / cfg_.unitBytes;
    lastError_ = err;
  }
}

void DmabufTransfer::run(StreamPort& port) {
  if (cfg_.output)
    runOutput(port);
  else
    runInput(port);
}

void DmabufTransfer::runInput(StreamPort& port) {
  const size_t size = cfg_.blockBytes;
  for (int i; (i = pool_->takeFree()) >= 0;) {
    int r = toKernel(i, size, false);
    if (r < 0) {
      port.sendError(-r, "enqueue", nullptr, 0);
      return;
    }
  }
  uint64_t lostBefore = 0;         // units lost since the last delivered block
  int64_t headSince = sys::nowUs();  // the fill timeout runs per block, from here
  while (!port.stopping()) {
    // Blocks JS released go back to the kernel first: the device may be waiting for them.
    int back;
    while (pool_->popReturned(&back)) {
      int r = toKernel(back, size, false);
      if (r < 0) {
        port.flushBlocks();
        port.sendError(-r, "enqueue", nullptr, 0);
        return;
      }
    }
    if (inKernel_.empty() || !port.takeCredit()) {
      // JS holds every block, or its queue is full: nothing to wait for but JS.
      port.flushBlocks();
      int w = port.wait(-1, 0, -1);
      if (w == -ECANCELED) break;
      if (w < 0) {
        port.sendError(-w, "poll", nullptr, 0);
        return;
      }
      headSince = sys::nowUs();
      continue;
    }
    Queued done{};
    int w = waitHead(port, 0, &done);
    if (w == 0) {
      // Not done yet: hand over what is kept back before sleeping on it.
      port.flushBlocks();
      w = waitHead(port, deadlineFrom(headSince), &done);
    }
    if (w != 1) {
      if (w == 2) {
        port.refundCredit();
        continue;
      }
      if (w == -ECANCELED) {
        port.refundCredit();
        break;
      }
      if (w == 0) {
        // The error takes the queue place; the block stays queued and is waited for again.
        port.noteTimeout();
        port.sendError(ETIMEDOUT, "poll dmabuf", nullptr, 0);
        headSince = sys::nowUs();
        continue;
      }
      port.sendError(-w, "poll dmabuf", nullptr, 0);
      return;
    }
    headSince = sys::nowUs();
    if (inKernel_.empty()) starved_++;
    const int idx = done.idx;
    const int err = verdict(&done);
    noteCompletion(err, size);
    int r = sys::dmaBufSync(fds_[idx], kDmaBufSyncStart | kDmaBufSyncRead);
    if (r < 0) {
      port.sendError(-r, "sync", nullptr, 0);
      return;
    }
    cpuOwned_[idx] = true;
    if (err < 0) {
      // Aborted (the buffer was disabled under it): its bytes are not scans. Counted and
      // reported with the next block as lost, and the DMABUF goes straight back.
      lostBefore += size / cfg_.unitBytes;
      port.refundCredit();
      r = toKernel(idx, size, false);
      if (r < 0) {
        port.sendError(-r, "enqueue", nullptr, 0);
        return;
      }
      continue;
    }
    Delivery* d = new Delivery;
    d->kind = DeliveryKind::Block;
    d->len = size;
    d->lost = lostBefore;
    lostBefore = 0;
    if (copyWhenDry_ && pool_->releasedExplicitly() != releasedAtTimeout_) copyWhenDry_ = false;
    if (pool_->lentCount() + 1 >= pool_->count() && !copyWhenDry_) {
      // Lending it would leave the device nothing to fill: backpressure. Wait for JS to
      // give a DMABUF back (the device stalls meanwhile, counted in `starved`), so that
      // every block stays zero copy and JS never holds more than the pool.
      r = waitForRelease(port);
      if (r == -ECANCELED) {
        delete d;
        break;
      }
      if (r < 0) {
        delete d;
        port.sendError(-r, "enqueue", nullptr, 0);
        return;
      }
    }
    if (pool_->lentCount() + 1 >= pool_->count()) {
      // None came back in time: this consumer keeps its blocks (or leaves them to the
      // garbage collector, which may never run without allocations). From now on until it
      // calls release() again, it gets copies (counted) and the DMABUF goes back at once:
      // a copy, never a stall that only the collector could end.
      if (!copyWhenDry_) {
        copyWhenDry_ = true;
        releasedAtTimeout_ = pool_->releasedExplicitly();
      }
      d->fresh = static_cast<uint8_t*>(::malloc(size));
      if (!d->fresh) {
        delete d;
        port.sendError(ENOMEM, "malloc", nullptr, 0);
        return;
      }
      ::memcpy(d->fresh, pool_->data(idx), size);
      r = toKernel(idx, size, false);
      if (r < 0) {
        ::free(d->fresh);
        delete d;
        port.sendError(-r, "enqueue", nullptr, 0);
        return;
      }
    } else {
      d->idx = idx;
      d->gen = pool_->lend(idx);
    }
    port.deliverBlock(d);
  }
  port.flushBlocks();
}

int DmabufTransfer::waitForRelease(StreamPort& port) {
  const int64_t until = sys::nowUs() + kLendWaitUs;
  for (;;) {
    int back;
    bool any = false;
    while (pool_->popReturned(&back)) {
      int r = toKernel(back, cfg_.blockBytes, false);
      if (r < 0) return r;
      any = true;
    }
    if (any) return 0;
    port.flushBlocks();
    int w = port.wait(-1, 0, until);
    if (w == 0) return 0;  // none came back in time: the caller copies
    if (w < 0) return w;
  }
}

void DmabufTransfer::reapOutput(StreamPort& port) {
  while (!inKernel_.empty()) {
    Queued done{};
    if (waitHead(port, 0, &done) != 1) return;
    int err = verdict(&done);
    noteCompletion(err, done.bytes);
    if (err < 0) errorsSinceDrain_++;
    pool_->putBack(done.idx);
  }
}

void DmabufTransfer::runOutput(StreamPort& port) {
  const size_t size = cfg_.blockBytes;
  bool cyclicQueued = false;
  for (;;) {
    reapOutput(port);
    WriteJob* job = port.nextJob();
    if (!job) {
      if (port.stopping()) return;
      // Sleep until a transfer completes (to free its DMABUF and count it), a push comes,
      // or the stream is cancelled. A cyclic DMABUF completes only when disabled.
      int w = !inKernel_.empty() && !cyclicQueued
                  ? (inKernel_.front().fence >= 0
                         ? port.wait(inKernel_.front().fence, POLLIN, -1)
                         : port.wait(fds_[inKernel_.front().idx], POLLOUT, -1))
                  : port.wait(-1, 0, -1);
      if (w == -ECANCELED) return;
      if (w < 0) {
        port.sendError(-w, "poll dmabuf", nullptr, 0);
        return;
      }
      continue;
    }
    if (job->len == 0) {
      // A drain: resolved once every DMABUF queued so far has been played. The timeout
      // runs from the last completion: a device that plays nothing for that long fails it.
      int64_t since = sys::nowUs();
      int w = 1;
      while (!inKernel_.empty() && !cyclicQueued) {
        Queued done{};
        w = waitHead(port, deadlineFrom(since), &done);
        if (w == 2) continue;
        if (w != 1) break;
        int err = verdict(&done);
        noteCompletion(err, done.bytes);
        if (err < 0) errorsSinceDrain_++;
        pool_->putBack(done.idx);
        since = sys::nowUs();
      }
      if (w == -ECANCELED) {
        port.returnJob(job);
        return;
      }
      if (w == 0) {
        port.noteTimeout();
        port.sendError(ETIMEDOUT, "drain dmabuf", job, 0);
        continue;
      }
      if (w < 0) {
        port.sendError(-w, "poll dmabuf", job, 0);
        return;
      }
      if (errorsSinceDrain_) {
        errorsSinceDrain_ = 0;
        port.sendError(EIO, "dmabuf transfer aborted", job, 0);
        continue;
      }
      port.sendWritten(job);
      continue;
    }
    if (cfg_.cyclic && job->len > size) {
      port.sendError(EINVAL, "cyclic push larger than the buffer", job, 0);
      continue;
    }
    size_t off = 0;
    int err = 0;
    const char* op = "";
    int64_t since = sys::nowUs();
    while (off < job->len && !err) {
      int idx = pool_->takeFree();
      if (idx < 0) {
        // Every DMABUF is with the kernel: wait for the oldest to be played.
        Queued done{};
        int w = inKernel_.empty() ? -EIO : waitHead(port, deadlineFrom(since), &done);
        if (w == 2) continue;
        if (w == 1) {
          int e = verdict(&done);
          noteCompletion(e, done.bytes);
          if (e < 0) errorsSinceDrain_++;
          pool_->putBack(done.idx);
          since = sys::nowUs();
          continue;
        }
        err = w == 0 ? ETIMEDOUT : -w;
        op = "poll dmabuf";
        break;
      }
      const size_t n = std::min(size, job->len - off);
      int fd = fds_[idx];
      int r = 0;
      if (!cpuOwned_[idx]) r = sys::dmaBufSync(fd, kDmaBufSyncStart | kDmaBufSyncWrite);
      if (r == 0) {
        cpuOwned_[idx] = true;
        ::memcpy(pool_->data(idx), job->data + off, n);
        r = toKernel(idx, n, cfg_.cyclic);
      }
      if (r < 0) {
        pool_->putBack(idx);
        err = -r;
        op = "enqueue";
        break;
      }
      off += n;
      if (cfg_.cyclic) cyclicQueued = true;
    }
    if (err) {
      if (err == ETIMEDOUT) port.noteTimeout();
      // `off` bytes are in DMABUFs the kernel has queued: the device plays them, and the
      // error says so (pushing them again would play them twice).
      if (port.failJob(job, err, op, off)) continue;
      return;
    }
    port.sendWritten(job);
  }
}

}  // namespace iiokit

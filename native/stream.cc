// The streaming thread's common part: start, stop, queue places (credit), hand-over
// batching, errors and the end, and the StreamPort the DMABUF loops (dmabuf_stream.cc) run
// through. The read()/write() loops are in stream_fileio.cc.
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "ioctl.h"

namespace iiokit {

Stream::Stream(const StreamConfig& cfg) : cfg_(cfg) {
  if (cfg_.blocks < 1) cfg_.blocks = 1;
  if (cfg_.unitBytes < 1) cfg_.unitBytes = 1;
  if (cfg_.batchMaxBlocks < 1) cfg_.batchMaxBlocks = 1;
  credit_ = static_cast<int>(cfg_.blocks);
  // The thread polls and reads its own duplicate: whatever the caller does with its fd
  // (close it, even see the number reused for another file), the stream keeps the file
  // it was given until close(). The file stays open (and an IIO device busy) until both
  // are closed.
  cfg_.fd = ::fcntl(cfg.fd, F_DUPFD_CLOEXEC, 0);
  if (cfg_.fd < 0) dupError_ = -errno;
}

Stream::~Stream() { detachDmabufs(); }

bool Stream::tryDmabuf(const std::string& heapPath, dmabuf::Failure* fail) {
  if (started_) {
    *fail = {EBUSY, "already started"};
    return false;
  }
  if (dmabuf_) return true;
  if (status() < 0) {
    *fail = {-status(), "dup"};
    return false;
  }
  DmabufTransfer::Config c;
  // The stream's own duplicate: the DMABUFs stay attached through it until
  // detachDmabufs(), whatever the caller does with its fd.
  c.bufferFd = cfg_.fd;
  c.output = cfg_.output;
  c.cyclic = cfg_.cyclic;
  // Input: JS's queue plus the block being filled and the one being read. Output: the
  // same number, so that pushes find a free DMABUF while the device plays the others.
  c.count = poolBlocks();
  c.blockBytes = cfg_.blockBytes;
  c.unitBytes = cfg_.unitBytes;
  c.timeoutMs = cfg_.timeoutMs;
  dmabuf_ = DmabufTransfer::open(c, heapPath, fail);
  if (!dmabuf_) return false;
  pool_ = dmabuf_->pool();
  return true;
}

int Stream::start(Sink sink) {
  if (started_) return -EBUSY;
  if (closed_) return -EBADF;
  if (status() < 0) return status();
  if (cancel_.status() < 0) return cancel_.status();
  const bool madePool = !pool_;
  if (madePool) {
    int err = 0;
    // Output through write() sends JS memory directly and needs no pool.
    pool_ = BlockPool::heap(cfg_.output ? 0 : poolBlocks(), cfg_.blockBytes, &err);
    if (!pool_) return err;
  }
  // Whatever fails from here leaves the stream as it was, ready for another start().
  auto undo = [&](int r) {
    if (madePool) pool_.reset();
    sink_ = nullptr;
    return r;
  };
  if (pool_->wake().status() < 0) return undo(pool_->wake().status());
  // read()/write() run non-blocking behind poll(); DMABUF ioctls must block, since
  // O_NONBLOCK turns the kernel's reservation lock into a trylock (spurious EBUSY).
  int r = sys::setNonBlocking(cfg_.fd, !usesDmabuf());
  if (r < 0) return undo(r);
  sink_ = std::move(sink);
  // std::thread throws when the system has no thread to spare (EAGAIN: RLIMIT_NPROC, a
  // cgroup's pids.max); node-addon-api passes only Napi::Error on, anything else would
  // reach std::terminate. started_ is set only once the thread exists.
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    return undo(e.code().value() > 0 ? -e.code().value() : -EAGAIN);
  } catch (const std::exception&) {
    return undo(-ENOMEM);
  }
  started_ = true;
  return 0;
}

void Stream::credit(int n) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    credit_ += n;
  }
  notifyThread();
}

void Stream::notifyThread() {
  cv_.notify_all();
  // The DMABUF loops sleep in poll(), on the DMABUF's fence and this eventfd.
  if (dmabuf_ && pool_) pool_->raiseWake();
}

bool Stream::release(int idx, uint32_t gen) { return pool_ && pool_->giveBack(idx, gen, false); }

int Stream::write(WriteJob* job) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!cfg_.output) return -EPERM;
  if (stop_ || closed_) return -EBADF;
  if (cfg_.cyclic) {
    if (cyclicQueued_) return -EBUSY;
    cyclicQueued_ = true;
  }
  jobs_.push_back(job);
  cv_.notify_all();
  if (dmabuf_ && pool_) pool_->raiseWake();
  return 0;
}

int Stream::drain(WriteJob* job) {
  if (!dmabuf_ || !cfg_.output) return -EPERM;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ || closed_) return -EBADF;
    job->len = 0;
    jobs_.push_back(job);
  }
  notifyThread();
  return 0;
}

void Stream::cancel() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  cancel_.raise();
}

std::vector<WriteJob*> Stream::close() {
  std::vector<WriteJob*> left;
  if (closed_) return left;
  cancel();
  if (thread_.joinable()) thread_.join();
  closed_ = true;
  // The pool may outlive the stream (Buffers JS still holds), and this object lives until
  // its JS wrapper is collected: neither keeps an eventfd open after close.
  if (pool_) pool_->closeWake();
  cancel_.close();
  // DMABUFs are detached through this fd once the buffer is disabled (detachDmabufs()).
  if (!dmabuf_) closeOwnFd();
  std::lock_guard<std::mutex> lk(mu_);
  left.assign(jobs_.begin(), jobs_.end());
  jobs_.clear();
  return left;
}

int Stream::detachDmabufs() {
  if (!closed_) close();
  int r = dmabuf_ ? dmabuf_->detach() : 0;
  closeOwnFd();
  return r;
}

void Stream::closeOwnFd() {
  if (cfg_.fd >= 0) {
    sys::closeFd(cfg_.fd);
    cfg_.fd = -1;
    dupError_ = -EBADF;
  }
}

StreamStats Stream::stats() {
  std::lock_guard<std::mutex> lk(mu_);
  StreamStats s = stats_;
  s.reads = reads_.load(std::memory_order_relaxed);
  return s;
}

void Stream::dispose(const std::shared_ptr<BlockPool>& pool, Delivery* d) {
  while (d) {
    Delivery* next = d->next;
    if (d->kind == DeliveryKind::Block) {
      if (d->idx >= 0 && pool) pool->giveBack(d->idx, d->gen, false);
      ::free(d->fresh);
    }
    // A job's JS reference cannot be dropped without an env: it dies with the env.
    delete d->job;
    delete d;
    d = next;
  }
}

int64_t Stream::deadline() const {
  return cfg_.timeoutMs > 0 ? sys::nowUs() + static_cast<int64_t>(cfg_.timeoutMs) * 1000 : -1;
}

void Stream::refundCredit() {
  std::lock_guard<std::mutex> lk(mu_);
  credit_++;
}

bool Stream::takeCredit() {
  std::lock_guard<std::mutex> lk(mu_);
  if (stop_ || credit_ <= 0) return false;
  credit_--;
  return true;
}

void Stream::sendWritten(WriteJob* job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.written += job->len;
  }
  Delivery* d = new Delivery;
  d->kind = DeliveryKind::Written;
  d->job = job;
  send(d);
}

WriteJob* Stream::nextJob() {
  std::lock_guard<std::mutex> lk(mu_);
  if (stop_ || jobs_.empty()) return nullptr;
  WriteJob* job = jobs_.front();
  jobs_.pop_front();
  return job;
}

void Stream::returnJob(WriteJob* job) {
  std::lock_guard<std::mutex> lk(mu_);
  jobs_.push_front(job);
}

void Stream::noteTimeout() {
  std::lock_guard<std::mutex> lk(mu_);
  stats_.timeouts++;
}

int Stream::wait(int fd, short events, int64_t deadlineUs) {
  struct pollfd fds[3] = {{fd, events, 0}, {cancel_.fd(), POLLIN, 0}, {pool_->wake().fd(), POLLIN, 0}};
  for (;;) {
    struct timespec ts;
    struct timespec* timeout = nullptr;
    if (deadlineUs >= 0) {
      int64_t left = std::max<int64_t>(0, deadlineUs - sys::nowUs());
      ts.tv_sec = static_cast<time_t>(left / 1000000);
      ts.tv_nsec = static_cast<long>((left % 1000000) * 1000);
      timeout = &ts;
    }
    int r = ::ppoll(fds, 3, timeout, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (stop_ || fds[1].revents) return -ECANCELED;
    // Ready first: the eventfd stays raised (level-triggered) for the next look.
    if (fds[0].revents) return 1;
    if (fds[2].revents) {
      pool_->wake().drain();
      return 2;
    }
    if (r == 0) return 0;
  }
}

bool Stream::send(Delivery* d) {
  // Whatever was held goes first: deliveries keep their order.
  if (heldHead_ && d != heldHead_) flush();
  {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.handovers++;
    for (Delivery* x = d; x; x = x->next) {
      if (x->kind != DeliveryKind::Block) continue;
      stats_.delivered++;
      stats_.bytes += x->len;
      if (x->fresh) stats_.copies++;
    }
  }
  if (sink_ && sink_(d)) return true;
  dispose(pool_, d);
  return false;
}

void Stream::hold(Delivery* d) {
  int64_t now = sys::nowUs();
  bool fast = lastBlockUs_ && now - lastBlockUs_ < cfg_.batchHoldUs;
  lastBlockUs_ = now;
  if (heldTail_)
    heldTail_->next = d;
  else {
    heldHead_ = d;
    heldSinceUs_ = now;
  }
  heldTail_ = d;
  heldCount_++;
  // Half the queue at most: JS works through one batch while the next is being filled.
  size_t most = std::max<size_t>(1, std::min(cfg_.batchMaxBlocks, cfg_.blocks / 2));
  if (!fast || cfg_.partial || heldCount_ >= most) flush();
}

void Stream::flush() {
  Delivery* d = heldHead_;
  if (!d) return;
  heldHead_ = heldTail_ = nullptr;
  heldCount_ = 0;
  send(d);
}

void Stream::sendError(int err, const char* op, WriteJob* job, size_t done) {
  Delivery* d = new Delivery;
  d->kind = DeliveryKind::Error;
  d->err = err;
  d->op = op;
  d->job = job;
  d->done = done;
  send(d);
}

bool Stream::failJob(WriteJob* job, int err, const char* op, size_t done) {
  if (err == ECANCELED && done == 0) {
    std::lock_guard<std::mutex> lk(mu_);
    jobs_.push_front(job);  // close() hands it back to be rejected on the JS thread
    return false;
  }
  if (done) {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.written += done;
  }
  sendError(err, err == ECANCELED ? "cancel" : op, job, done);
  return err == ETIMEDOUT;
}

void Stream::run() {
  // A name for top/perf/gdb (at most 15 characters).
  ::pthread_setname_np(::pthread_self(), cfg_.output ? "iiokit-out" : "iiokit-in");
  if (dmabuf_)
    dmabuf_->run(*this);
  else if (cfg_.output)
    runOutput();
  else
    runInput();
  struct timespec cpu;
  if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0) {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.threadCpuUs = static_cast<uint64_t>(cpu.tv_sec) * 1000000 + cpu.tv_nsec / 1000;
  }
  Delivery* end = new Delivery;
  end->kind = DeliveryKind::End;
  send(end);
}

}  // namespace iiokit


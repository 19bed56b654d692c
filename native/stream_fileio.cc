// The read()/write() half of the streaming thread (kfifo buffers, Linux before 6.11, and
// transfer 'fileio'): poll + read into pooled blocks (a dry pool means fresh memory; while
// data flows, one readv() fills several small blocks),
// write() pushes, cyclic output by repetition. The DMABUF half is dmabuf_stream.cc; what
// both share (queue places, hand-over batching, errors, the thread itself) is stream.cc.
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "stream.h"

namespace iiokit {

bool Stream::waitCredit() {
  std::unique_lock<std::mutex> lk(mu_);
  if (credit_ <= 0 && heldHead_) {
    // JS may be waiting for what we hold: hand it over before sleeping.
    lk.unlock();
    flush();
    lk.lock();
  }
  cv_.wait(lk, [this] { return stop_ || credit_ > 0; });
  if (stop_) return false;
  credit_--;
  return true;
}

int Stream::waitFd(int fd, short events, int64_t deadlineUs, bool alsoWake) {
  struct pollfd fds[3];
  nfds_t n = 0;
  fds[n++] = {fd, events, 0};  // poll() ignores a negative fd
  fds[n++] = {cancel_.fd(), POLLIN, 0};
  if (alsoWake) fds[n++] = {pool_->wake().fd(), POLLIN, 0};
  for (;;) {
    struct timespec ts;
    struct timespec* timeout = nullptr;
    if (deadlineUs >= 0) {
      int64_t left = std::max<int64_t>(0, deadlineUs - sys::nowUs());
      ts.tv_sec = static_cast<time_t>(left / 1000000);
      ts.tv_nsec = static_cast<long>((left % 1000000) * 1000);
      timeout = &ts;
    }
    int r = ::ppoll(fds, n, timeout, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (stop_ || fds[1].revents) return -ECANCELED;
    if (r == 0) return 0;
    if (alsoWake && fds[2].revents) {
      pool_->wake().drain();
      return 2;
    }
    if (fds[0].revents) return 1;
  }
}

int Stream::fill(uint8_t* p, size_t size, size_t* filled, int64_t deadline, const char** op) {
  while (*filled < size) {
    // poll() first, like libiio, when the last read() found less than it asked for: the
    // IIO fd wakes at the watermark, sized so that one wake-up fills one block. When the
    // last read() got everything, data is flowing faster than we read: read straight on
    // and save a syscall per block (EAGAIN sends us back to poll()).
    if (!readAhead_ || cancel_.fd() < 0) {
      int w;
      for (;;) {
        // Held blocks wait at most batchHoldUs: wake up for them if no data comes first.
        const int64_t flushAt = heldSinceUs_ + cfg_.batchHoldUs;
        int64_t until = deadline;
        if (heldHead_ && (until < 0 || flushAt < until)) until = flushAt;
        w = waitFd(cfg_.fd, POLLIN, until, false);
        if (w != 0 || until == deadline) break;
        flush();
      }
      if (w == 0) return -ETIMEDOUT;
      if (w < 0) {
        *op = "poll";
        return w;
      }
    } else if (stop_) {
      return -ECANCELED;
    }
    size_t want = size - *filled;
    ssize_t n = ::read(cfg_.fd, p + *filled, want);
    if (n > 0) {
      reads_.fetch_add(1, std::memory_order_relaxed);
      readAhead_ = static_cast<size_t>(n) == want;
      *filled += static_cast<size_t>(n);
      if (cfg_.partial && *filled % cfg_.unitBytes == 0) return 0;
      continue;
    }
    readAhead_ = false;
    if (n == 0) {
      *op = "read (end of file)";
      return 1;
    }
    if (errno == EAGAIN || errno == EINTR) continue;
    *op = "read";
    return -errno;
  }
  return 0;
}

int Stream::writeAll(const uint8_t* p, size_t len, int64_t deadline, const char** op,
                     size_t* done) {
  *done = 0;
  while (*done < len) {
    if (stop_) return -ECANCELED;
    ssize_t n = ::write(cfg_.fd, p + *done, len - *done);
    if (n > 0) {
      *done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) {
      *op = "write";
      return -errno;
    }
    int w = waitFd(cfg_.fd, POLLOUT, deadline, false);
    if (w == 0) return -ETIMEDOUT;
    if (w < 0) {
      *op = "poll";
      return w;
    }
  }
  return 0;
}

void Stream::deliverFilled(int idx, uint8_t* fresh, size_t len) {
  Delivery* d = new Delivery;
  d->kind = DeliveryKind::Block;
  d->len = len;
  if (idx >= 0) {
    d->idx = idx;
    d->gen = pool_->lend(idx);
  } else {
    d->fresh = fresh;
  }
  hold(d);
}

int Stream::readBurst(int* idx, size_t* filled) {
  constexpr size_t kMaxBurst = 64;
  const size_t size = cfg_.blockBytes;
  size_t most = std::min(kMaxBurst, cfg_.readBurstBytes / size);
  if (most < 2) return 0;
  int ids[kMaxBurst];
  struct iovec iov[kMaxBurst];
  size_t n = 0;
  ids[n] = *idx;
  iov[n++] = {pool_->data(*idx), size};
  // Each further block needs a queue place (its delivery) and a free pool block.
  while (n < most && takeCredit()) {
    int j = pool_->takeFree();
    if (j < 0) {
      refundCredit();
      break;
    }
    ids[n] = j;
    iov[n++] = {pool_->data(j), size};
  }
  if (n < 2) return 0;  // nothing to gain: fill() reads the one block
  ssize_t got = ::readv(cfg_.fd, iov, static_cast<int>(n));
  int err = got < 0 ? errno : 0;
  size_t whole = got > 0 ? static_cast<size_t>(got) / size : 0;
  size_t rest = got > 0 ? static_cast<size_t>(got) % size : 0;
  // The blocks the data did not reach go back, with their queue places (the first one
  // stays: it is the block being filled, whose place was taken before).
  size_t keep = std::max<size_t>(1, whole + (rest ? 1 : 0));
  for (size_t k = n; k-- > keep;) {
    pool_->putBack(ids[k]);
    refundCredit();
  }
  if (got <= 0) {
    readAhead_ = false;  // fill() polls, and meets the end of file or the error itself
    return (err == EAGAIN || err == EINTR || got == 0) ? 0 : -err;
  }
  reads_.fetch_add(1, std::memory_order_relaxed);
  readAhead_ = static_cast<size_t>(got) == n * size;
  for (size_t k = 0; k < whole; k++) deliverFilled(ids[k], nullptr, size);
  *idx = rest ? ids[whole] : -1;
  *filled = rest;
  return 0;
}

void Stream::runInput() {
  const size_t size = cfg_.blockBytes;
  int idx = -1;
  uint8_t* fresh = nullptr;
  size_t filled = 0;
  while (!stop_) {
    if (!waitCredit()) break;
    if (idx < 0 && !fresh) {
      idx = pool_->takeFree();
      if (idx < 0) {
        // The pool is dry (JS holds every block): fresh memory, never a stall.
        fresh = static_cast<uint8_t*>(::malloc(size));
        if (!fresh) {
          sendError(ENOMEM, "malloc");
          break;
        }
      }
    }
    const char* op = "read";
    // Data flowing and a pooled block to start: read it and the next ones at once.
    if (readAhead_ && filled == 0 && idx >= 0 && !cfg_.partial) {
      int b = readBurst(&idx, &filled);
      if (b < 0) {
        sendError(-b, op);
        break;
      }
      if (idx < 0) continue;  // every block it reached was full and is handed over
    }
    uint8_t* p = idx >= 0 ? pool_->data(idx) : fresh;
    int r = fill(p, size, &filled, deadline(), &op);
    if (r == -ECANCELED) {
      refundCredit();
      break;
    }
    if (r == -ETIMEDOUT) {
      // The block keeps what it has; the next read() waits again.
      {
        std::lock_guard<std::mutex> lk(mu_);
        stats_.timeouts++;
      }
      sendError(ETIMEDOUT, "poll");
      continue;
    }
    bool whole = filled > 0 && filled % cfg_.unitBytes == 0;
    if (r == 0 || (r == 1 && whole)) {
      deliverFilled(idx, fresh, filled);
      idx = -1;
      fresh = nullptr;
      filled = 0;
      if (r == 0) continue;
      if (!waitCredit()) break;
    }
    sendError(r == 1 ? EIO : -r, op);
    break;
  }
  flush();
  if (idx >= 0) pool_->putBack(idx);
  ::free(fresh);
}

void Stream::runOutput() {
  for (;;) {
    WriteJob* job = nullptr;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return stop_ || !jobs_.empty() || !cyclicData_.empty(); });
      if (stop_) return;
      if (!jobs_.empty()) {
        job = jobs_.front();
        jobs_.pop_front();
      }
    }
    const char* op = "write";
    size_t done = 0;
    if (!job) {
      // Cyclic output on a kernel without DMABUF: repeat the block at the consumer's pace.
      int r = writeAll(cyclicData_.data(), cyclicData_.size(), -1, &op, &done);
      if (r == -ECANCELED) return;
      if (r < 0) {
        sendError(-r, op);
        return;
      }
      std::lock_guard<std::mutex> lk(mu_);
      stats_.cyclicRepeats++;
      continue;
    }
    int r = writeAll(job->data, job->len, deadline(), &op, &done);
    if (r < 0) {
      if (failJob(job, -r, r == -ETIMEDOUT ? "poll" : op, done)) continue;
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      stats_.written += job->len;
      if (cfg_.cyclic) cyclicData_.assign(job->data, job->data + job->len);
    }
    Delivery* d = new Delivery;
    d->kind = DeliveryKind::Written;
    d->job = job;
    send(d);
  }
}

}  // namespace iiokit

// The streaming core: one thread per open buffer (not the libuv pool, which a
// never-ending capture would starve), moving data between a kernel fd and pooled blocks.
// Input: poll + read into a block, hand it over, never wait for JS to give blocks back
// (a dry pool means fresh memory, counted). Output: write queued scans, or repeat one
// block for cyclic output. DMABUF blocks replace read()/write() when the kernel's buffer
// accepts them. Knows nothing of IIO files, masks or layouts.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dmabuf.h"
#include "dmabuf_stream.h"
#include "pool.h"
#include "sys.h"

namespace iiokit {

struct StreamConfig {
  /** The data fd. The stream works on its own duplicate of it (see Stream::Stream). */
  int fd = -1;
  bool output = false;
  /** Bytes per block (input: what a delivery holds when full; output DMABUF: block size). */
  size_t blockBytes = 0;
  /** Reads and writes move whole units (scan bytes; 16 for events). */
  size_t unitBytes = 1;
  /**
   * Deliveries JS may have queued and not yet taken. The pool holds two more blocks: the
   * one being filled and the one the consumer is working on, so a consumer that releases
   * each block before taking the next never sees a copy.
   */
  size_t blocks = 4;
  /** Per block (input) or per push (output); 0 = wait forever. */
  int timeoutMs = 0;
  /** Input: deliver after every read (whole units) instead of only full blocks (events). */
  bool partial = false;
  /** Output: the first push is repeated until the stream stops. */
  bool cyclic = false;
  /**
   * Input hand-over batching: blocks finishing less than `batchHoldUs` apart are kept
   * back, at most `batchMaxBlocks` (and half the queue) and at most `batchHoldUs`, so that
   * one wake-up of the JS thread takes several. The values come from TypeScript
   * (src/native/index.ts STREAM_DEFAULTS; why: docs/native.md); these defaults hand every
   * block over at once.
   */
  int64_t batchHoldUs = 0;
  size_t batchMaxBlocks = 1;
  /**
   * Input: while data flows faster than it is read, one readv() fills the block and the
   * next free ones, up to this many bytes in all (0 or less than two blocks: one read()
   * per block). At small blocks the syscall and its wake-ups cost more than the copy.
   */
  size_t readBurstBytes = 0;
};

enum class DeliveryKind : int { Block = 0, Error = 1, Written = 2, End = 3 };

/** An output job: the bytes of one push, kept alive by `ref` (a JS reference) until done. */
struct WriteJob {
  double id = 0;
  const uint8_t* data = nullptr;
  size_t len = 0;
  void* ref = nullptr;
};

/** One thing the thread hands to JS. */
struct Delivery {
  DeliveryKind kind = DeliveryKind::Block;
  int idx = -1;            // pooled block, or -1
  uint32_t gen = 0;
  uint8_t* fresh = nullptr;  // malloc'd block (pool dry); the Buffer owns it
  size_t len = 0;
  int err = 0;
  const char* op = "";
  WriteJob* job = nullptr;  // Written / a push's Error
  size_t done = 0;          // a push's Error: bytes of it the kernel took before the error
  uint64_t lost = 0;        // Block: units lost just before it (DMABUF transfers that failed)
  Delivery* next = nullptr;  // a batch handed over in one wake-up of the JS thread
};

struct StreamStats {
  uint64_t delivered = 0;
  uint64_t copies = 0;
  uint64_t bytes = 0;
  uint64_t timeouts = 0;
  uint64_t written = 0;
  uint64_t cyclicRepeats = 0;
  /** Wake-ups of the JS thread (a batch of blocks counts once). */
  uint64_t handovers = 0;
  /** CPU time the streaming thread used, once it has ended (µs). */
  uint64_t threadCpuUs = 0;
  /** read()/readv() calls that brought data (input): fewer than blocks when bursting. */
  uint64_t reads = 0;
};

class Stream : public std::enable_shared_from_this<Stream>, private StreamPort {
 public:
  /** Returns false when the receiver is gone: the core then disposes of the delivery. */
  using Sink = std::function<bool(Delivery*)>;

  /** Duplicates cfg.fd: check status() before use. */
  explicit Stream(const StreamConfig& cfg);
  ~Stream();

  /** 0, or -errno when the fd could not be duplicated. */
  int status() const { return cfg_.fd < 0 ? dupError_ : 0; }

  const StreamConfig& config() const { return cfg_; }
  size_t poolBlocks() const { return cfg_.blocks + 2; }

  /** Before start() and the enable: DMABUF blocks (dmabuf_stream.h); on failure stays on read()/write(). */
  bool tryDmabuf(const std::string& heapPath, dmabuf::Failure* fail);
  bool usesDmabuf() const { return dmabuf_ != nullptr; }
  /** DMABUF counters (zeros on the read()/write() path). */
  DmabufStats dmabufStats() const { return dmabuf_ ? dmabuf_->stats() : DmabufStats{}; }

  /**
   * Makes the pool (if tryDmabuf did not) and starts the thread. 0 or -errno; on failure
   * (e.g. EAGAIN: no thread to spare) nothing changed and start() may be tried again.
   */
  int start(Sink sink);
  bool started() const { return started_; }

  /** JS took `n` deliveries from its queue: the thread may hand over that many more. */
  void credit(int n);
  /** Explicit release of a lent block. */
  bool release(int idx, uint32_t gen);
  /** Output: queues a job; -EBADF after stop, -EBUSY for a second cyclic push. */
  int write(WriteJob* job);
  /** Output over DMABUF: a job (len 0) answered once everything queued before it was played. */
  int drain(WriteJob* job);

  /** Wakes the thread through the eventfd and makes it stop (permanent, like libiio). */
  void cancel();
  /**
   * cancel() + join + close the stream's fd, unless DMABUFs are attached: they stay, with
   * the fd they were attached through, until detachDmabufs(). Idempotent. Jobs not
   * started are returned.
   */
  std::vector<WriteJob*> close();
  /**
   * After close() and after the buffer was disabled (so aborted transfers have completed):
   * DETACH the DMABUFs, close their fds and the stream's fd. 0 or the first -errno.
   * Idempotent (close() first if it was not called).
   */
  int detachDmabufs();

  std::shared_ptr<BlockPool> pool() const { return pool_; }
  StreamStats stats();

  /** Frees a delivery that never reached JS (teardown): pooled blocks go back, fresh memory is freed. */
  static void dispose(const std::shared_ptr<BlockPool>& pool, Delivery* d);

 private:
  void run();
  void runInput();
  void runOutput();
  /** Raises what the thread sleeps on: the condition variable, and the eventfd (DMABUF). */
  void notifyThread();
  /** Closes the stream's duplicate of the data fd (idempotent). */
  void closeOwnFd();

  // StreamPort: the DMABUF loops' view of this stream (thread side).
  bool stopping() override { return stop_; }
  bool takeCredit() override;
  void refundCredit() override;
  void deliverBlock(Delivery* d) override { hold(d); }
  void flushBlocks() override { flush(); }
  void sendError(int err, const char* op, WriteJob* job = nullptr, size_t done = 0) override;
  bool failJob(WriteJob* job, int err, const char* op, size_t done) override;
  void sendWritten(WriteJob* job) override;
  WriteJob* nextJob() override;
  void returnJob(WriteJob* job) override;
  int wait(int fd, short events, int64_t deadlineUs) override;
  void noteTimeout() override;

  bool waitCredit();
  /** Input: a filled block (pooled `idx`, or `fresh` memory) becomes a delivery, held. */
  void deliverFilled(int idx, uint8_t* fresh, size_t len);
  /**
   * Input, while data flows: one readv() into block *idx and the next free blocks that
   * queue places allow (up to readBurstBytes). Full blocks are delivered; *idx and *filled
   * say which block is being filled now (-1: none), the others go back. 0 or -errno.
   */
  int readBurst(int* idx, size_t* filled);
  /** Input: keeps a finished block back for a moment, to hand several over in one wake-up. */
  void hold(Delivery* d);
  /** Hands over every held block (before any wait, error or end). */
  void flush();
  bool send(Delivery* d);

  /** Reads until the block is full (or, partial, until whole units arrived). */
  int fill(uint8_t* p, size_t size, size_t* filled, int64_t deadline, const char** op);
  /** Writes everything; 0, -ETIMEDOUT, -ECANCELED or -errno; what was written in *done. */
  int writeAll(const uint8_t* p, size_t len, int64_t deadline, const char** op, size_t* done);
  /**
   * Waits for events on fd (and the cancel/wake eventfds) until a deadline in µs on the
   * monotonic clock (-1 = none). 1 ready, 2 woken, 0 timeout, -ECANCELED, -errno.
   */
  int waitFd(int fd, short events, int64_t deadlineUs, bool alsoWake);
  int64_t deadline() const;

  StreamConfig cfg_;
  int dupError_ = 0;
  std::shared_ptr<BlockPool> pool_;
  std::unique_ptr<DmabufTransfer> dmabuf_;
  sys::Signal cancel_;
  Sink sink_;
  std::thread thread_;
  bool started_ = false;
  /** The last read() got all it asked for: try the next one before polling (thread only). */
  bool readAhead_ = false;
  /** Blocks finished but not yet handed over, and when the first of them was (thread only). */
  Delivery* heldHead_ = nullptr;
  Delivery* heldTail_ = nullptr;
  size_t heldCount_ = 0;
  int64_t heldSinceUs_ = 0;
  int64_t lastBlockUs_ = 0;
  bool closed_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  int credit_ = 0;
  /** StreamStats::reads, counted without the lock (once per read on the hot path). */
  std::atomic<uint64_t> reads_{0};
  std::deque<WriteJob*> jobs_;
  bool cyclicQueued_ = false;
  std::vector<uint8_t> cyclicData_;
  StreamStats stats_;
};

}  // namespace iiokit

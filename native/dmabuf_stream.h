// The DMABUF data path of a stream (Linux 6.11+ IIO buffers that take DMABUFs): K DMABUFs
// from a DMA heap, attached to the IIO buffer fd, moved between the device, the streaming
// thread and JS without a copy.
//
// Input:  ENQUEUE -> fence signals (poll) -> SYNC START|READ -> lent to JS as an external
//         Buffer -> released -> SYNC END|READ -> ENQUEUE again.
// Output: SYNC START|WRITE -> the push's bytes copied in -> SYNC END|WRITE -> ENQUEUE ->
//         fence signals -> free again (cyclic: one DMABUF, IIO_BUFFER_DMABUF_CYCLIC).
//
// Who owns each DMABUF at each moment is written down in docs/native.md ("DMABUF"). This
// file holds the mechanics and the thread loops; the stream it runs in (stream.h) gives
// it queue places, batching, errors and the wait on its eventfds through StreamPort.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "dmabuf.h"
#include "pool.h"

namespace iiokit {

struct Delivery;
struct WriteJob;

/** What the DMABUF loops need from the stream they run in (its thread side). */
class StreamPort {
 public:
  /** cancel() or close() was called: leave the loop. */
  virtual bool stopping() = 0;
  /** Input: takes one place in JS's queue if one is free (never waits). */
  virtual bool takeCredit() = 0;
  virtual void refundCredit() = 0;
  /** Input: a finished block; the stream may keep it back a moment to hand several over at once. */
  virtual void deliverBlock(Delivery* d) = 0;
  /** Input: hands over whatever deliverBlock() kept back (before the loop sleeps). */
  virtual void flushBlocks() = 0;
  /** An error; for a push (`job`), `done` of its bytes were queued before it. */
  virtual void sendError(int err, const char* op, WriteJob* job, size_t done) = 0;
  /**
   * Output: a push that failed after the kernel took `done` of its bytes: counted as
   * written and reported with the error (the device plays them); on cancel with nothing
   * taken the job goes back for close() to hand back. False: the loop must stop.
   */
  virtual bool failJob(WriteJob* job, int err, const char* op, size_t done) = 0;
  /** Output: a push is in the kernel's hands (or, for a drain, played). */
  virtual void sendWritten(WriteJob* job) = 0;
  /** Output: the next push or drain request, nullptr when none is queued. */
  virtual WriteJob* nextJob() = 0;
  /** Output: puts a job back at the front (the stream stopped under it: close() rejects it). */
  virtual void returnJob(WriteJob* job) = 0;
  /**
   * Waits until `fd` has `events` (fd < 0: none), the stream's wake eventfd is raised (a
   * block released, a queue place, a job) or it is cancelled, until a deadline in µs on the
   * monotonic clock (-1: none; 0: just look). 1 ready, 2 woken, 0 timeout, -ECANCELED, -errno.
   */
  virtual int wait(int fd, short events, int64_t deadlineUs) = 0;
  virtual void noteTimeout() = 0;

 protected:
  ~StreamPort() = default;
};

struct DmabufStats {
  /** DMABUFs with the kernel now (queued or being transferred). */
  uint64_t inKernel = 0;
  uint64_t enqueued = 0;
  uint64_t completed = 0;
  /** Completions whose fence carried an error (the transfer was aborted): not delivered. */
  uint64_t errors = 0;
  /** Units (scans) in those failed blocks: reported to JS as `lost`. */
  uint64_t lostUnits = 0;
  /** Input: times the kernel was left with no DMABUF queued (the device had to wait for us). */
  uint64_t starved = 0;
  /** The last fence error seen (negative errno), 0 if none. */
  int64_t lastError = 0;
};

class DmabufTransfer {
 public:
  struct Config {
    int bufferFd = -1;
    bool output = false;
    bool cyclic = false;
    size_t count = 0;
    size_t blockBytes = 0;
    size_t unitBytes = 1;
    int timeoutMs = 0;
  };

  /**
   * Allocates `count` DMABUFs of `blockBytes` from the heap, maps them and ATTACHes every
   * one, with the buffer still disabled: on an enabled buffer in read()/write() mode the
   * kernel refuses (EBUSY), and on Linux 6.12 an ATTACH drops DMABUFs already enqueued on
   * a disabled buffer, so nothing is enqueued before the last ATTACH (the thread does it,
   * after the enable). nullptr and `fail` on any failure, with nothing left attached.
   */
  static std::unique_ptr<DmabufTransfer> open(const Config& cfg, const std::string& heapPath,
                                              dmabuf::Failure* fail);
  ~DmabufTransfer();
  DmabufTransfer(const DmabufTransfer&) = delete;
  DmabufTransfer& operator=(const DmabufTransfer&) = delete;

  std::shared_ptr<BlockPool> pool() const { return pool_; }

  /** The streaming thread's loop (input or output by the config); returns when stopped or failed. */
  void run(StreamPort& port);

  /**
   * After the thread has stopped and the buffer was disabled (aborted transfers then
   * complete): DETACHes every DMABUF and closes its fd and any fence fd. Mappings stay
   * until the pool goes, i.e. until no JS Buffer aliases them. Idempotent; returns the
   * first DETACH error (-errno) or 0.
   */
  int detach();

  DmabufStats stats() const;

 private:
  struct Queued {
    int idx;
    int fence;  // sync_file fd, -1 when the kernel could not export one
    size_t bytes;
  };

  DmabufTransfer(const Config& cfg, std::shared_ptr<BlockPool> pool);

  void runInput(StreamPort& port);
  void runOutput(StreamPort& port);
  /** SYNC END (if the CPU had it), ENQUEUE, export the fence. 0 or -errno. */
  int toKernel(int idx, size_t bytes, bool cyclic);
  /** Waits for the oldest queued DMABUF; 1 done (popped into *done), else as StreamPort::wait. */
  int waitHead(StreamPort& port, int64_t deadlineUs, Queued* done);
  /** The fence's verdict on a completed transfer (closes its fd): 0 or its error. */
  int verdict(Queued* q);
  void noteCompletion(int err, size_t bytes);
  /**
   * Input: waits (at most kLendWaitUs) until JS gives a DMABUF back, and enqueues what
   * came back. 0 (whether or not one came), -ECANCELED or -errno.
   */
  int waitForRelease(StreamPort& port);
  /** Output: frees every DMABUF whose transfer is done, without waiting. */
  void reapOutput(StreamPort& port);
  int64_t deadlineFrom(int64_t startUs) const;

  Config cfg_;
  std::shared_ptr<BlockPool> pool_;
  std::vector<int> fds_;
  std::vector<bool> cpuOwned_;
  std::deque<Queued> inKernel_;
  bool detached_ = false;
  /** Input: copy instead of waiting when the pool is dry (a wait for a release timed out). */
  bool copyWhenDry_ = false;
  /** Explicit releases counted when that happened: a new one turns waiting back on. */
  uint64_t releasedAtTimeout_ = 0;
  /** Output: errors since the last drain, for the drain to report. */
  uint64_t errorsSinceDrain_ = 0;

  std::atomic<uint64_t> inKernelCount_{0};
  std::atomic<uint64_t> enqueued_{0};
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> lostUnits_{0};
  std::atomic<uint64_t> starved_{0};
  std::atomic<int64_t> lastError_{0};
};

}  // namespace iiokit

// A fixed pool of equally sized blocks that are lent to JavaScript as external Buffers.
//
// A block is Free (the streaming thread may take it), Busy (the thread or the kernel
// owns it) or Lent (a JS Buffer aliases it). Every lending gets a new generation, so a
// late finalizer of an old Buffer can never return a block that has been lent again.
// A block's Buffer object may be reused from one lending to the next (the binding keeps
// it weakly while lent, strongly once released): the Buffer id says which object carries
// a lending, so only a Buffer still holding its block gives it back when collected.
// The pool is reference counted: each lent Buffer's finalizer hint holds it, so the
// memory outlives the stream for as long as JS can still reach it (no use after free
// even if a released Buffer is touched after close()).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "sys.h"

namespace iiokit {

class BlockPool {
 public:
  enum class State : uint8_t { Free, Busy, Lent };

  /** One DMABUF block handed to the pool (fd and mapping become the pool's). */
  struct Dmabuf {
    int fd;
    uint8_t* map;
  };

  /** Plain memory blocks (the read()/write() path). nullptr + *err = -errno on failure. */
  static std::shared_ptr<BlockPool> heap(size_t count, size_t bytes, int* err);
  /** DMABUF blocks, all `bytes` long, mapped MAP_SHARED. */
  static std::shared_ptr<BlockPool> dmabufs(const std::vector<Dmabuf>& blocks, size_t bytes);

  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  size_t count() const { return blocks_.size(); }
  size_t blockBytes() const { return bytes_; }
  bool isDmabuf() const { return dmabuf_; }
  uint8_t* data(int idx) const { return blocks_[idx].data; }
  int dmabufFd(int idx) const { return blocks_[idx].fd; }
  /**
   * Closes a DMABUF block's fd (after its DETACH) and keeps the mapping, which holds the
   * DMABUF for as long as a JS Buffer may alias it: munmap waits for the destructor.
   */
  void closeDmabufFd(int idx);

  /** Thread side: a Free block becomes Busy; -1 when none is free. */
  int takeFree();
  /** Thread side: Busy back to Free without lending it. */
  void putBack(int idx);
  /** Thread side: Busy becomes Lent; returns the generation JS must quote to release it. */
  uint32_t lend(int idx);
  /**
   * Any thread: ends a lending. True when (idx, gen) was lent and is now returned, false
   * for a stale or repeated release (idempotent). With returnQueue on, the block goes to
   * the returned queue (Busy) and wake() is raised, for the thread to hand it back to the
   * kernel (DMABUF enqueue must not run on the JS thread); otherwise it becomes Free.
   */
  bool giveBack(int idx, uint32_t gen, bool byFinalizer);
  /**
   * JS thread: which Buffer object (an id the binding gives each one it makes) carries the
   * current lending of a block. Set before the Buffer exists, so that a Buffer copied at
   * once (external memory refused) gives the block straight back through its finalizer.
   */
  void setLentBuffer(int idx, uint32_t bufferId);
  /** A Buffer's finalizer: gives the block back if it is still lent through that Buffer. */
  bool giveBackFromBuffer(int idx, uint32_t bufferId);
  /** Thread side: the next block released by JS, if any (returnQueue mode). */
  bool popReturned(int* idx);
  void setReturnQueue(bool on) { returnQueue_ = on; }

  /** Raised whenever a block comes back in returnQueue mode; owned here so it outlives the stream. */
  sys::Signal& wake() { return wake_; }
  /** Raises wake() unless it was closed (any thread). */
  void raiseWake();
  /**
   * Once the stream's thread has stopped: closes wake(), so that a pool kept alive by the
   * Buffers JS still holds keeps no fd open.
   */
  void closeWake();

  size_t freeCount();
  size_t lentCount();
  uint64_t lentTotal() const { return lentTotal_.load(); }
  uint64_t releasedExplicitly() const { return released_.load(); }
  uint64_t releasedByFinalizer() const { return finalized_.load(); }

 private:
  struct Block {
    uint8_t* data = nullptr;
    int fd = -1;
    State state = State::Free;
    uint32_t gen = 0;
    uint32_t lentBuffer = 0;
  };
  explicit BlockPool(size_t bytes, bool dmabuf) : bytes_(bytes), dmabuf_(dmabuf) {}

  size_t bytes_;
  bool dmabuf_;
  bool returnQueue_ = false;
  std::mutex mu_;
  std::vector<Block> blocks_;
  std::deque<int> returned_;
  /** Free blocks, most recently freed last: taken from the back, so the block the
   * thread fills next is the one whose memory is still in the CPU's cache. */
  std::vector<int> free_;
  sys::Signal wake_;
  std::atomic<uint64_t> lentTotal_{0};
  std::atomic<uint64_t> released_{0};
  std::atomic<uint64_t> finalized_{0};
};

}  // namespace iiokit

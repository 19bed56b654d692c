#include "pool.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

namespace iiokit {

std::shared_ptr<BlockPool> BlockPool::heap(size_t count, size_t bytes, int* err) {
  std::shared_ptr<BlockPool> pool(new BlockPool(bytes, false));
  pool->blocks_.resize(count);
  for (auto& b : pool->blocks_) {
    void* p = nullptr;
    // Page alignment: the kernel copies into it and a DMA-capable consumer may want it.
    if (::posix_memalign(&p, 4096, bytes ? bytes : 1) != 0) {
      *err = -ENOMEM;
      return nullptr;
    }
    b.data = static_cast<uint8_t*>(p);
  }
  *err = 0;
  return pool;
}

std::shared_ptr<BlockPool> BlockPool::dmabufs(const std::vector<Dmabuf>& blocks, size_t bytes) {
  std::shared_ptr<BlockPool> pool(new BlockPool(bytes, true));
  pool->blocks_.resize(blocks.size());
  for (size_t i = 0; i < blocks.size(); i++) {
    pool->blocks_[i].data = blocks[i].map;
    pool->blocks_[i].fd = blocks[i].fd;
  }
  return pool;
}

BlockPool::~BlockPool() {
  for (auto& b : blocks_) {
    if (dmabuf_) {
      if (b.data) ::munmap(b.data, bytes_);
      if (b.fd >= 0) ::close(b.fd);
    } else {
      ::free(b.data);
    }
  }
}

int BlockPool::takeFree() {
  std::lock_guard<std::mutex> lk(mu_);
  for (size_t i = 0; i < blocks_.size(); i++) {
    if (blocks_[i].state == State::Free) {
      blocks_[i].state = State::Busy;
      return static_cast<int>(i);
    }
  }
  return -1;
}

void BlockPool::putBack(int idx) {
  std::lock_guard<std::mutex> lk(mu_);
  blocks_[idx].state = State::Free;
}

uint32_t BlockPool::lend(int idx) {
  std::lock_guard<std::mutex> lk(mu_);
  Block& b = blocks_[idx];
  b.state = State::Lent;
  lentTotal_++;
  return ++b.gen;
}

bool BlockPool::giveBack(int idx, uint32_t gen, bool byFinalizer) {
  bool queued = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (idx < 0 || static_cast<size_t>(idx) >= blocks_.size()) return false;
    Block& b = blocks_[idx];
    if (b.state != State::Lent || b.gen != gen) return false;
    if (returnQueue_) {
      b.state = State::Busy;
      returned_.push_back(idx);
      queued = true;
    } else {
      b.state = State::Free;
    }
  }
  (byFinalizer ? finalized_ : released_)++;
  if (queued) wake_.raise();
  return true;
}

bool BlockPool::popReturned(int* idx) {
  std::lock_guard<std::mutex> lk(mu_);
  if (returned_.empty()) return false;
  *idx = returned_.front();
  returned_.pop_front();
  return true;
}

size_t BlockPool::freeCount() {
  std::lock_guard<std::mutex> lk(mu_);
  size_t n = 0;
  for (auto& b : blocks_) n += b.state == State::Free;
  return n;
}

size_t BlockPool::lentCount() {
  std::lock_guard<std::mutex> lk(mu_);
  size_t n = 0;
  for (auto& b : blocks_) n += b.state == State::Lent;
  return n;
}

}  // namespace iiokit

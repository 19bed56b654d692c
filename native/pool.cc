#include "pool.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

namespace iiokit {

std::shared_ptr<BlockPool> BlockPool::heap(size_t count, size_t bytes, int* err) {
  std::shared_ptr<BlockPool> pool(new BlockPool(bytes, false));
  pool->blocks_.resize(count);
  for (size_t i = count; i-- > 0;) pool->free_.push_back(static_cast<int>(i));
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
  for (size_t i = blocks.size(); i-- > 0;) pool->free_.push_back(static_cast<int>(i));
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

void BlockPool::closeDmabufFd(int idx) {
  std::lock_guard<std::mutex> lk(mu_);
  if (idx < 0 || static_cast<size_t>(idx) >= blocks_.size()) return;
  Block& b = blocks_[idx];
  if (b.fd >= 0) ::close(b.fd);
  b.fd = -1;
}

int BlockPool::takeFree() {
  std::lock_guard<std::mutex> lk(mu_);
  if (free_.empty()) return -1;
  int idx = free_.back();
  free_.pop_back();
  blocks_[idx].state = State::Busy;
  return idx;
}

void BlockPool::putBack(int idx) {
  std::lock_guard<std::mutex> lk(mu_);
  blocks_[idx].state = State::Free;
  free_.push_back(idx);
}

uint32_t BlockPool::lend(int idx) {
  std::lock_guard<std::mutex> lk(mu_);
  Block& b = blocks_[idx];
  b.state = State::Lent;
  lentTotal_++;
  return ++b.gen;
}

void BlockPool::raiseWake() {
  std::lock_guard<std::mutex> lk(mu_);
  wake_.raise();
}

void BlockPool::closeWake() {
  std::lock_guard<std::mutex> lk(mu_);
  wake_.close();
}

bool BlockPool::giveBack(int idx, uint32_t gen, bool byFinalizer) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (idx < 0 || static_cast<size_t>(idx) >= blocks_.size()) return false;
    Block& b = blocks_[idx];
    if (b.state != State::Lent || b.gen != gen) return false;
    if (returnQueue_) {
      b.state = State::Busy;
      returned_.push_back(idx);
      // Under the lock: closeWake() may run on another thread once the stream stopped.
      wake_.raise();
    } else {
      b.state = State::Free;
      free_.push_back(idx);
    }
  }
  (byFinalizer ? finalized_ : released_)++;
  return true;
}

void BlockPool::setLentBuffer(int idx, uint32_t bufferId) {
  std::lock_guard<std::mutex> lk(mu_);
  blocks_[idx].lentBuffer = bufferId;
}

bool BlockPool::giveBackFromBuffer(int idx, uint32_t bufferId) {
  uint32_t gen;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (idx < 0 || static_cast<size_t>(idx) >= blocks_.size()) return false;
    const Block& b = blocks_[idx];
    if (b.state != State::Lent || b.lentBuffer != bufferId) return false;
    gen = b.gen;
  }
  return giveBack(idx, gen, true);
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
  return free_.size();
}

size_t BlockPool::lentCount() {
  std::lock_guard<std::mutex> lk(mu_);
  size_t n = 0;
  for (auto& b : blocks_) n += b.state == State::Lent;
  return n;
}

}  // namespace iiokit

// DMABUF mechanics (Linux 6.11+ IIO interface, Documentation/iio/iio_dmabuf_api.rst):
// allocate from a DMA heap, map, sync around CPU access, attach/detach/enqueue on an IIO
// buffer fd. No policy: whether to try, and what a failure means, is decided by the
// caller (the streaming core falls back to read()/write()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pool.h"

namespace iiokit {
namespace dmabuf {

/** What failed, for the caller's debug log and for the fallback decision. */
struct Failure {
  int err = 0;          // errno (positive), 0 on success
  std::string op;       // "open heap", "alloc", "mmap", "attach", ...
};

/**
 * Allocates `count` blocks of `bytes` from the heap at `heapPath` and maps them.
 * On failure everything allocated so far is released and `fail` says why.
 */
bool allocate(const std::string& heapPath, size_t count, size_t bytes,
              std::vector<BlockPool::Dmabuf>* out, Failure* fail);
void release(std::vector<BlockPool::Dmabuf>* blocks, size_t bytes);

int attach(int bufferFd, int dmabufFd);
int detach(int bufferFd, int dmabufFd);
int enqueue(int bufferFd, int dmabufFd, uint64_t bytesUsed, bool cyclic);
/**
 * DMA_BUF_IOCTL_EXPORT_SYNC_FILE right after an enqueue: a sync_file fd holding the
 * transfer's fence (pollable: POLLIN once it signals), or -errno.
 */
int exportFence(int dmabufFd);
/** SYNC_IOC_FILE_INFO: 1 signalled, 0 still active, < 0 the fence's error (-EINTR, ...). */
int fenceStatus(int syncFileFd);

/**
 * Exercises allocation, mmap and DMA_BUF_IOCTL_SYNC on their own (no IIO device needed):
 * writes a pattern through one mapping inside SYNC START/END and reads it back through a
 * second, independent mapping of the same DMABUF. Each step is reported.
 */
struct CheckStep {
  std::string op;
  int err;
};
bool heapCheck(const std::string& heapPath, size_t bytes, std::vector<CheckStep>* steps);

}  // namespace dmabuf
}  // namespace iiokit

#include "dmabuf.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ioctl.h"
#include "sys.h"

namespace iiokit {
namespace dmabuf {

bool allocate(const std::string& heapPath, size_t count, size_t bytes,
              std::vector<BlockPool::Dmabuf>* out, Failure* fail) {
  int heap = sys::openPath(heapPath.c_str(), O_RDWR);
  if (heap < 0) {
    *fail = {-heap, "open heap"};
    return false;
  }
  for (size_t i = 0; i < count; i++) {
    int fd = sys::dmaHeapAlloc(heap, bytes);
    if (fd < 0) {
      *fail = {-fd, "alloc"};
      break;
    }
    void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
      *fail = {errno, "mmap"};
      ::close(fd);
      break;
    }
    out->push_back({fd, static_cast<uint8_t*>(map)});
  }
  sys::closeFd(heap);
  if (out->size() != count) {
    release(out, bytes);
    return false;
  }
  return true;
}

void release(std::vector<BlockPool::Dmabuf>* blocks, size_t bytes) {
  for (auto& b : *blocks) {
    ::munmap(b.map, bytes);
    ::close(b.fd);
  }
  blocks->clear();
}

int attach(int bufferFd, int dmabufFd) {
  int arg = dmabufFd;
  int r = sys::ioctlPtr(bufferFd, kIioBufferDmabufAttachIoctl, &arg);
  return r < 0 ? r : 0;
}

int detach(int bufferFd, int dmabufFd) {
  int arg = dmabufFd;
  int r = sys::ioctlPtr(bufferFd, kIioBufferDmabufDetachIoctl, &arg);
  return r < 0 ? r : 0;
}

int enqueue(int bufferFd, int dmabufFd, uint64_t bytesUsed, bool cyclic) {
  IioDmabuf req{};
  req.fd = static_cast<uint32_t>(dmabufFd);
  req.flags = cyclic ? kIioDmabufCyclic : 0;
  req.bytes_used = bytesUsed;
  int r = sys::ioctlPtr(bufferFd, kIioBufferDmabufEnqueueIoctl, &req);
  return r < 0 ? r : 0;
}

int exportFence(int dmabufFd) {
  DmaBufExportSyncFile req{};
  // The WRITE flag asks for every fence a writer would wait for: the device's, whichever
  // direction it transfers in.
  req.flags = static_cast<uint32_t>(kDmaBufSyncWrite);
  req.fd = -1;
  int r = sys::ioctlPtr(dmabufFd, kDmaBufIoctlExportSyncFile, &req);
  return r < 0 ? r : req.fd;
}

int fenceStatus(int syncFileFd) {
  SyncFileInfo info{};
  int r = sys::ioctlPtr(syncFileFd, kSyncIocFileInfo, &info);
  return r < 0 ? r : info.status;
}

bool heapCheck(const std::string& heapPath, size_t bytes, std::vector<CheckStep>* steps) {
  std::vector<BlockPool::Dmabuf> blocks;
  Failure fail;
  if (!allocate(heapPath, 1, bytes, &blocks, &fail)) {
    steps->push_back({fail.op, fail.err});
    return false;
  }
  steps->push_back({"alloc+mmap", 0});
  int fd = blocks[0].fd;
  uint8_t* a = blocks[0].map;
  bool ok = true;
  int r = sys::dmaBufSync(fd, kDmaBufSyncStart | kDmaBufSyncWrite);
  steps->push_back({"sync start write", -r});
  ok = ok && r == 0;
  for (size_t i = 0; i < bytes; i++) a[i] = static_cast<uint8_t>(i * 7 + 3);
  r = sys::dmaBufSync(fd, kDmaBufSyncEnd | kDmaBufSyncWrite);
  steps->push_back({"sync end write", -r});
  ok = ok && r == 0;
  // A second mapping of the same DMABUF sees the pattern only if both map the same pages.
  void* second = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (second == MAP_FAILED) {
    steps->push_back({"mmap second view", errno});
    ok = false;
  } else {
    r = sys::dmaBufSync(fd, kDmaBufSyncStart | kDmaBufSyncRead);
    steps->push_back({"sync start read", -r});
    ok = ok && r == 0;
    const uint8_t* b = static_cast<const uint8_t*>(second);
    bool same = second != a;
    for (size_t i = 0; i < bytes && same; i++) same = b[i] == static_cast<uint8_t>(i * 7 + 3);
    steps->push_back({"pattern through second view", same ? 0 : EIO});
    ok = ok && same;
    r = sys::dmaBufSync(fd, kDmaBufSyncEnd | kDmaBufSyncRead);
    steps->push_back({"sync end read", -r});
    ok = ok && r == 0;
    ::munmap(second, bytes);
  }
  release(&blocks, bytes);
  return ok;
}

}  // namespace dmabuf
}  // namespace iiokit

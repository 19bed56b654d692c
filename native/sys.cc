#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ioctl.h"

namespace iiokit {
namespace sys {

int openPath(const char* path, int flags) {
  int fd;
  do {
    fd = ::open(path, flags | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

int closeFd(int fd) {
  // close() must not be retried on EINTR on Linux: the fd is gone either way.
  return ::close(fd) < 0 && errno != EINTR ? -errno : 0;
}

int ioctlPtr(int fd, unsigned long request, void* arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

int getBufferFd(int devFd, int index) {
  int arg = index;
  int r = ioctlPtr(devFd, kIioBufferGetFdIoctl, &arg);
  if (r < 0) return r;
  // The kernel returns the new fd both as the result and in the argument.
  return arg;
}

int getEventFd(int devFd) {
  int arg = -1;
  int r = ioctlPtr(devFd, kIioGetEventFdIoctl, &arg);
  if (r < 0) return r;
  return arg;
}

int setNonBlocking(int fd, bool on) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  int want = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (want == fl) return 0;
  return ::fcntl(fd, F_SETFL, want) < 0 ? -errno : 0;
}

Signal::Signal() {
  fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd_ < 0) fd_ = -errno;
}

Signal::~Signal() {
  if (fd_ >= 0) ::close(fd_);
}

void Signal::raise() {
  if (fd_ < 0) return;
  uint64_t one = 1;
  // EAGAIN only when the counter would overflow: it is raised already, which is enough.
  ssize_t r;
  do {
    r = ::write(fd_, &one, sizeof one);
  } while (r < 0 && errno == EINTR);
}

uint64_t Signal::drain() {
  if (fd_ < 0) return 0;
  uint64_t v = 0;
  ssize_t r;
  do {
    r = ::read(fd_, &v, sizeof v);
  } while (r < 0 && errno == EINTR);
  return r == sizeof v ? v : 0;
}

void Signal::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -EBADF;
}

int64_t nowMs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t nowUs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

int dmaHeapAlloc(int heapFd, uint64_t bytes) {
  DmaHeapAllocationData data{};
  data.len = bytes;
  data.fd_flags = O_RDWR | O_CLOEXEC;
  data.heap_flags = 0;
  int r = ioctlPtr(heapFd, kDmaHeapIoctlAlloc, &data);
  if (r < 0) return r;
  return static_cast<int>(data.fd);
}

int dmaBufSync(int dmabufFd, uint64_t flags) {
  DmaBufSync s{flags};
  int r = ioctlPtr(dmabufFd, kDmaBufIoctlSync, &s);
  return r < 0 ? r : 0;
}

}  // namespace sys
}  // namespace iiokit

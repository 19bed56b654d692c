// Thin syscall wrappers: each returns a value >= 0 or -errno, retries EINTR, and never
// throws, so the streaming thread and the JS bindings share them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace iiokit {
namespace sys {

int openPath(const char* path, int flags);
int closeFd(int fd);
/** ioctl with a pointer argument. */
int ioctlPtr(int fd, unsigned long request, void* arg);
/** IIO_BUFFER_GET_FD_IOCTL: a new fd for buffer `index` of an open /dev/iio:deviceN. */
int getBufferFd(int devFd, int index);
/** IIO_GET_EVENT_FD_IOCTL: the event fd of an open /dev/iio:deviceN. */
int getEventFd(int devFd);
/** Sets or clears O_NONBLOCK. */
int setNonBlocking(int fd, bool on);

/** An eventfd used to wake a thread out of poll(); closed by the destructor. */
class Signal {
 public:
  Signal();
  ~Signal();
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;
  /** -errno when the eventfd could not be made, else 0. */
  int status() const { return fd_ < 0 ? fd_ : 0; }
  int fd() const { return fd_; }
  void raise();
  /** Reads the counter back to zero; returns how many raises were pending. */
  uint64_t drain();
  /** Closes the eventfd now (raise() and drain() do nothing after). */
  void close();

 private:
  int fd_;
};

/** Milliseconds left until a deadline on the monotonic clock (-1 = no deadline). */
int64_t nowMs();
/** The monotonic clock in microseconds. */
int64_t nowUs();

/** DMA heap: allocates `bytes` and returns the DMABUF fd or -errno. */
int dmaHeapAlloc(int heapFd, uint64_t bytes);
/** DMA_BUF_IOCTL_SYNC with the given flags. */
int dmaBufSync(int dmabufFd, uint64_t flags);

}  // namespace sys
}  // namespace iiokit

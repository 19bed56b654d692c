// TEMPORARY: a self-test for the prebuild pipeline until the native module's own
// selfTest() lands (branch `native`); delete this file and its line in binding.gyp then.
// It exercises what a cross-compiled binary can get wrong on its target: libc syscalls
// (eventfd), the target's _IOC encoding, C++ exceptions and external Buffers.
#include <linux/ioctl.h>
#include <napi.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace {

struct IioDmabuf {
  uint32_t fd;
  uint32_t flags;
  uint64_t bytes_used;
};
struct DmaHeapAllocationData {
  uint64_t len;
  uint32_t fd;
  uint32_t fd_flags;
  uint64_t heap_flags;
};

bool EventfdRoundTrip(std::string* why) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    *why = std::string("eventfd: ") + strerror(errno);
    return false;
  }
  uint64_t one = 1, got = 0;
  bool ok = write(fd, &one, sizeof one) == sizeof one && read(fd, &got, sizeof got) == sizeof got &&
            got == 1;
  if (!ok) *why = std::string("eventfd write/read: ") + strerror(errno);
  // A second read of a drained non-blocking eventfd must say EAGAIN.
  if (ok && (read(fd, &got, sizeof got) != -1 || errno != EAGAIN)) {
    ok = false;
    *why = "drained eventfd did not answer EAGAIN";
  }
  if (close(fd) != 0 && ok) {
    ok = false;
    *why = std::string("close: ") + strerror(errno);
  }
  return ok;
}

Napi::Value SelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);

  std::string why;
  bool efd = EventfdRoundTrip(&why);
  out.Set("eventfd", efd);
  if (!efd) out.Set("eventfdError", why);

  Napi::Object ioctls = Napi::Object::New(env);
  ioctls.Set("IIO_GET_EVENT_FD_IOCTL", static_cast<double>(_IOR('i', 0x90, int)));
  ioctls.Set("IIO_BUFFER_GET_FD_IOCTL", static_cast<double>(_IOWR('i', 0x91, int)));
  ioctls.Set("IIO_BUFFER_DMABUF_ATTACH_IOCTL", static_cast<double>(_IOW('i', 0x92, int)));
  ioctls.Set("IIO_BUFFER_DMABUF_DETACH_IOCTL", static_cast<double>(_IOW('i', 0x93, int)));
  ioctls.Set("IIO_BUFFER_DMABUF_ENQUEUE_IOCTL",
             static_cast<double>(_IOW('i', 0x94, struct IioDmabuf)));
  ioctls.Set("DMA_HEAP_IOCTL_ALLOC",
             static_cast<double>(_IOWR('H', 0x0, struct DmaHeapAllocationData)));
  out.Set("ioctls", ioctls);

  // A block goes out as an external Buffer and comes back through its finalizer; the
  // pattern checks the memory JS sees is the block's.
  constexpr size_t kBytes = 4096;
  std::vector<uint8_t>* block = new std::vector<uint8_t>(kBytes);
  for (size_t i = 0; i < kBytes; i++) (*block)[i] = static_cast<uint8_t>(i * 7);
  out.Set("block", Napi::Buffer<uint8_t>::New(env, block->data(), kBytes,
                                              [](Napi::Env, uint8_t*, std::vector<uint8_t>* b) {
                                                delete b;
                                              },
                                              block));

  // C++ exceptions must cross the cross-compiled unwinder into a JS exception.
  try {
    throw std::runtime_error("unwind");
  } catch (const std::exception& e) {
    out.Set("exceptions", std::string(e.what()) == "unwind");
  }
  out.Set("sizeofLong", static_cast<double>(sizeof(long)));
  return out;
}

}  // namespace

void RegisterSelfTestStub(Napi::Env env, Napi::Object exports) {
  exports.Set("selfTest", Napi::Function::New(env, SelfTest, "selfTest"));
}

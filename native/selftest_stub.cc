// TEMPORARY: a self-test for the prebuild pipeline until the native module's own
// selfTest() lands (branch `native`); delete this file and its line in binding.gyp then.
// Same shape as the real one ({ ok, checks: [{ name, ok, detail }] }, plus ioctls()), so
// the tests that run it on every architecture need no change when it is replaced. It
// exercises what a cross-compiled binary can get wrong on its target: libc syscalls
// (eventfd), the target's _IOC encoding and struct sizes, C++ exceptions, threads.
#include <linux/ioctl.h>
#include <napi.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
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
struct DmaBufSync {
  uint64_t flags;
};

struct Check {
  std::string name;
  bool ok;
  std::string detail;
};

const struct {
  const char* name;
  unsigned long value;
} kIoctls[] = {
    {"IIO_GET_EVENT_FD_IOCTL", _IOR('i', 0x90, int)},
    {"IIO_BUFFER_GET_FD_IOCTL", _IOWR('i', 0x91, int)},
    {"IIO_BUFFER_DMABUF_ATTACH_IOCTL", _IOW('i', 0x92, int)},
    {"IIO_BUFFER_DMABUF_DETACH_IOCTL", _IOW('i', 0x93, int)},
    {"IIO_BUFFER_DMABUF_ENQUEUE_IOCTL", _IOW('i', 0x94, struct IioDmabuf)},
    {"DMA_HEAP_IOCTL_ALLOC", _IOWR('H', 0x0, struct DmaHeapAllocationData)},
    {"DMA_BUF_IOCTL_SYNC", _IOW('b', 0, struct DmaBufSync)},
};

Check EventfdCheck() {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return {"eventfd raise/drain", false, "eventfd failed"};
  uint64_t one = 1, got = 0;
  bool ok = write(fd, &one, sizeof one) == sizeof one && write(fd, &one, sizeof one) == sizeof one &&
            read(fd, &got, sizeof got) == sizeof got && got == 2;
  uint64_t again = 0;
  bool drained = read(fd, &again, sizeof again) == -1;  // EAGAIN once drained
  bool closed = close(fd) == 0;
  return {"eventfd raise/drain", ok && drained && closed, "drained " + std::to_string(got)};
}

Check IoctlCheck() {
  bool ok = kIoctls[0].value == 0x80046990UL && kIoctls[1].value == 0xc0046991UL &&
            kIoctls[4].value == 0x40106994UL && kIoctls[5].value == 0xc0184800UL &&
            kIoctls[6].value == 0x40086200UL;
  return {"ioctl numbers (generic encoding)", ok, ""};
}

// A block filled on another thread and checked on this one: threads, memory, the pool's
// hand-over in miniature.
Check PoolCheck() {
  std::vector<uint8_t> block(4096);
  std::thread filler([&block] {
    for (size_t i = 0; i < block.size(); i++) block[i] = static_cast<uint8_t>(i * 7);
  });
  filler.join();
  bool ok = true;
  for (size_t i = 0; i < block.size(); i++) ok = ok && block[i] == static_cast<uint8_t>(i * 7);
  return {"pool round trip", ok, ""};
}

Check ExceptionCheck() {
  try {
    throw std::runtime_error("unwind");
  } catch (const std::exception& e) {
    return {"C++ exceptions", std::string(e.what()) == "unwind", ""};
  }
  return {"C++ exceptions", false, "not caught"};
}

Napi::Value SelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Check> checks = {EventfdCheck(), IoctlCheck(), PoolCheck(), ExceptionCheck()};
  Napi::Array list = Napi::Array::New(env, checks.size());
  bool all = true;
  for (size_t i = 0; i < checks.size(); i++) {
    Napi::Object c = Napi::Object::New(env);
    c.Set("name", checks[i].name);
    c.Set("ok", checks[i].ok);
    c.Set("detail", checks[i].detail);
    list.Set(static_cast<uint32_t>(i), c);
    all = all && checks[i].ok;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", all);
  out.Set("checks", list);
  return out;
}

Napi::Value Ioctls(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  for (const auto& i : kIoctls) out.Set(i.name, static_cast<double>(i.value));
  return out;
}

}  // namespace

void RegisterSelfTestStub(Napi::Env env, Napi::Object exports) {
  exports.Set("selfTest", Napi::Function::New(env, SelfTest, "selfTest"));
  exports.Set("ioctls", Napi::Function::New(env, Ioctls, "ioctls"));
}

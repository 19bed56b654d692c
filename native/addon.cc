// The native module: syscalls and a block pool only. IIO policy (which sysfs files to
// write, masks, scan layouts) lives in TypeScript (src/backends/local/buffer.ts).
//
// Exports: open/close, the two IIO fd ioctls, the ioctl numbers, a Stream class (one
// thread per open buffer, blocks handed over through a thread-safe function:
// stream_binding.cc, js_delivery.cc), a DMA-heap check and selfTest(); and testHooks(),
// the test suite's entry, which answers only when IIOKIT_TEST_HOOKS=1
// (docs/decisions.md). Everything stays on Node-API 8, so one binary serves Node 18-24.
#include <stdlib.h>

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dmabuf.h"
#include "ioctl.h"
#include "napi_args.h"
#include "selftest.h"
#include "stream_binding.h"
#include "sys.h"

namespace iiokit {
namespace {

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(env, "path must be a string");
  std::string path = info[0].As<Napi::String>();
  int flags = static_cast<int>(intArg(info, 1, "flags", 0, kMaxInt));
  int fd = sys::openPath(path.c_str(), flags);
  if (fd < 0) throw errnoError(env, -fd, "open", path);
  return Napi::Number::New(env, fd);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int r = sys::closeFd(fdArg(info, 0));
  if (r < 0) throw errnoError(info.Env(), -r, "close", "");
  return info.Env().Undefined();
}

Napi::Value GetBufferFd(const Napi::CallbackInfo& info) {
  int index = static_cast<int>(intArg(info, 1, "index", 0, kMaxInt));
  int fd = sys::getBufferFd(fdArg(info, 0), index);
  if (fd < 0) throw errnoError(info.Env(), -fd, "ioctl", "IIO_BUFFER_GET_FD_IOCTL");
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value GetEventFd(const Napi::CallbackInfo& info) {
  int fd = sys::getEventFd(fdArg(info, 0));
  if (fd < 0) throw errnoError(info.Env(), -fd, "ioctl", "IIO_GET_EVENT_FD_IOCTL");
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Ioctls(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* k, unsigned long v) {
    o.Set(k, Napi::Number::New(env, static_cast<double>(v)));
  };
  set("IIO_GET_EVENT_FD_IOCTL", kIioGetEventFdIoctl);
  set("IIO_BUFFER_GET_FD_IOCTL", kIioBufferGetFdIoctl);
  set("IIO_BUFFER_DMABUF_ATTACH_IOCTL", kIioBufferDmabufAttachIoctl);
  set("IIO_BUFFER_DMABUF_DETACH_IOCTL", kIioBufferDmabufDetachIoctl);
  set("IIO_BUFFER_DMABUF_ENQUEUE_IOCTL", kIioBufferDmabufEnqueueIoctl);
  set("DMA_HEAP_IOCTL_ALLOC", kDmaHeapIoctlAlloc);
  set("DMA_BUF_IOCTL_SYNC", kDmaBufIoctlSync);
  set("DMA_BUF_IOCTL_EXPORT_SYNC_FILE", kDmaBufIoctlExportSyncFile);
  set("SYNC_IOC_FILE_INFO", kSyncIocFileInfo);
  return o;
}

Napi::Value HeapCheck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(env, "heap path must be a string");
  std::string path = info[0].As<Napi::String>();
  int64_t bytes = intArg(info, 1, "bytes", 1, kMaxBlockBytes);
  std::vector<dmabuf::CheckStep> steps;
  bool ok = dmabuf::heapCheck(path, static_cast<size_t>(bytes), &steps);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", Napi::Boolean::New(env, ok));
  Napi::Array a = Napi::Array::New(env, steps.size());
  for (size_t i = 0; i < steps.size(); i++) {
    Napi::Object s = Napi::Object::New(env);
    s.Set("op", Napi::String::New(env, steps[i].op));
    s.Set("errno", Napi::Number::New(env, steps[i].err));
    a.Set(static_cast<uint32_t>(i), s);
  }
  o.Set("steps", a);
  return o;
}

Napi::Value SelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<selftest::Check> checks;
  bool ok = selftest::run(&checks);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", Napi::Boolean::New(env, ok));
  Napi::Array a = Napi::Array::New(env, checks.size());
  for (size_t i = 0; i < checks.size(); i++) {
    Napi::Object c = Napi::Object::New(env);
    c.Set("name", Napi::String::New(env, checks[i].name));
    c.Set("ok", Napi::Boolean::New(env, checks[i].ok));
    c.Set("detail", Napi::String::New(env, checks[i].detail));
    a.Set(static_cast<uint32_t>(i), c);
  }
  o.Set("checks", a);
  return o;
}

// ---------------------------------------------------------------------------------------
// The test suite's entry: what lets a test prove zero copy. Not part of the interface an
// application sees: testHooks() refuses unless IIOKIT_TEST_HOOKS=1 is set when it is
// called (test/helpers/native-hooks.ts sets it).

/** Where a Buffer's bytes live: lets tests prove that a block aliases pool memory. */
Napi::Value AddressOf(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBuffer())
    throw Napi::TypeError::New(info.Env(), "buffer must be a Buffer");
  auto b = info[0].As<Napi::Buffer<uint8_t>>();
  return Napi::BigInt::New(info.Env(),
                           static_cast<uint64_t>(reinterpret_cast<uintptr_t>(b.Data())));
}

Napi::Value TestHooks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* on = ::getenv("IIOKIT_TEST_HOOKS");
  if (!on || std::string(on) != "1")
    throw Napi::Error::New(env, "testHooks() is the test suite's entry: set IIOKIT_TEST_HOOKS=1");
  Napi::Object o = Napi::Object::New(env);
  o.Set("addressOf", Napi::Function::New<AddressOf>(env, "addressOf"));
  addStreamTestHooks(env, o);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // 4: DMABUF data path (detach, drain, a block's lost scans, DMABUF stats).
  exports.Set("abiVersion", Napi::Number::New(env, 4));
  exports.Set("open", Napi::Function::New<Open>(env, "open"));
  exports.Set("close", Napi::Function::New<Close>(env, "close"));
  exports.Set("getBufferFd", Napi::Function::New<GetBufferFd>(env, "getBufferFd"));
  exports.Set("getEventFd", Napi::Function::New<GetEventFd>(env, "getEventFd"));
  exports.Set("ioctls", Napi::Function::New<Ioctls>(env, "ioctls"));
  exports.Set("heapCheck", Napi::Function::New<HeapCheck>(env, "heapCheck"));
  exports.Set("selfTest", Napi::Function::New<SelfTest>(env, "selfTest"));
  exports.Set("Stream", defineStreamClass(env));
  exports.Set("testHooks", Napi::Function::New<TestHooks>(env, "testHooks"));
  return exports;
}

}  // namespace
}  // namespace iiokit

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return iiokit::Init(env, exports);
}

NODE_API_MODULE(iiokit, InitModule)

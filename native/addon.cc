// The native module: syscalls and a block pool only. IIO policy (which sysfs files to
// write, masks, scan layouts) lives in TypeScript (src/backends/local/buffer.ts).
//
// Exports: open/close, the two IIO fd ioctls, the ioctl numbers, a Stream class (one
// thread per open buffer, blocks handed over through a thread-safe function), a DMA-heap
// check and selfTest(); and testHooks(), the test suite's entry, which answers only when
// IIOKIT_TEST_HOOKS=1 (docs/decisions.md). Everything stays on Node-API 8, so one binary
// serves Node 18-24.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "dmabuf.h"
#include "ioctl.h"
#include "pool.h"
#include "selftest.h"
#include "stream.h"
#include "sys.h"

namespace iiokit {
namespace {

Napi::Error errnoError(Napi::Env env, int err, const std::string& syscall, const std::string& what) {
  std::string msg = syscall;
  if (!what.empty()) msg += " " + what;
  msg += ": ";
  msg += ::strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

// ---------------------------------------------------------------------------------------
// Checked numbers. A JS number is a double: cast straight to an int or size_t, NaN, -1 or
// 1.5 become whatever the conversion makes of them (close(1.5) closed fd 1). Every numeric
// argument goes through here: a TypeError when it is not a number, a RangeError naming it
// when it is not an integer in its range.

constexpr int64_t kMaxInt = 2147483647;
/** Largest block (and DMA-heap check) accepted: 1 GiB. */
constexpr int64_t kMaxBlockBytes = int64_t{1} << 30;
constexpr int64_t kMaxBlocks = 1024;
constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

std::string numberText(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char b[32];
  std::snprintf(b, sizeof b, "%.17g", d);
  return b;
}

int64_t checkedInteger(Napi::Env env, const Napi::Value& v, const std::string& name, int64_t min,
                       int64_t max) {
  if (v.IsEmpty() || !v.IsNumber()) throw Napi::TypeError::New(env, name + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  // Written so that NaN fails too.
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || std::trunc(d) != d)
    throw Napi::RangeError::New(env, name + " must be an integer from " + std::to_string(min) +
                                         " to " + std::to_string(max) + ", not " + numberText(d));
  return static_cast<int64_t>(d);
}

int64_t intArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min,
               int64_t max) {
  return checkedInteger(info.Env(), info.Length() > i ? info[i] : info.Env().Undefined(), name,
                        min, max);
}

int fdArg(const Napi::CallbackInfo& info, size_t i, const char* name = "fd") {
  return static_cast<int>(intArg(info, i, name, 0, kMaxInt));
}

/** An option of an options object: `dflt` when absent (undefined), else checked. */
int64_t intOption(Napi::Env env, Napi::Object o, const char* key, int64_t dflt, int64_t min,
                  int64_t max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  return checkedInteger(env, v, key, min, max);
}

bool flagOption(Napi::Env env, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) throw Napi::TypeError::New(env, std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

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
// Stream: the JS face of the streaming core.

/**
 * One Buffer object per pool block, reused from lending to lending (JS thread only).
 * Making a new external Buffer for every block costs an ArrayBuffer, a finalizer and,
 * worse, external memory that V8 answers with frequent full GCs. The reference is weak
 * while the block is lent, so a Buffer JS forgets is still collected and its finalizer
 * (the safety net) gives the block back; it is strong once JS released the block.
 */
struct BufferCache {
  std::vector<Napi::Reference<Napi::Buffer<uint8_t>>> refs;
  std::vector<uint32_t> ids;
  std::vector<bool> strong;
  uint32_t nextId = 0;

  explicit BufferCache(size_t n) : refs(n), ids(n, 0), strong(n, false) {}

  /** The cached Buffer of a block if it is still alive. */
  Napi::Buffer<uint8_t> alive(size_t idx) {
    if (idx >= refs.size() || refs[idx].IsEmpty()) return Napi::Buffer<uint8_t>();
    Napi::Value v = refs[idx].Value();
    if (v.IsEmpty() || !v.IsBuffer()) return Napi::Buffer<uint8_t>();
    return v.As<Napi::Buffer<uint8_t>>();
  }
  void weaken(size_t idx) {
    if (strong[idx]) refs[idx].Unref();
    strong[idx] = false;
  }
  /** After an explicit release: keep the Buffer for the block's next lending. */
  void strengthen(size_t idx) {
    if (idx < refs.size() && !strong[idx] && !alive(idx).IsEmpty()) {
      refs[idx].Ref();
      strong[idx] = true;
    }
  }
  void clear() {
    for (auto& r : refs) r.Reset();
    std::fill(strong.begin(), strong.end(), false);
  }
};

struct TsfnContext {
  std::shared_ptr<Stream> stream;
  std::shared_ptr<BufferCache> cache;
};

/** The finalizer hint of a block's Buffer: keeps the pool's memory alive until GC. */
struct LendHint {
  std::shared_ptr<BlockPool> pool;
  int idx;
  uint32_t bufferId;
};

struct JobRef {
  Napi::Reference<Napi::Buffer<uint8_t>> buffer;
};

void dropJob(WriteJob* job) {
  if (!job) return;
  delete static_cast<JobRef*>(job->ref);
  delete job;
}

void CallJsOne(Napi::Env env, Napi::Function cb, TsfnContext* ctx, Delivery* d);

/** One wake-up of the JS thread: a delivery, or a batch of them chained by `next`. */
void CallJs(Napi::Env env, Napi::Function cb, TsfnContext* ctx, Delivery* d) {
  if (env == nullptr || cb.IsEmpty()) {
    Stream::dispose(ctx ? ctx->stream->pool() : nullptr, d);
    return;
  }
  while (d) {
    Delivery* next = d->next;
    d->next = nullptr;
    CallJsOne(env, cb, ctx, d);
    d = next;
  }
}

void CallJsOne(Napi::Env env, Napi::Function cb, TsfnContext* ctx, Delivery* d) {
  try {
    Napi::Value consumed;
    switch (d->kind) {
      case DeliveryKind::Block: {
        Napi::Buffer<uint8_t> buf;
        if (d->fresh) {
          buf = Napi::Buffer<uint8_t>::NewOrCopy(env, d->fresh, d->len,
                                                 [](Napi::Env, uint8_t* p) { ::free(p); });
        } else {
          auto pool = ctx->stream->pool();
          BufferCache& cache = *ctx->cache;
          const size_t idx = static_cast<size_t>(d->idx);
          const bool whole = d->len == pool->blockBytes();
          if (whole) buf = cache.alive(idx);
          if (!buf.IsEmpty()) {
            pool->setLentBuffer(d->idx, cache.ids[idx]);
            cache.weaken(idx);
          } else {
            uint32_t id = ++cache.nextId;
            pool->setLentBuffer(d->idx, id);
            auto* hint = new LendHint{pool, d->idx, id};
            // NewOrCopy: where external memory is refused (V8 sandbox, Electron) it copies
            // and runs the finalizer at once, which gives the block straight back.
            buf = Napi::Buffer<uint8_t>::NewOrCopy(
                env, pool->data(d->idx), d->len,
                [](Napi::Env, uint8_t*, LendHint* h) {
                  h->pool->giveBackFromBuffer(h->idx, h->bufferId);
                  delete h;
                },
                hint);
            if (whole && buf.Data() == pool->data(d->idx)) {
              cache.refs[idx] = Napi::Reference<Napi::Buffer<uint8_t>>::New(buf, 0);
              cache.ids[idx] = id;
              cache.strong[idx] = false;
            }
          }
        }
        consumed = cb.Call({Napi::Number::New(env, 0), buf, Napi::Number::New(env, d->idx),
                            Napi::Number::New(env, d->gen),
                            Napi::Number::New(env, static_cast<double>(d->lost))});
        break;
      }
      case DeliveryKind::Error:
        consumed = cb.Call({Napi::Number::New(env, 1), Napi::Number::New(env, d->err),
                            Napi::String::New(env, d->op),
                            d->job ? Napi::Number::New(env, d->job->id) : env.Undefined(),
                            Napi::Number::New(env, static_cast<double>(d->done))});
        break;
      case DeliveryKind::Written:
        cb.Call({Napi::Number::New(env, 2), Napi::Number::New(env, d->job->id)});
        break;
      case DeliveryKind::End:
        cb.Call({Napi::Number::New(env, 3), Napi::Number::New(env, d->err),
                 Napi::String::New(env, d->op)});
        break;
    }
    // The JS side answers true when a waiting read() took the delivery at once.
    if (!d->job && !consumed.IsEmpty() && consumed.IsBoolean() &&
        consumed.As<Napi::Boolean>().Value())
      ctx->stream->credit(1);
  } catch (const Napi::Error& e) {
    // The callback threw, so it did not queue the delivery: its place comes back (else
    // `blocks` throws stall the thread for good), and the error goes to process
    // 'uncaughtException' as for any throwing event handler. Left pending here, Node-API 8
    // would drop it with a DEP0168 warning; the next delivery of the batch still runs.
    if (!d->job && (d->kind == DeliveryKind::Block || d->kind == DeliveryKind::Error))
      ctx->stream->credit(1);
    napi_fatal_exception(env, e.Value());
  }
  dropJob(d->job);
  delete d;
}

using Tsfn = Napi::TypedThreadSafeFunction<TsfnContext, Delivery, CallJs>;

class StreamWrap : public Napi::ObjectWrap<StreamWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Stream",
        {
            InstanceMethod<&StreamWrap::TryDmabuf>("tryDmabuf"),
            InstanceMethod<&StreamWrap::Start>("start"),
            InstanceMethod<&StreamWrap::Credit>("credit"),
            InstanceMethod<&StreamWrap::Release>("release"),
            InstanceMethod<&StreamWrap::Write>("write"),
            InstanceMethod<&StreamWrap::Cancel>("cancel"),
            InstanceMethod<&StreamWrap::Close>("close"),
            InstanceMethod<&StreamWrap::Detach>("detach"),
            InstanceMethod<&StreamWrap::Drain>("drain"),
            InstanceMethod<&StreamWrap::Stats>("stats"),
        });
  }

  explicit StreamWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject())
      throw Napi::TypeError::New(env, "Stream options must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    StreamConfig cfg;
    cfg.fd = static_cast<int>(checkedInteger(env, o.Get("fd"), "fd", 0, kMaxInt));
    cfg.output = flagOption(env, o, "output");
    cfg.blockBytes = static_cast<size_t>(
        checkedInteger(env, o.Get("blockBytes"), "blockBytes", 1, kMaxBlockBytes));
    cfg.unitBytes = static_cast<size_t>(
        intOption(env, o, "unitBytes", 1, 1, static_cast<int64_t>(cfg.blockBytes)));
    cfg.blocks = static_cast<size_t>(intOption(env, o, "blocks", 4, 1, kMaxBlocks));
    cfg.timeoutMs = static_cast<int>(intOption(env, o, "timeoutMs", 0, 0, kMaxInt));
    cfg.partial = flagOption(env, o, "partial");
    cfg.cyclic = flagOption(env, o, "cyclic");
    // Absent: no batching (every block at once); src/native/index.ts gives the defaults.
    cfg.batchHoldUs = intOption(env, o, "batchHoldUs", 0, 0, 10000000);
    cfg.batchMaxBlocks = static_cast<size_t>(intOption(env, o, "batchMaxBlocks", 1, 1, kMaxBlocks));
    if (cfg.blockBytes % cfg.unitBytes != 0)
      throw Napi::RangeError::New(env, "blockBytes must be a multiple of unitBytes");
    stream_ = std::make_shared<Stream>(cfg);
    if (stream_->status() < 0) throw errnoError(env, -stream_->status(), "dup", "fd");
  }

  /** The core, for the test hooks. */
  const std::shared_ptr<Stream>& core() const { return stream_; }

  ~StreamWrap() override {
    unhook();
    // A leaked (never closed) stream: stop its thread before its memory goes.
    if (stream_) stream_->detachDmabufs();
  }

 private:
  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<StreamWrap*>(arg);
    self->hooked_ = false;
    self->stream_->close();
    self->stream_->detachDmabufs();
  }

  void unhook() {
    if (hooked_) {
      napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
      hooked_ = false;
    }
  }

  Napi::Value TryDmabuf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString())
      throw Napi::TypeError::New(env, "heap path must be a string");
    dmabuf::Failure fail;
    bool ok = stream_->tryDmabuf(info[0].As<Napi::String>(), &fail);
    Napi::Object o = Napi::Object::New(env);
    o.Set("ok", Napi::Boolean::New(env, ok));
    o.Set("errno", Napi::Number::New(env, ok ? 0 : fail.err));
    o.Set("op", Napi::String::New(env, ok ? "" : fail.op));
    return o;
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction())
      throw Napi::TypeError::New(env, "start() needs a callback");
    if (stream_->started()) throw errnoError(env, EBUSY, "start", "stream");
    auto* ctx = new TsfnContext{stream_, nullptr};
    // Unbounded queue: the thread must never block on JS (credit bounds what is queued).
    Tsfn tsfn = Tsfn::New(env, info[0].As<Napi::Function>(), "iiokit-stream", 0, 1, ctx,
                          [](Napi::Env, void*, TsfnContext* c) { delete c; });
    int r = stream_->start([tsfn](Delivery* d) mutable {
      bool last = d->kind == DeliveryKind::End;
      napi_status s = tsfn.NonBlockingCall(d);
      if (last) tsfn.Release();
      return s == napi_ok;
    });
    if (r < 0) {
      tsfn.Release();
      throw errnoError(env, -r, "start", "stream");
    }
    // The pool exists now (start() made it): one cached Buffer slot per block. Deliveries
    // run on this thread, after this function returns, so they see it.
    cache_ = std::make_shared<BufferCache>(stream_->pool()->count());
    ctx->cache = cache_;
    env_ = env;
    napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
    hooked_ = true;
    return env.Undefined();
  }

  Napi::Value Credit(const Napi::CallbackInfo& info) {
    // JS owes at most one place per block it was handed.
    stream_->credit(static_cast<int>(intArg(info, 0, "n", 0, kMaxBlocks)));
    return info.Env().Undefined();
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    int idx = static_cast<int>(intArg(info, 0, "block", 0, kMaxInt));
    uint32_t gen = static_cast<uint32_t>(intArg(info, 1, "gen", 0, 4294967295LL));
    bool ok = stream_->release(idx, gen);
    if (ok && cache_ && !closed_) cache_->strengthen(static_cast<size_t>(idx));
    return Napi::Boolean::New(info.Env(), ok);
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer())
      throw Napi::TypeError::New(env, "write(buffer, id): buffer must be a Buffer");
    const double id = static_cast<double>(intArg(info, 1, "id", 0, kMaxSafeInteger));
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    if (buf.Length() == 0 || buf.Length() % stream_->config().unitBytes != 0)
      throw Napi::RangeError::New(env, "write() needs whole units");
    auto* job = new WriteJob;
    job->id = id;
    job->data = buf.Data();
    job->len = buf.Length();
    // Zero copy: the thread writes straight from the caller's Buffer, kept alive here.
    job->ref = new JobRef{Napi::Persistent(buf)};
    int r = stream_->write(job);
    if (r < 0) {
      dropJob(job);
      throw errnoError(env, -r, "write", "stream");
    }
    return env.Undefined();
  }

  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    stream_->cancel();
    return info.Env().Undefined();
  }

  /** Stops and joins the thread; returns the ids of pushes that were never written. */
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    unhook();
    std::vector<WriteJob*> left = stream_->close();
    // Cached Buffers become collectable: their finalizers let the pool's memory go.
    closed_ = true;
    if (cache_) cache_->clear();
    Napi::Array ids = Napi::Array::New(env, left.size());
    for (size_t i = 0; i < left.size(); i++) {
      ids.Set(static_cast<uint32_t>(i), Napi::Number::New(env, left[i]->id));
      dropJob(left[i]);
    }
    return ids;
  }

  /**
   * DMABUF: DETACH and close the DMABUF fds, once the thread has stopped (close()) and the
   * buffer was disabled. Returns 0 or the errno of the first DETACH that failed.
   */
  Napi::Value Detach(const Napi::CallbackInfo& info) {
    unhook();
    int r = stream_->detachDmabufs();
    closed_ = true;
    if (cache_) cache_->clear();
    return Napi::Number::New(info.Env(), -r);
  }

  /** Output over DMABUF: answered (kind 2, or an error) once what was queued has been played. */
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto* job = new WriteJob;
    job->id = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    int r = stream_->drain(job);
    if (r < 0) {
      dropJob(job);
      throw errnoError(env, -r, "drain", "stream");
    }
    return env.Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    StreamStats s = stream_->stats();
    auto pool = stream_->pool();
    Napi::Object o = Napi::Object::New(env);
    auto set = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
    set("delivered", static_cast<double>(s.delivered));
    set("copies", static_cast<double>(s.copies));
    set("bytes", static_cast<double>(s.bytes));
    set("timeouts", static_cast<double>(s.timeouts));
    set("written", static_cast<double>(s.written));
    set("cyclicRepeats", static_cast<double>(s.cyclicRepeats));
    set("handovers", static_cast<double>(s.handovers));
    set("threadCpuUs", static_cast<double>(s.threadCpuUs));
    set("poolBlocks", pool ? static_cast<double>(pool->count()) : 0);
    set("poolFree", pool ? static_cast<double>(pool->freeCount()) : 0);
    set("lent", pool ? static_cast<double>(pool->lentCount()) : 0);
    set("lentTotal", pool ? static_cast<double>(pool->lentTotal()) : 0);
    set("released", pool ? static_cast<double>(pool->releasedExplicitly()) : 0);
    set("finalized", pool ? static_cast<double>(pool->releasedByFinalizer()) : 0);
    o.Set("mode", Napi::String::New(env, stream_->usesDmabuf() ? "dmabuf" : "fileio"));
    DmabufStats ds = stream_->dmabufStats();
    set("inKernel", static_cast<double>(ds.inKernel));
    set("enqueued", static_cast<double>(ds.enqueued));
    set("completed", static_cast<double>(ds.completed));
    set("transferErrors", static_cast<double>(ds.errors));
    set("lostScans", static_cast<double>(ds.lostUnits));
    set("starved", static_cast<double>(ds.starved));
    set("lastTransferError", static_cast<double>(-ds.lastError));
    return o;
  }

  std::shared_ptr<Stream> stream_;
  std::shared_ptr<BufferCache> cache_;
  napi_env env_ = nullptr;
  bool hooked_ = false;
  bool closed_ = false;
};

// ---------------------------------------------------------------------------------------
// The test suite's entry: what lets a test prove zero copy. Not part of the interface an
// application sees: testHooks() refuses unless IIOKIT_TEST_HOOKS=1 is set when it is
// called (test/helpers/native-hooks.ts sets it).

/** Per-env data: the Stream constructor, to recognise a Stream handed to a hook. */
struct AddonData {
  Napi::FunctionReference streamClass;
};

StreamWrap* streamArg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* data = env.GetInstanceData<AddonData>();
  if (info.Length() < 1 || !info[0].IsObject() ||
      !info[0].As<Napi::Object>().InstanceOf(data->streamClass.Value()))
    throw Napi::TypeError::New(env, "stream must be a Stream");
  return StreamWrap::Unwrap(info[0].As<Napi::Object>());
}

/** Where a Buffer's bytes live: lets tests prove that a block aliases pool memory. */
Napi::Value AddressOf(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBuffer())
    throw Napi::TypeError::New(info.Env(), "buffer must be a Buffer");
  auto b = info[0].As<Napi::Buffer<uint8_t>>();
  return Napi::BigInt::New(info.Env(),
                           static_cast<uint64_t>(reinterpret_cast<uintptr_t>(b.Data())));
}

/** The address of every pool block of a started stream. */
Napi::Value BlockAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto pool = streamArg(info)->core()->pool();
  size_t n = pool ? pool->count() : 0;
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++)
    a.Set(static_cast<uint32_t>(i),
          Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(pool->data(i)))));
  return a;
}

/** Writes one byte into pool memory, for a test to see it through a Buffer. */
Napi::Value Poke(const Napi::CallbackInfo& info) {
  auto pool = streamArg(info)->core()->pool();
  int64_t idx = intArg(info, 1, "block", 0, kMaxInt);
  int64_t off = intArg(info, 2, "offset", 0, kMaxInt);
  int64_t val = intArg(info, 3, "value", 0, 255);
  if (!pool || static_cast<size_t>(idx) >= pool->count() ||
      static_cast<size_t>(off) >= pool->blockBytes())
    throw Napi::RangeError::New(info.Env(), "poke outside the pool");
  pool->data(static_cast<int>(idx))[off] = static_cast<uint8_t>(val);
  return info.Env().Undefined();
}

Napi::Value TestHooks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* on = ::getenv("IIOKIT_TEST_HOOKS");
  if (!on || std::string(on) != "1")
    throw Napi::Error::New(env, "testHooks() is the test suite's entry: set IIOKIT_TEST_HOOKS=1");
  Napi::Object o = Napi::Object::New(env);
  o.Set("addressOf", Napi::Function::New<AddressOf>(env, "addressOf"));
  o.Set("blockAddresses", Napi::Function::New<BlockAddresses>(env, "blockAddresses"));
  o.Set("poke", Napi::Function::New<Poke>(env, "poke"));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 3));
  exports.Set("open", Napi::Function::New<Open>(env, "open"));
  exports.Set("close", Napi::Function::New<Close>(env, "close"));
  exports.Set("getBufferFd", Napi::Function::New<GetBufferFd>(env, "getBufferFd"));
  exports.Set("getEventFd", Napi::Function::New<GetEventFd>(env, "getEventFd"));
  exports.Set("ioctls", Napi::Function::New<Ioctls>(env, "ioctls"));
  exports.Set("heapCheck", Napi::Function::New<HeapCheck>(env, "heapCheck"));
  exports.Set("selfTest", Napi::Function::New<SelfTest>(env, "selfTest"));
  Napi::Function stream = StreamWrap::Define(env);
  exports.Set("Stream", stream);
  auto* data = new AddonData;
  data->streamClass = Napi::Persistent(stream);
  env.SetInstanceData(data);
  exports.Set("testHooks", Napi::Function::New<TestHooks>(env, "testHooks"));
  return exports;
}

}  // namespace
}  // namespace iiokit

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return iiokit::Init(env, exports);
}

NODE_API_MODULE(iiokit, InitModule)

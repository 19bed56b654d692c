#include "stream_binding.h"

#include <errno.h>

#include <memory>
#include <string>
#include <vector>

#include "dmabuf.h"
#include "js_delivery.h"
#include "napi_args.h"
#include "pool.h"
#include "stream.h"

namespace iiokit {
namespace {

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
    cfg.readBurstBytes =
        static_cast<size_t>(intOption(env, o, "readBurstBytes", 0, 0, kMaxBlockBytes));
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
    // The env ends with the stream open (process exit, a Worker terminated): stop and join
    // the thread, close the fds. Jobs never started hold JS references, still valid here.
    for (WriteJob* job : self->stream_->close()) dropJob(job);
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
    auto* ctx = new TsfnContext;
    ctx->stream = stream_;
    // Unbounded queue: the thread must never block on JS (credit bounds what is queued).
    Tsfn tsfn = Tsfn::New(env, info[0].As<Napi::Function>(), "iiokit-stream", 0, 1, ctx,
                          [](Napi::Env, void*, TsfnContext* c) { TsfnContext::drop(c); });
    int r = stream_->start([tsfn, ctx](Delivery* d) mutable {
      bool last = d->kind == DeliveryKind::End;
      ctx->hold();  // for the CallJs this queues
      napi_status s = tsfn.NonBlockingCall(d);
      if (s != napi_ok) TsfnContext::drop(ctx);  // not queued: no CallJs will come
      if (last) {
        tsfn.Release();
        TsfnContext::drop(ctx);  // the thread's own hold: it hands nothing over after the End
      }
      return s == napi_ok;
    });
    if (r < 0) {
      TsfnContext::drop(ctx);  // no thread
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
    set("reads", static_cast<double>(s.reads));
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
// Test hooks that look inside a Stream (testHooks() in addon.cc hands them out only when
// IIOKIT_TEST_HOOKS=1).

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

}  // namespace

Napi::Function defineStreamClass(Napi::Env env) {
  Napi::Function stream = StreamWrap::Define(env);
  auto* data = new AddonData;
  data->streamClass = Napi::Persistent(stream);
  env.SetInstanceData(data);
  return stream;
}

void addStreamTestHooks(Napi::Env env, Napi::Object hooks) {
  hooks.Set("blockAddresses", Napi::Function::New<BlockAddresses>(env, "blockAddresses"));
  hooks.Set("poke", Napi::Function::New<Poke>(env, "poke"));
}

}  // namespace iiokit

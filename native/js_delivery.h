// How the streaming thread's deliveries become JS calls (the JS thread side of the
// thread-safe function): a block as an external Buffer over pool (or DMABUF) memory with a
// finalizer as the safety net, an error, a push written, the end. stream_binding.cc starts
// the thread-safe function; this file is what runs when it fires.
#pragma once

#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "pool.h"
#include "stream.h"

namespace iiokit {

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

/**
 * What CallJs needs beside the delivery, freed by whichever of its holders lets go last:
 * the thread-safe function (until its finalizer), the streaming thread (until its End was
 * handed over) and every call queued to CallJs (until CallJs has run). The finalizer alone
 * is not enough: when the env ends (a Worker terminated) Node runs it first and only then
 * passes what is still queued (the End at least) to CallJs, with this context, to dispose of.
 */
struct TsfnContext {
  std::shared_ptr<Stream> stream;
  std::shared_ptr<BufferCache> cache;
  std::atomic<int> holders{2};

  void hold() { holders.fetch_add(1, std::memory_order_relaxed); }
  /** One holder lets go; the last frees the context. Any thread. */
  static void drop(TsfnContext* c) {
    if (c->holders.fetch_sub(1, std::memory_order_acq_rel) == 1) delete c;
  }
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

/** Frees a job and its JS reference (JS thread). */
void dropJob(WriteJob* job);

/** One wake-up of the JS thread: a delivery, or a batch of them chained by `next`. */
void CallJs(Napi::Env env, Napi::Function cb, TsfnContext* ctx, Delivery* d);

using Tsfn = Napi::TypedThreadSafeFunction<TsfnContext, Delivery, CallJs>;

}  // namespace iiokit

#include "js_delivery.h"

#include <stdlib.h>

namespace iiokit {

void dropJob(WriteJob* job) {
  if (!job) return;
  delete static_cast<JobRef*>(job->ref);
  delete job;
}


namespace {

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

}  // namespace

void CallJs(Napi::Env env, Napi::Function cb, TsfnContext* ctx, Delivery* d) {
  if (env == nullptr || cb.IsEmpty()) {
    // The env is ending (the thread-safe function was finalized): free what never reached JS.
    Stream::dispose(ctx->stream->pool(), d);
  } else {
    while (d) {
      Delivery* next = d->next;
      d->next = nullptr;
      CallJsOne(env, cb, ctx, d);
      d = next;
    }
  }
  TsfnContext::drop(ctx);  // this call's hold
}

}  // namespace iiokit

// The JS face of the streaming core: the `Stream` class the addon exports (options checked,
// the thread started with a thread-safe function, credit, release, write, drain, cancel,
// close, detach, stats) and the test hooks that look inside one.
#pragma once

#include <napi.h>

namespace iiokit {

/** The Stream class of this env (kept in the env's instance data, for the test hooks). */
Napi::Function defineStreamClass(Napi::Env env);

/** Adds `blockAddresses(stream)` and `poke(stream, block, offset, value)` to testHooks(). */
void addStreamTestHooks(Napi::Env env, Napi::Object hooks);

}  // namespace iiokit

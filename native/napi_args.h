// Argument checks shared by the Node-API bindings (addon.cc, stream_binding.cc).
//
// Checked numbers. A JS number is a double: cast straight to an int or size_t, NaN, -1 or
// 1.5 become whatever the conversion makes of them (close(1.5) closed fd 1). Every numeric
// argument goes through here: a TypeError when it is not a number, a RangeError naming it
// when it is not an integer in its range.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace iiokit {

/** An Error carrying `errno` and `syscall`, as src/native/index.ts nativeError() reads it. */
Napi::Error errnoError(Napi::Env env, int err, const std::string& syscall, const std::string& what);

constexpr int64_t kMaxInt = 2147483647;
/** Largest block (and DMA-heap check) accepted: 1 GiB. */
constexpr int64_t kMaxBlockBytes = int64_t{1} << 30;
constexpr int64_t kMaxBlocks = 1024;
constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

/** `v` as an integer in [min, max]: TypeError when not a number, RangeError naming it otherwise. */
int64_t checkedInteger(Napi::Env env, const Napi::Value& v, const std::string& name, int64_t min,
                       int64_t max);
/** Argument `i` (undefined when absent), checked like checkedInteger. */
int64_t intArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min,
               int64_t max);
int fdArg(const Napi::CallbackInfo& info, size_t i, const char* name = "fd");
/** An option of an options object: `dflt` when absent (undefined), else checked. */
int64_t intOption(Napi::Env env, Napi::Object o, const char* key, int64_t dflt, int64_t min,
                  int64_t max);
/** A boolean option: false when absent, TypeError when not a boolean. */
bool flagOption(Napi::Env env, Napi::Object o, const char* key);

}  // namespace iiokit

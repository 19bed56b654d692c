#include "napi_args.h"

#include <string.h>

#include <cmath>
#include <cstdio>

namespace iiokit {

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

namespace {
std::string numberText(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char b[32];
  std::snprintf(b, sizeof b, "%.17g", d);
  return b;
}
}  // namespace

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

int fdArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return static_cast<int>(intArg(info, i, name, 0, kMaxInt));
}

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

}  // namespace iiokit

// The native module: syscalls and a block pool only. IIO policy lives in TypeScript.
#include <napi.h>

void RegisterSelfTestStub(Napi::Env env, Napi::Object exports);  // selftest_stub.cc (temporary)

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  RegisterSelfTestStub(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(iiokit, Init)

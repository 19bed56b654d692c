{
  "targets": [
    {
      "target_name": "iiokit",
      "sources": [
        "native/addon.cc",
        "native/dmabuf.cc",
        "native/dmabuf_stream.cc",
        "native/js_delivery.cc",
        "native/napi_args.cc",
        "native/pool.cc",
        "native/selftest.cc",
        "native/stream.cc",
        "native/stream_binding.cc",
        "native/stream_fileio.cc",
        "native/sys.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"],
      "ldflags": ["-pthread"]
    }
  ]
}

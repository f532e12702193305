{
  # The N-API addon: native/src/api/*.cpp linked against the core library built by native/Makefile
  # (native/build.mjs runs `make -C native lib` first). Extra link flags a backend needs (CUDA
  # runtime) come from native/out/link-flags.txt, written by the Makefile.
  "targets": [
    {
      "target_name": "dbt_native",
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('native/src/api').filter(f => f.endsWith('.cpp')).map(f => 'native/src/api/' + f).join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/src"
      ],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions"],
      "libraries": [
        "<(module_root_dir)/native/out/libdbtcore.a",
        "<!@(cat native/out/link-flags.txt)"
      ]
    }
  ]
}

{
  # The same addon as CMakeLists.txt (the primary build), for node-gyp and
  # @electron/rebuild. Sources come from native/sources.json, the one list.
  # With libjpeg's headers (apt libjpeg62-turbo-dev) JPEG files are decoded natively, as in
  # the CMake build; without them lib/ decodes with sharp.
  "variables": {
    "pif_libjpeg": "<!(node -p \"['/usr/include','/usr/local/include'].some(d=>require('fs').existsSync(d+'/jpeglib.h'))?1:0\")"
  },
  "targets": [
    {
      "target_name": "paddle_image_feature",
      "sources": [
        "<!@(node -p \"const s=require('./native/sources.json'); s.core.concat(s.engine, s.addon).join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-O3", "-fopenmp", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-fopenmp", "-fvisibility=hidden"],
      "ldflags": ["-fopenmp", "-Wl,--version-script=<(module_root_dir)/native/addon/exports.map"],
      "libraries": ["-ldnnl", "-fopenmp"],
      "conditions": [
        ["pif_libjpeg==1", {"defines": ["PIF_HAVE_LIBJPEG"], "libraries": ["-ljpeg"]}]
      ]
    }
  ]
}

{
  # One shared library that is both the Node-API addon and the SQLite loadable extension.
  # It compiles against better-sqlite3's bundled SQLite headers and links no SQLite of its own:
  # every SQLite call goes through the API table better-sqlite3 hands to the entry point.
  "targets": [
    {
      "target_name": "pagevault",
      "sources": ["src/native/pagevault.c"],
      "include_dirs": [
        "<!(node -p \"require('node:path').join(require('node:path').dirname(require.resolve('better-sqlite3/package.json')), 'deps', 'sqlite3')\")"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=c11", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Werror=implicit-function-declaration"],
      "cflags!": ["-fno-exceptions"],
      "xcode_settings": {
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "OTHER_CFLAGS": ["-std=c11", "-O2", "-Wall", "-Wextra"]
      }
    }
  ]
}

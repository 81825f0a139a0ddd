# Cross-compiling the addon for linux-arm64 (aarch64) on a Debian x86-64 host
# with Debian's cross toolchain (apt-get install g++-aarch64-linux-gnu) and
# multiarch arm64 libraries (dpkg --add-architecture arm64). Used by
# scripts/check-arm64.sh:
#   cmake-js build --out build-arm64 --arch arm64 \
#     --CDCMAKE_TOOLCHAIN_FILE=$PWD/cmake/toolchain-aarch64-linux-gnu.cmake \
#     --CDdnnl_DIR=<arm64 libdnnl-dev>/usr/lib/aarch64-linux-gnu/cmake/dnnl
# (cmake-js 8 takes --CD<name>=<value> as one word.) dnnl_DIR must name an
# arm64 oneDNN CMake config: Debian 12's libdnnl-dev cannot be installed for
# amd64 and arm64 at once (each ships its own dnnl_config.h), so the script
# unpacks the arm64 one into its scratch directory.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# No separate sysroot: the cross compiler brings its own libc and libstdc++
# (/usr/aarch64-linux-gnu), and with this library architecture find_library
# and find_package look in the multiarch directory /usr/lib/aarch64-linux-gnu,
# never in /usr/lib/x86_64-linux-gnu. Programs (node, which CMakeLists.txt asks
# for node-addon-api's include path) are the host's.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

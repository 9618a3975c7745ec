# Toolchain file for 64-bit ARM gateways (Debian arm64, aarch64-linux-gnu).
# Debian multiarch by default; -DEPORT_SYSROOT=/path for a vendor sysroot.
#   cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake
set(EPORT_CROSS_TRIPLET aarch64-linux-gnu)
set(EPORT_CROSS_PROCESSOR aarch64)
set(EPORT_CROSS_QEMU qemu-aarch64)
set(EPORT_CROSS_DEB_ARCH arm64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross-common.cmake)

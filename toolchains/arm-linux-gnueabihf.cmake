# Toolchain file for 32-bit ARM gateways (Debian armhf: ARMv7, hard float).
# Debian multiarch by default; -DEPORT_SYSROOT=/path for a vendor sysroot.
#   cmake -S . -B build-armhf -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-linux-gnueabihf.cmake
set(EPORT_CROSS_TRIPLET arm-linux-gnueabihf)
set(EPORT_CROSS_PROCESSOR arm)
set(EPORT_CROSS_QEMU qemu-arm)
set(EPORT_CROSS_DEB_ARCH armhf)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross-common.cmake)
# GCC notes every std::span/iterator passed by value that "changed in GCC 7.1"
# on ARM EABI: informational only (the whole program uses one compiler).
set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi")

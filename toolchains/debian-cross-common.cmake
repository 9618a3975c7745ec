# Shared body of the ARM toolchain files: a Debian multiarch cross build by
# default (target libraries from `apt-get install libfoo-dev:ARCH`), or a
# vendor sysroot (Yocto/Buildroot SDK, or one extracted from .debs) when
# EPORT_SYSROOT is given. See docs/cross-compiling.md.
#
# Inputs set by the per-architecture file before it includes this one:
#   EPORT_CROSS_TRIPLET    GNU triplet and Debian multiarch dir (aarch64-linux-gnu)
#   EPORT_CROSS_PROCESSOR  CMAKE_SYSTEM_PROCESSOR (aarch64, arm)
#   EPORT_CROSS_QEMU       qemu-user binary that runs target programs (qemu-aarch64)
#   EPORT_CROSS_DEB_ARCH   Debian architecture name (arm64, armhf)
# Knobs for the user (cmake -D... or the environment of the same name):
#   EPORT_SYSROOT      target root file system; unset: Debian multiarch on /
#   EPORT_CROSS_PREFIX compiler prefix; default "<triplet>-" (aarch64-linux-gnu-gcc)
#
# Toolchain files are read again for every try_compile(): everything here is
# derived from variables that CMAKE_TRY_COMPILE_PLATFORM_VARIABLES forwards.

list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EPORT_SYSROOT EPORT_CROSS_PREFIX)

foreach(_eport_knob EPORT_SYSROOT EPORT_CROSS_PREFIX)
  if(NOT DEFINED ${_eport_knob} AND DEFINED ENV{${_eport_knob}})
    set(${_eport_knob} "$ENV{${_eport_knob}}")
  endif()
endforeach()
if(NOT DEFINED EPORT_CROSS_PREFIX OR EPORT_CROSS_PREFIX STREQUAL "")
  set(EPORT_CROSS_PREFIX "${EPORT_CROSS_TRIPLET}-")
endif()

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${EPORT_CROSS_PROCESSOR})
set(CMAKE_C_COMPILER ${EPORT_CROSS_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${EPORT_CROSS_PREFIX}g++)
# For packaging (cmake/EportPackaging.cmake): the .deb architecture.
set(EPORT_DEB_ARCH ${EPORT_CROSS_DEB_ARCH})

# The build host's own library directories hold linkable but wrong-architecture
# libraries: FindOpenSSL, for one, picks the host's libcrypto from there unless
# it is told not to look (the link then fails).
cmake_host_system_information(RESULT _eport_host_proc QUERY OS_PLATFORM)
set(_eport_host_multiarch ${_eport_host_proc}-linux-gnu)   # x86_64-linux-gnu
list(APPEND CMAKE_IGNORE_PATH
  /usr/lib/${_eport_host_multiarch}
  /lib/${_eport_host_multiarch}
  /usr/lib/${_eport_host_multiarch}/cmake
  /usr/local/lib)

if(EPORT_SYSROOT)
  # Vendor or extracted sysroot: headers, libraries, pkg-config files and
  # CMake package configs are taken from it only; programs (flatc, pkg-config,
  # qemu) from the build host.
  get_filename_component(EPORT_SYSROOT "${EPORT_SYSROOT}" ABSOLUTE)
  if(NOT IS_DIRECTORY "${EPORT_SYSROOT}/usr")
    message(FATAL_ERROR "EPORT_SYSROOT=${EPORT_SYSROOT} has no usr/ directory")
  endif()
  set(CMAKE_SYSROOT "${EPORT_SYSROOT}")
  # Debian-style sysroots (mmdebstrap, Debian/Ubuntu images) use multiarch
  # library directories; Yocto and Buildroot sysroots use plain usr/lib.
  if(IS_DIRECTORY "${EPORT_SYSROOT}/usr/lib/${EPORT_CROSS_TRIPLET}")
    set(CMAKE_LIBRARY_ARCHITECTURE ${EPORT_CROSS_TRIPLET})
  endif()
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "${EPORT_SYSROOT}")
  set(ENV{PKG_CONFIG_LIBDIR}
    "${EPORT_SYSROOT}/usr/lib/${EPORT_CROSS_TRIPLET}/pkgconfig:${EPORT_SYSROOT}/usr/lib/pkgconfig:${EPORT_SYSROOT}/usr/share/pkgconfig")
  set(CMAKE_CROSSCOMPILING_EMULATOR ${EPORT_CROSS_QEMU};-L;${EPORT_SYSROOT})
else()
  # Debian multiarch: the target's -dev packages live beside the host's under
  # /usr/lib/<triplet>; no sysroot, no root-path prefixing.
  set(CMAKE_LIBRARY_ARCHITECTURE ${EPORT_CROSS_TRIPLET})
  unset(ENV{PKG_CONFIG_SYSROOT_DIR})
  set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${EPORT_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
  # -L / : the dynamic loader and libc of the multiarch packages. Never
  # -L /usr/<triplet> (the cross toolchain's own libc): with it every program
  # that starts a thread spins forever in its first pthread_create.
  set(CMAKE_CROSSCOMPILING_EMULATOR ${EPORT_CROSS_QEMU};-L;/)
endif()

# Programs (flatc above all: code generation runs on the build host) are
# never looked up in the target root; everything else only there. Without a
# sysroot these modes change nothing: CMake then searches / with the target's
# CMAKE_LIBRARY_ARCHITECTURE, and the ignore list above keeps the host's out.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

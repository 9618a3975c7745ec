#!/usr/bin/env bash
# Builds eport-edge for one gateway architecture and packages it:
# build-ARCH/ (programs and unit tests) and build-ARCH/packages/eport-agent_<v>_ARCH.deb.
# arm64/armhf: Debian multiarch cross build with toolchains/*.cmake, installing
# what is missing (dpkg --add-architecture, crossbuild-essential-ARCH, qemu-user,
# the :ARCH -dev packages). amd64: the same release build natively.
# See docs/cross-compiling.md.
#
# Usage: scripts/cross-build.sh arm64|armhf|amd64 [--sysroot DIR] [--install-only | --no-install] [--no-package] [--no-tests]
#   --sysroot DIR  build against a vendor or extracted sysroot instead of multiarch
#   --install-only install what the build needs (apt, or the sysroot fallback), build nothing
#   --no-install   never call apt-get (fail if something is missing)
#   --no-package   skip cpack
#   --no-tests     build the packaged programs only, not the unit test programs
# Environment: EPORT_CROSS_TARGETS="t1 t2" overrides the targets built.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

usage() { echo "usage: $0 arm64|armhf|amd64 [--sysroot DIR] [--install-only | --no-install] [--no-package] [--no-tests]" >&2; exit 64; }
(($#)) || usage
ARCH=$1; shift
SYSROOT="" INSTALL=1 INSTALL_ONLY=0 PACKAGE=1 TESTS=1
while (($#)); do
  case "$1" in
    --sysroot) SYSROOT=$(realpath "$2"); shift 2 ;;
    --install-only) INSTALL_ONLY=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    --no-package) PACKAGE=0; shift ;;
    --no-tests) TESTS=0; shift ;;
    *) usage ;;
  esac
done
if ((INSTALL_ONLY && !INSTALL)); then usage; fi

NATIVE_ARCH=$(dpkg --print-architecture)
case "$ARCH" in
  arm64) TRIPLET=aarch64-linux-gnu TOOLCHAIN=toolchains/aarch64-linux-gnu.cmake ;;
  armhf) TRIPLET=arm-linux-gnueabihf TOOLCHAIN=toolchains/arm-linux-gnueabihf.cmake ;;
  amd64) TRIPLET=x86_64-linux-gnu TOOLCHAIN="" ;;
  *) usage ;;
esac
if [[ "$ARCH" == "$NATIVE_ARCH" ]]; then TOOLCHAIN=""; fi
BUILD_DIR=$ROOT/build-$ARCH
log() { echo "cross-build[$ARCH]: $*" >&2; }

# Target libraries: what the agent links (libgps-dev: the gateway's own
# position from gpsd; the build skips eport::gnss_gpsd without it).
LIBS=(libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev libsqlite3-dev
      libflatbuffers-dev libtomlplusplus-dev libzstd-dev libgps-dev)
# Host tools (amd64): the compiler, qemu, the host flatc, packaging tools.
HOST_PKGS=(cmake ninja-build pkg-config flatbuffers-compiler catch2 dpkg-dev file)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
apt_install() {
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "$@" >/dev/null
}
# apt-get update for the native and the target architecture only: a broken
# index of any other architecture then cannot make apt drop the target's
# security updates (apt discards every new index of a suite when one of them
# fails, and Multi-Arch: same libraries must match the host's version exactly).
apt_update() {
  $SUDO apt-get update -qq -o DPkg::Lock::Timeout=300 \
    -o APT::Architectures::="$NATIVE_ARCH" -o APT::Architectures::="$ARCH" || true
}

# A Debian sysroot extracted from the target's .debs (no dpkg database, no
# maintainer scripts): the fallback when the multiarch packages cannot be
# co-installed on this host, e.g. a mirror whose index for ARCH is broken.
make_debian_sysroot() {
  local dir=$ROOT/build-$ARCH-sysroot
  if [[ -f $dir/.complete ]]; then echo "$dir"; return; fi
  [[ -n $(missing_pkgs mmdebstrap) ]] && apt_install mmdebstrap
  local suite mirror include
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  mirror=http://deb.debian.org/debian
  include=$(IFS=,; echo "libc6-dev,libstdc++-12-dev,catch2,${LIBS[*]}")
  rm -rf "$dir"
  log "building a $suite sysroot for $ARCH in $dir (mmdebstrap, extract only)"
  mmdebstrap --quiet --variant=extract --mode=root --architectures="$ARCH" --include="$include" \
    "$suite" "$dir" "deb $mirror $suite main" "deb $mirror $suite-updates main" >&2
  # qemu -L DIR looks up every path in DIR first: the device nodes mmdebstrap
  # made there (unusable on a nodev file system) would hide the host's
  # /dev/ptmx, /dev/null, ... from the programs under test.
  rm -rf "$dir/dev"
  touch "$dir/.complete"
  echo "$dir"
}

# --- 1. what the build needs ---------------------------------------------------
if [[ -z "$TOOLCHAIN" ]]; then
  want=("${HOST_PKGS[@]}" build-essential "${LIBS[@]}")
else
  want=("${HOST_PKGS[@]}" "crossbuild-essential-$ARCH" qemu-user)
  [[ -z "$SYSROOT" ]] && want+=("${LIBS[@]/%/:$ARCH}")
fi
mapfile -t missing < <(missing_pkgs "${want[@]}")
# A sysroot an earlier run made (the fallback below, e.g. by --install-only)
# stands in for the :ARCH packages it replaced.
if ((${#missing[@]})) && [[ -n "$TOOLCHAIN" && -z "$SYSROOT" && -f $ROOT/build-$ARCH-sysroot/.complete ]] &&
   [[ -z $(missing_pkgs "${HOST_PKGS[@]}" "crossbuild-essential-$ARCH" qemu-user) ]]; then
  SYSROOT=$ROOT/build-$ARCH-sysroot
  missing=()
  log "using the sysroot an earlier run made: $SYSROOT"
fi
if ((${#missing[@]})); then
  ((INSTALL)) || { log "missing: ${missing[*]} (and --no-install given)"; exit 1; }
  log "installing ${missing[*]}"
  added_arch=0
  if [[ -n "$TOOLCHAIN" ]] && ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
    $SUDO dpkg --add-architecture "$ARCH"
    added_arch=1
  fi
  apt_update
  if ! apt_install "${missing[@]}"; then
    [[ -n "$TOOLCHAIN" && -z "$SYSROOT" ]] || { log "apt-get install failed"; exit 1; }
    log "the :$ARCH packages cannot be installed beside the host's; using a sysroot instead"
    # Leave the machine as it was: with ARCH enabled and its index broken,
    # every later plain `apt-get update` (scripts/setup.sh) would fail.
    if ((added_arch)); then $SUDO dpkg --remove-architecture "$ARCH" || true; fi
    mapfile -t missing < <(missing_pkgs "${HOST_PKGS[@]}" "crossbuild-essential-$ARCH" qemu-user)
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
    SYSROOT=$(make_debian_sysroot)
  fi
fi

if ((INSTALL_ONLY)); then log "everything the build needs is installed"; exit 0; fi

# --- 2. configure --------------------------------------------------------------
# Debian's release flags (hardening: fortify, stack protector, relro, bindnow),
# as dpkg-buildflags gives them for the target architecture, without -g: the
# package ships stripped programs, and debug info costs a quarter of the
# compile time here.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all DEB_HOST_ARCH=$ARCH
export DEB_CFLAGS_MAINT_STRIP=-g DEB_CXXFLAGS_MAINT_STRIP=-g
CFLAGS=$(dpkg-buildflags --get CFLAGS) CXXFLAGS=$(dpkg-buildflags --get CXXFLAGS)
CPPFLAGS=$(dpkg-buildflags --get CPPFLAGS) LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
unset DEB_HOST_ARCH DEB_BUILD_MAINT_OPTIONS DEB_CFLAGS_MAINT_STRIP DEB_CXXFLAGS_MAINT_STRIP
cmake_args=(-S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_C_FLAGS_RELEASE=-DNDEBUG -DCMAKE_CXX_FLAGS_RELEASE=-DNDEBUG
  -DEPORT_WERROR=ON -DCMAKE_INSTALL_PREFIX=/usr
  "-DCMAKE_C_FLAGS=$CPPFLAGS $CFLAGS" "-DCMAKE_CXX_FLAGS=$CPPFLAGS $CXXFLAGS"
  "-DCMAKE_EXE_LINKER_FLAGS=$LDFLAGS")
[[ -n "$TOOLCHAIN" ]] && cmake_args+=("-DCMAKE_TOOLCHAIN_FILE=$ROOT/$TOOLCHAIN")
[[ -n "$SYSROOT" ]] && cmake_args+=("-DEPORT_SYSROOT=$SYSROOT")
mkdir -p "$BUILD_DIR"
log "configuring $BUILD_DIR${SYSROOT:+ (sysroot $SYSROOT)}"
cmake "${cmake_args[@]}" >"$BUILD_DIR/eport-configure.log" 2>&1 || { cat "$BUILD_DIR/eport-configure.log" >&2; exit 1; }

# flatc generates code, so it must be the build host's own.
flatc=$(sed -n 's/^FLATC_EXECUTABLE:FILEPATH=//p' "$BUILD_DIR/CMakeCache.txt")
"$flatc" --version >/dev/null 2>&1 || { log "FLATC_EXECUTABLE=$flatc does not run on this host"; exit 1; }

# --- 3. build ------------------------------------------------------------------
# Only what the package installs and the unit tests: no fuzzers, benchmarks or
# corpus tools. The installed files are listed in the generated install scripts.
if [[ -n "${EPORT_CROSS_TARGETS:-}" ]]; then
  read -r -a targets <<<"$EPORT_CROSS_TARGETS"
else
  mapfile -t targets < <(grep -rhoE 'TYPE (EXECUTABLE|SHARED_LIBRARY|STATIC_LIBRARY)[^)]* FILES "[^"]+"' \
      --include=cmake_install.cmake "$BUILD_DIR" | sed -E 's/.* FILES "([^"]+)".*/\1/' |
    sed "s|^$BUILD_DIR/||" | sort -u)
  test_targets=(eport_unit_tests epb_tests)
  ((TESTS)) || test_targets=()
  for t in "${test_targets[@]}"; do
    ninja -C "$BUILD_DIR" -t query "$t" >/dev/null 2>&1 || continue
    # Debian's catch2 is an amd64-only package whose libCatch2WithMain.a is
    # built for the build host: a cross test linking it cannot link.
    if [[ -n "$TOOLCHAIN" && -z "$SYSROOT" ]] &&
       ninja -C "$BUILD_DIR" -t commands "$t" 2>/dev/null | tail -n 1 | grep -q 'libCatch2WithMain\.a'; then
      log "skipping $t: it links Catch2::Catch2WithMain, which Debian builds for the host only (give it its own main.cpp)"
      continue
    fi
    targets+=("$t")
  done
fi
log "building ${targets[*]}"
ninja -C "$BUILD_DIR" "${targets[@]}" >"$BUILD_DIR/eport-build.log" 2>&1 || { tail -n 60 "$BUILD_DIR/eport-build.log" >&2; exit 1; }
file -b "$BUILD_DIR/agent/app/eport-agent" | cut -d, -f1-2 | sed "s/^/cross-build[$ARCH]: eport-agent: /" >&2

# --- 4. package ----------------------------------------------------------------
if ((PACKAGE)); then
  (cd "$BUILD_DIR" && cpack >"$BUILD_DIR/eport-cpack.log" 2>&1) || { cat "$BUILD_DIR/eport-cpack.log" >&2; exit 1; }
  deb=$(ls "$BUILD_DIR"/packages/eport-agent_*_"$ARCH".deb)
  log "package $deb"
  log "Depends: $(dpkg-deb -f "$deb" Depends)"
fi

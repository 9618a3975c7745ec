#!/bin/bash
# test_kit.sh MODE BUILD_DIR WORK_DIR SOURCE_DIR MAKE_FIXTURES [CPACK]: the consumer kit
# installed the way a service gets it, never from the source tree.
#   cpp     libeport-codec-dev into a DESTDIR; examples/cpp/decode_envelope.cpp built against
#           it with g++ + pkg-config and with CMake find_package(eport-codec); both decode the
#           payload of every schema version 1.0..1.5 to eport-tail's lines, and refuse a damaged one
#   python  python3-eport into a DESTDIR; tests/kit/decode_fixtures.py decodes the same payloads
#           with it (its build-time decoder, no flatc), and runs its other modules
#   debs    the kit's two .debs (CPackKitConfig.cmake): names, control fields, files, the example
#           built against the unpacked -dev package; a plain
#           install (what the eport-agent .deb holds) contains none of the kit's files, nor
#           eport-ingest's (its .deb: test_ingest_deb.sh)
# Exit 0 pass, 1 fail, 77 skip (a tool or Debian package missing, named).
set -euo pipefail
mode=$1 build=$2 work=$3 src=$4 make_fixtures=$5 cpack=${6:-cpack}
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work"
mkdir -p "$work/fixtures"
"$make_fixtures" "$work/fixtures"
root=$work/root

case $mode in
cpp)
  command -v g++ >/dev/null || skip "needs g++"
  command -v pkg-config >/dev/null || skip "needs pkg-config (apt-get install pkgconf)"
  DESTDIR=$root cmake --install "$build" --component libeport-codec-dev >/dev/null
  pcdir=$(dirname "$(find "$root" -name eport-codec.pc)")
  [[ -f $pcdir/eport-codec.pc ]] || fail "no eport-codec.pc installed"
  flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs eport-codec)
  echo "pkg-config --cflags --libs eport-codec: $flags"
  [[ $flags == *"-I$root/"* && $flags == *"-L$root/"* ]] || fail "pkg-config points outside the install: $flags"
  g++ -std=c++20 -Wall -Wextra -o "$work/decode_pc" "$src/examples/cpp/decode_envelope.cpp" $flags
  cmake -S "$src/tests/kit/cmake-consumer" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$root/usr" \
    -DEXAMPLE="$src/examples/cpp/decode_envelope.cpp" -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log"; fail "find_package(eport-codec) against the install"; }
  cmake --build "$work/cmake-build" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "cmake build"; }
  grep -q "$root" "$work/cmake-build/CMakeCache.txt" || fail "eport-codec not found in the install"
  for bin in "$work/decode_pc" "$work/cmake-build/decode_envelope"; do
    for v in 1.0 1.1 1.2 1.3 1.4 1.5; do
      "$bin" "$work/fixtures/schema-$v.ept" >"$work/out" 2>"$work/err" || { cat "$work/err"; fail "$bin schema $v"; }
      cmp -s "$work/out" "$work/fixtures/schema-$v.jsonl" ||
        { diff "$work/fixtures/schema-$v.jsonl" "$work/out" || true; fail "$bin: schema $v differs"; }
      echo "$(basename "$bin") schema $v: $(wc -l <"$work/out") readings as eport-tail prints them ($(cat "$work/err"))"
    done
    head -c 40 "$work/fixtures/schema-1.0.ept" >"$work/short.ept"
    if "$bin" "$work/short.ept" >/dev/null 2>"$work/err"; then fail "$bin accepted a truncated envelope"; fi
    echo "$(basename "$bin") refuses a truncated envelope: $(cat "$work/err")"
  done
  ;;
python)
  [[ -x /usr/bin/python3 ]] || skip "needs /usr/bin/python3"
  DESTDIR=$root cmake --install "$build" --component python3-eport >/dev/null
  dist=$root/usr/lib/python3/dist-packages
  [[ -f $dist/eport/telemetry/v1/Envelope.py ]] || fail "the generated decoder is not installed"
  [[ ! -e $src/consumers/python/eport/telemetry ]] || fail "generated code in the source tree"
  # -I: neither PYTHONPATH nor the source tree; flatc off PATH: the build-time decoder only.
  PATH=/usr/bin/nonexistent /usr/bin/python3 -I "$src/tests/kit/decode_fixtures.py" "$dist" "$work/fixtures"
  # Envelope v2 (the committed seeds of fuzz_envelope_v2) with the installed dictionary: the
  # lines the C++ codec prints for them (tests/data/envelope_v2, as integration.python_v2 checks).
  [[ -f $dist/eport/eport_v2_dict_1.zdict ]] || fail "the v2 zstd dictionary is not installed beside the package"
  PATH=/usr/bin/nonexistent /usr/bin/python3 -I - "$dist" "$src" <<'EOF' || fail "envelope v2 through the installed package"
import os, sys
dist, src = sys.argv[1], sys.argv[2]
sys.path.insert(0, dist)
from eport import decode
assert decode.V2_DICTIONARY.startswith(dist), f"the dictionary comes from {decode.V2_DICTIONARY}"
codec = decode.load_codec()
corpus = os.path.join(src, "agent", "codec", "fuzz", "corpus", "envelope_v2")
for name in ("every_kind.ept2.zst", "mix_50.ept2.zst"):
    header, readings, problems = codec.decode_payload(open(os.path.join(corpus, name), "rb").read(),
                                                      "eport/v1/cnsha/gw-01/data/telemetry")
    got = [decode.json_line(header)] + [decode.json_line(r) for r in readings]
    want = open(os.path.join(src, "tests", "data", "envelope_v2", name + ".jsonl"), "rb").read().splitlines()
    assert not problems and got == want, f"{name}: the installed package prints other lines than the C++ codec"
    print(f"installed package, envelope v2 {name}: {len(readings)} readings as the C++ codec prints them")
EOF
  # docs/consuming.md section 12's program, as printed there, against the installed package.
  awk '/<!-- check: kit_python_example -->/{f=1; next} f && /^```python/{p=1; next} p && /^```/{exit} p' \
    "$src/docs/consuming.md" >"$work/readings.py"
  [[ -s $work/readings.py ]] || fail "no kit_python_example block in docs/consuming.md"
  PYTHONPATH=$dist PATH=/usr/bin/nonexistent /usr/bin/python3 "$work/readings.py" "$work/fixtures/schema-1.1.ept" \
    >"$work/example.out" || fail "the documented program failed"
  head -n 4 "$work/example.out" | cmp -s - "$work/fixtures/schema-1.1.jsonl" || fail "the documented program's lines differ"
  grep -q "'declared_gaps': \[(1, 9007199254740991, 'expired'), (120, 138, 'flash_full'), (198, 204, 'unit_reset')\]" \
    "$work/example.out" || fail "the documented program's completeness differs"
  grep -q '"iotEventType": "DOOR_CLOSED"' "$work/example.out" || fail "the documented program's DCSA event differs"
  echo "docs/consuming.md section 12's program prints what the section says"
  ;;
debs)
  command -v dpkg-deb >/dev/null || skip "needs dpkg-deb"
  (cd "$work" && "$cpack" --config "$build/CPackKitConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1) ||
    { cat "$work/cpack.log"; fail "cpack --config CPackKitConfig.cmake"; }
  py=$(ls "$work"/out/python3-eport_*_all.deb) || fail "no python3-eport_*_all.deb"
  dev=$(ls "$work"/out/libeport-codec-dev_*_*.deb) || fail "no libeport-codec-dev .deb"
  [[ $(dpkg-deb -f "$py" Depends) == "python3, python3-flatbuffers, python3-zstandard" ]] || fail "python3-eport Depends"
  [[ $(dpkg-deb -f "$dev" Depends) == *libflatbuffers-dev* ]] || fail "libeport-codec-dev Depends"
  dpkg-deb -c "$py" >"$work/py.list"
  dpkg-deb -c "$dev" >"$work/dev.list"
  for f in ./usr/lib/python3/dist-packages/eport/decode.py ./usr/lib/python3/dist-packages/eport/verify.py \
           ./usr/lib/python3/dist-packages/eport/dcsa.py ./usr/lib/python3/dist-packages/eport/telemetry/v1/Envelope.py; do
    grep -q " $f\$" "$work/py.list" || fail "python3-eport lacks $f"
  done
  for f in eport/codec/codec.h eport/model/reading.h eport/json/json.h eport/schema/telemetry_generated.h \
           libeport_codec.a pkgconfig/eport-codec.pc cmake/eport-codec/eport-codec-config.cmake; do
    grep -q "/$f\$" "$work/dev.list" || fail "libeport-codec-dev lacks $f"
  done
  echo "$(basename "$py"): $(wc -l <"$work/py.list") entries; $(basename "$dev"): $(wc -l <"$work/dev.list") entries"
  # The stripped libraries of the .deb still link: the example against its unpacked files.
  if command -v g++ >/dev/null && command -v pkg-config >/dev/null; then
    dpkg-deb -x "$dev" "$work/unpacked"
    pcdir=$(dirname "$(find "$work/unpacked" -name eport-codec.pc)")
    g++ -std=c++20 -o "$work/decode_deb" "$src/examples/cpp/decode_envelope.cpp" \
      $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs eport-codec) || fail "the example against the .deb's files"
    "$work/decode_deb" "$work/fixtures/schema-1.5.ept" 2>/dev/null | cmp -s - "$work/fixtures/schema-1.5.jsonl" ||
      fail "the example built from the .deb's files decodes differently"
    echo "the example links against the .deb's stripped libraries and decodes schema 1.5"
  fi
  DESTDIR=$work/plain cmake --install "$build" >/dev/null
  if find "$work/plain" \( -name 'libeport_codec.a' -o -name 'eport-codec.pc' -o -path '*dist-packages*' \
                           -o -name 'eport-ingest*' -o -name 'eport_ingest' \) | grep .; then
    fail "a plain install (the eport-agent .deb) holds kit files"
  fi
  echo "a plain install holds none of the kit's files"
  ;;
*) fail "unknown mode $mode" ;;
esac
echo PASSED

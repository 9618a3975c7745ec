// Writes the fuzzer's seed corpus (tests/corpus): one valid frame per sample
// message plus two short multi-frame streams (a resync 0x00, garbage). Run
// `epb_gen_corpus firmware-bridge/tests/corpus` after changing the samples.
#include <cstdio>
#include <string>

#include "epb_test_support.hpp"

static bool write_file(const std::string &path, const epbt::Bytes &b) {
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  bool ok = std::fwrite(b.data(), 1, b.size(), f) == b.size();
  return std::fclose(f) == 0 && ok;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  for (const auto &s : epbt::samples()) {
    if (s.sealed_by) continue;  // decodes only with the session key: not a seed
    epbt::Bytes frame = epbt::encode(s.msg);
    if (frame.empty() || !write_file(dir + "/" + s.name + ".bin", frame)) {
      std::fprintf(stderr, "cannot write %s\n", s.name);
      return 1;
    }
  }
  // A resync 0x00, then PING, PONG and ACK back to back.
  epbt::Bytes stream{0x00};
  for (const auto &m : {epbt::ping(EPB_MSG_PING, 7), epbt::ping(EPB_MSG_PONG, 7),
                        epbt::ack(42)}) {
    epbt::Bytes f = epbt::encode(m);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  // Garbage closed by a 0x00, then a DOOR reading.
  epbt::Bytes garbage{0x47, 0x41, 0x52, 0x42, 0x00};
  epbt::Bytes door = epbt::encode(epbt::door(9, 1718000000000ull, 1));
  garbage.insert(garbage.end(), door.begin(), door.end());
  if (!write_file(dir + "/stream_ping_pong_ack.bin", stream) ||
      !write_file(dir + "/stream_garbage_then_door.bin", garbage)) {
    std::fprintf(stderr, "cannot write streams\n");
    return 1;
  }
  return 0;
}

// decode_envelope: the worked example of the C++ consumer kit (libeport-codec-dev,
// docs/consuming.md). It reads one payload as it came off MQTT (a FlatBuffers envelope
// of schema/telemetry.fbs, zstd-compressed or not, any schema version 1.0..1.4), checks
// and decodes it with eport::codec, and prints one JSON line per reading, the bytes
// eport-tail prints. Build it against the installed kit:
//   g++ -std=c++20 decode_envelope.cpp $(pkg-config --cflags --libs eport-codec)
// or with CMake: find_package(eport-codec) and target_link_libraries(... eport::codec).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include <eport/codec/codec.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: decode_envelope PAYLOAD_FILE\n";
    return 64;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<std::uint8_t> payload{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!in.eof() && in.fail()) {
    std::cerr << "decode_envelope: cannot read " << argv[1] << "\n";
    return 66;
  }
  eport::codec::DecodeLimits limits;  // the defaults: 4 MiB, 100000 readings, 32 MiB decoded
  auto envelope = eport::codec::decode_payload(payload, limits);
  if (!envelope.ok()) {  // refused: the error says what failed (verification, a limit, ...)
    std::cerr << "decode_envelope: " << argv[1] << ": " << envelope.error() << "\n";
    return 1;
  }
  for (const auto& reading : envelope->readings) std::cout << eport::codec::reading_to_json(reading) << "\n";
  std::cerr << eport::codec::envelope_header_to_json(envelope->header) << " readings="
            << envelope->readings.size() << " skipped_unknown=" << envelope->skipped_unknown << "\n";
  return 0;
}

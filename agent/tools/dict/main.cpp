// eport-v2-dict: (re)builds the zstd dictionary of envelope v2,
// schema/eport_v2_dict_1.zdict, a protocol constant: trained on v2 envelopes
// of the standard mix (eport-sim's generator) of other units, another seed
// and other site and gateway ids than eport-wire-bench measures, so that the
// bench's figures are not measured on the training set. Deterministic: the
// same libzstd gives the same bytes, which ctest checks (codec.v2_dictionary_regenerates).
// Usage: eport-v2-dict OUT.zdict | eport-v2-dict --check COMMITTED.zdict
#include <zdict.h>
#include <zstd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "eport/codec/codec.h"
#include "fleet.h"

namespace {

using namespace eport;

constexpr std::size_t kDictBytes = 16 * 1024;
// Envelope sizes the samples cycle through: lone readings, quiet and busy gateways.
constexpr std::size_t kSizes[] = {1, 1, 1, 1, 2, 3, 5, 10, 10, 20, 50, 100, 500};
constexpr const char* kSites[] = {"nlrtm", "sgsin", "deham", "uslgb", "krpus", "aejea"};

std::vector<std::uint8_t> build() {
  std::vector<std::uint8_t> samples;
  std::vector<std::size_t> sizes;
  codec::EnvelopeEncoderV2 enc;
  std::uint64_t envelope_seq = 1;
  for (int site = 0; site < 6; ++site) {
    auto mix = sim::standard_mix(40, 60, /*seed=*/2 + static_cast<std::uint64_t>(site), /*first_unit=*/1000 + site * 40,
                                 1794000000000ull + static_cast<std::uint64_t>(site) * 86400000ull);
    char gw[32];
    std::snprintf(gw, sizeof gw, "gw-%s-%02d", kSites[site], site + 1);
    // Per class, as the publisher batches them.
    for (int p = model::kPriorityCount - 1; p >= 0; --p) {
      std::vector<model::Reading> of_class;
      for (const auto& r : mix)
        if (model::default_priority(r) == static_cast<model::Priority>(p)) of_class.push_back(r);
      std::size_t at = 0, k = 0;
      while (at < of_class.size()) {
        std::size_t n = std::min(kSizes[k++ % std::size(kSizes)], of_class.size() - at);
        std::span<const model::Reading> batch(of_class.data() + at, n);
        at += n;
        codec::EnvelopeHeader h{kSites[site], gw, envelope_seq++ * 7919, batch.back().time_utc_ms + 40 + k % 90,
                                static_cast<model::Priority>(p)};
        auto bytes = enc.encode(h, batch);
        samples.insert(samples.end(), bytes.begin(), bytes.end());
        sizes.push_back(bytes.size());
      }
    }
  }
  std::vector<std::uint8_t> trained(kDictBytes);
  std::size_t n = ZDICT_trainFromBuffer(trained.data(), trained.size(), samples.data(), sizes.data(),
                                        static_cast<unsigned>(sizes.size()));
  if (ZDICT_isError(n)) {
    std::fprintf(stderr, "eport-v2-dict: training failed: %s\n", ZDICT_getErrorName(n));
    return {};
  }
  // Its content again, under the protocol's dictionary id.
  std::size_t header = ZDICT_getDictHeaderSize(trained.data(), n);
  if (ZDICT_isError(header)) return {};
  std::vector<std::uint8_t> dict(kDictBytes);
  ZDICT_params_t params{};
  params.compressionLevel = 3;
  params.dictID = codec::kV2DictionaryId;
  std::size_t m = ZDICT_finalizeDictionary(dict.data(), dict.size(), trained.data() + header, n - header,
                                           samples.data(), sizes.data(), static_cast<unsigned>(sizes.size()), params);
  if (ZDICT_isError(m)) {
    std::fprintf(stderr, "eport-v2-dict: finalizing failed: %s\n", ZDICT_getErrorName(m));
    return {};
  }
  dict.resize(m);
  std::fprintf(stderr, "eport-v2-dict: %zu samples, %zu bytes; dictionary %zu bytes, id %u\n", sizes.size(),
               samples.size(), dict.size(), ZDICT_getDictID(dict.data(), dict.size()));
  return dict;
}

}  // namespace

int main(int argc, char** argv) {
  bool check = argc == 3 && std::strcmp(argv[1], "--check") == 0;
  if (argc != 2 && !check) {
    std::fprintf(stderr, "usage: eport-v2-dict OUT.zdict | eport-v2-dict --check COMMITTED.zdict\n");
    return 2;
  }
  auto dict = build();
  if (dict.empty()) return 1;
  const char* path = argv[argc - 1];
  if (check) {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::uint8_t> committed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (committed != dict) {
      std::fprintf(stderr, "eport-v2-dict: %s (%zu bytes) is not what this tool builds (%zu bytes)\n", path,
                   committed.size(), dict.size());
      return 1;
    }
    std::printf("eport-v2-dict: %s is the dictionary this tool builds (id %u)\n", path, codec::kV2DictionaryId);
    return 0;
  }
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(dict.data()), static_cast<std::streamsize>(dict.size()));
  return out ? 0 : 1;
}

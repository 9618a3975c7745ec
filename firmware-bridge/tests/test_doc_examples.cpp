// Keeps docs/firmware-bridge.md and tests/corpus honest: every worked example
// in the doc (<!-- epb-example: NAME --> + a code block of hex) must equal the
// encoder's bytes for sample NAME, and every seed-corpus file must decode.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "epb_test_support.hpp"

using namespace epbt;

namespace {

struct DocExample {
  Bytes body, frame;
};

// Parses every "<!-- epb-example: NAME -->" and the fenced block after it:
// hex bytes following "body:" and "frame:" labels.
std::map<std::string, DocExample> doc_examples() {
  std::ifstream in(EPB_DOC_PATH);
  REQUIRE(in.good());
  std::map<std::string, DocExample> out;
  const std::string marker = "<!-- epb-example: ";
  std::string line, name;
  enum { OUTSIDE, BEFORE_BLOCK, IN_BLOCK } state = OUTSIDE;
  Bytes *target = nullptr;
  while (std::getline(in, line)) {
    if (state == OUTSIDE) {
      auto at = line.find(marker);
      if (at == std::string::npos) continue;
      auto end = line.find(" -->", at);
      REQUIRE(end != std::string::npos);
      name = line.substr(at + marker.size(), end - at - marker.size());
      REQUIRE(out.count(name) == 0);
      out[name];
      state = BEFORE_BLOCK;
    } else if (state == BEFORE_BLOCK) {
      if (line.rfind("```", 0) == 0) state = IN_BLOCK;
    } else if (line.rfind("```", 0) == 0) {
      state = OUTSIDE;
      target = nullptr;
    } else {
      std::istringstream words(line);
      std::string w;
      while (words >> w) {
        if (w == "body:") {
          target = &out[name].body;
        } else if (w == "frame:") {
          target = &out[name].frame;
        } else {
          INFO("example " << name << ", token '" << w << "'");
          REQUIRE(target != nullptr);
          REQUIRE(w.size() == 2);
          REQUIRE(w.find_first_not_of("0123456789abcdef") == std::string::npos);
          target->push_back(static_cast<uint8_t>(std::stoul(w, nullptr, 16)));
        }
      }
    }
  }
  REQUIRE(state == OUTSIDE);
  return out;
}

}  // namespace

TEST_CASE("the doc's worked examples are the encoder's exact bytes", "[epb]") {
  const std::map<std::string, DocExample> doc = doc_examples();
  std::map<std::string, Sample> known;
  for (const Sample &s : samples()) known.emplace(s.name, s);

  // The spec promises at least these.
  for (const char *required : {"hello", "reading_position", "reading_seal", "ack", "challenge",
                               "auth", "sealed_welcome", "sealed_reading_door", "evidence_1003_0",
                               "evidence_1003_1", "evidence_ack"})
    CHECK(doc.count(required) == 1);

  for (const auto &[name, ex] : doc) {
    INFO("doc example " << name);
    REQUIRE(known.count(name) == 1);
    const Sample &sample = known.at(name);
    const epb_message &m = sample.msg;
    if (sample.sealed_by) {
      epb_auth sender = example_auth(sample.sealed_by == 'U');
      CHECK(hex(ex.frame) == hex(encode_sealed(m, sender)));
    } else {
      CHECK(hex(ex.frame) == hex(encode(m)));
    }
    REQUIRE(!ex.frame.empty());
    CHECK(hex(ex.body) == hex(cobs_decode(Bytes(ex.frame.begin(), ex.frame.end() - 1))));
    epb_message back;
    epb_auth receiver = example_auth(sample.sealed_by == 'A');
    REQUIRE(epb_decode_body_auth(ex.body.data(), ex.body.size(), &back, &receiver) == EPB_OK);
    CHECK(back.sealed == (sample.sealed_by ? 1 : 0));
    CHECK(diff(m, back) == "");
  }
}

TEST_CASE("every seed-corpus file decodes without errors", "[epb]") {
  std::size_t files = 0;
  for (const auto &entry : std::filesystem::directory_iterator(EPB_CORPUS_DIR)) {
    INFO(entry.path().string());
    std::ifstream in(entry.path(), std::ios::binary);
    Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(b.size() <= EPB_MAX_ENCODED);  // seeds stay small: one frame at most (EVIDENCE fills one)
    epb_decoder d;
    epb_decoder_init(&d);
    std::vector<Outcome> outs = run_stream(d, b, [] { return SIZE_MAX; });
    REQUIRE(!outs.empty());
    bool any_ok = false;
    for (const Outcome &o : outs) any_ok |= o.status == EPB_OK;
    CHECK(any_ok);
    // Only the garbage stream may carry a rejected frame.
    if (entry.path().filename().string().find("garbage") == std::string::npos)
      for (const Outcome &o : outs) CHECK(o.status == EPB_OK);
    files++;
  }
  CHECK(files >= 10);
}

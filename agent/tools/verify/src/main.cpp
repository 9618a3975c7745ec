// eport-verify: checks the evidence of a capture (docs/evidence.md section
// 15) with the keys of the operator's signed device registry, and prints per
// source what is verified and every problem, as text or JSON. The same
// inputs, verdicts and exit statuses as examples/python/eport_verify.py.
//   eport-verify --registry registry.json --ca ca.crt CAPTURE.jsonl... [--json]
//   eport-verify --keys evidence_keys CAPTURE.jsonl...   (tests, demos: no registry)
// Exit 0: no problem (an unverified tail is not one); 1: problems; 2: bad input.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "eport/flags/flags.h"
#include "eport/verify/capture.h"
#include "eport/verify/registry.h"
#include "eport/verify/report.h"
#include "eport/verify/verifier.h"

namespace {

struct Options {
  std::string registry, ca, signature, keys;
  bool json = false;
  std::vector<std::string> captures;
};

[[noreturn]] void usage(const std::string& why, int status = 2) {
  std::fprintf(status == 0 ? stdout : stderr,
               "%s%s"
               "usage: eport-verify --registry REGISTRY.json --ca CA.crt [--signature FILE] CAPTURE.jsonl... [--json]\n"
               "       eport-verify --keys EVIDENCE_KEYS CAPTURE.jsonl... [--json]\n"
               "Verifies the evidence of captured readings and checkpoints (eport-tail's JSON lines):\n"
               "per source the verified seq ranges, every problem, the unverified tail (docs/evidence.md 15).\n"
               "  --registry FILE   the operator's device registry; its signature FILE.sig (or --signature)\n"
               "  --ca FILE         the operator CA's certificate (PEM) that signed the registry\n"
               "  --keys FILE       an agent's bridge.evidence_keys file instead (nothing proves who listed them)\n"
               "  --json            the report as one JSON object\n"
               "exit 0: no problem; 1: problems; 2: bad input (also a registry whose signature fails)\n",
               why.empty() ? "" : "eport-verify: ", why.empty() ? "" : (why + "\n").c_str());
  std::exit(status);
}

Options parse(int argc, char** argv) {
  Options o;
  eport::flags::Args args(argc, argv, [](const std::string& why) { usage(why); });
  while (args.more()) {
    const std::string a = args.next();
    if (a == "--registry") args.take(o.registry);
    else if (a == "--ca") args.take(o.ca);
    else if (a == "--signature") args.take(o.signature);
    else if (a == "--keys") args.take(o.keys);
    else if (a == "--json") o.json = true;
    else if (a == "--help" || a == "-h") usage("", 0);
    else if (a.size() > 1 && a[0] == '-') usage("unknown option " + a);
    else o.captures.push_back(a);
  }
  if (o.keys.empty() && (o.registry.empty() || o.ca.empty())) usage("give --registry and --ca, or --keys");
  if (o.captures.empty()) usage("give at least one capture file");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  auto registry = o.keys.empty() ? eport::verify::load_registry(o.registry, o.ca, o.signature)
                                 : eport::verify::load_key_file(o.keys);
  if (!registry) {
    std::fprintf(stderr, "eport-verify: %s\n", registry.error().c_str());
    return 2;
  }
  eport::verify::Capture capture;
  for (const auto& path : o.captures) {
    if (auto st = eport::verify::read_capture(capture, path); !st) {
      std::fprintf(stderr, "eport-verify: %s\n", st.error().c_str());
      return 2;
    }
  }
  const auto report = eport::verify::verify(capture, *registry);
  const std::string out = o.json ? eport::verify::to_json(report) : eport::verify::to_text(report);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return eport::verify::exit_status(report);
}

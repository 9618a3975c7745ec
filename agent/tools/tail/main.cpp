// eport-tail: the reference cloud-side consumer. Subscribes to telemetry
// topics, verifies every payload with the FlatBuffers Verifier, and prints one
// JSON line per reading (codec::reading_to_json: declared gaps are
// "kind":"gap" lines, a receive-time timestamp carries
// "time_source":"gateway_receive"), or one error line per bad payload, then
// carries on. Reads envelopes v1 and v2 (docs/schema.md), zstd or not.
#include <mqtt/async_client.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "eport/codec/codec.h"
#include "eport/codec/topics.h"
#include "eport/flags/flags.h"
#include "tls_flags.h"
#include "eport/json/json.h"

namespace {

volatile sig_atomic_t g_stop = 0;

struct Options {
  std::string broker = "tcp://127.0.0.1:1883";
  std::string topic = std::string(eport::codec::topics::kAllData);
  std::string client_id;   // given: a persistent session (clean_session=false) under this id
  bool persistent = false;
  long long count = 0;    // exit after this many readings; 0 = no limit
  double duration_s = 0;  // exit after this long; 0 = no limit
  double idle_exit_s = 0; // exit after this long without a message; 0 = never
  bool quiet = false;     // summary only
  bool envelopes = false; // also print one line per envelope header
  eport::tools::TlsFlags tls;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "eport-tail: %s\n"
               "usage: eport-tail [--broker URI] [--topic FILTER] [--client-id ID] [--count N]\n"
               "                  [--duration S] [--idle-exit S] [--envelopes] [--quiet]\n"
               "                  [--ca-file FILE [--cert-file FILE --key-file FILE]]   (ssl:// brokers)\n",
               why.c_str());
  std::exit(64);
}

Options parse(int argc, char** argv) {
  Options o;
  eport::flags::Args args(argc, argv, [](const std::string& why) { usage(why); });
  while (args.more()) {
    const std::string a = args.next();
    if (a == "--broker") args.take(o.broker);
    else if (a == "--topic") args.take(o.topic);
    else if (a == "--client-id") args.take(o.client_id);
    else if (a == "--count") args.take(o.count);
    else if (a == "--duration") args.take(o.duration_s);
    else if (a == "--idle-exit") args.take(o.idle_exit_s);
    else if (a == "--quiet") o.quiet = true;
    else if (a == "--envelopes") o.envelopes = true;
    else if (o.tls.take(a, args)) continue;
    else usage("unknown option " + a);
  }
  if (auto problem = o.tls.problem(o.broker); !problem.empty()) usage(problem);
  o.persistent = !o.client_id.empty();
  if (o.client_id.empty()) o.client_id = "eport-tail-" + std::to_string(::getpid());
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  struct sigaction sa{};
  sa.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  long long readings = 0, envelopes = 0, errors = 0, skipped = 0;
  if (eport::tools::TlsFlags::is_tls_uri(opt.broker)) eport::tools::TlsFlags::init_openssl();
  try {
    mqtt::async_client client(opt.broker, opt.client_id);
    mqtt::connect_options co;
    // With --client-id the broker keeps the subscription and queues QoS 1
    // messages while tail is away (and, with broker persistence, across a
    // broker restart); without it tail sees only what arrives while it runs.
    co.set_clean_session(!opt.persistent);
    co.set_keep_alive_interval(std::chrono::seconds(20));
    co.set_automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(10));
    opt.tls.apply(opt.broker, co);
    // Subscribe again after every automatic reconnect (a clean session
    // forgets subscriptions). Non-blocking: never wait inside a callback.
    client.set_connected_handler([&client, &opt](const std::string&) {
      try {
        client.subscribe(opt.topic, 1);
      } catch (const mqtt::exception& e) {
        std::fprintf(stderr, "eport-tail: resubscribe failed: %s\n", e.what());
      }
    });
    client.start_consuming();
    client.connect(co)->wait();
    client.subscribe(opt.topic, 1)->wait();  // the handler's subscribe may still be in flight
    std::fprintf(stderr, "eport-tail: subscribed to %s on %s\n", opt.topic.c_str(), opt.broker.c_str());

    auto start = std::chrono::steady_clock::now();
    auto last_message = start;
    while (!g_stop) {
      auto now = std::chrono::steady_clock::now();
      if (opt.duration_s > 0 && now - start >= std::chrono::duration<double>(opt.duration_s)) break;
      if (opt.idle_exit_s > 0 && now - last_message >= std::chrono::duration<double>(opt.idle_exit_s)) break;
      if (opt.count > 0 && readings >= opt.count) break;
      mqtt::const_message_ptr msg;
      if (!client.try_consume_message_for(&msg, std::chrono::milliseconds(200))) continue;
      if (!msg) continue;  // connection lost; the connected handler subscribes again
      last_message = std::chrono::steady_clock::now();
      const auto& payload = msg->get_payload_ref();
      // Either envelope version; v2 takes the site and gateway from the topic.
      auto env = eport::codec::decode_payload_on(
          msg->get_topic(), {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()});
      if (!env) {
        ++errors;
        std::printf("{\"error\":%s,\"topic\":%s,\"bytes\":%zu}\n", eport::json::quote(env.error()).c_str(),
                    eport::json::quote(msg->get_topic()).c_str(), payload.size());
        std::fflush(stdout);
        continue;
      }
      ++envelopes;
      if (opt.envelopes && !opt.quiet) {
        // "readings" counts every reading in the envelope, skipped ones too (as eport_consumer.py).
        std::printf("{\"envelope\":%s,\"readings\":%zu,\"bytes\":%zu}\n",
                    eport::codec::envelope_header_to_json(env->header).c_str(),
                    env->readings.size() + env->skipped_unknown, payload.size());
      }
      if (env->skipped_unknown > 0) {
        // Readings of a payload kind newer than this build's schema: never silently gone.
        skipped += static_cast<long long>(env->skipped_unknown);
        std::printf("{\"error\":\"%zu readings of an unknown payload kind skipped (newer schema)\","
                    "\"topic\":%s,\"bytes\":%zu}\n",
                    env->skipped_unknown, eport::json::quote(msg->get_topic()).c_str(), payload.size());
      }
      for (const auto& r : env->readings) {
        ++readings;
        if (!opt.quiet) std::printf("%s\n", eport::codec::reading_to_json(r).c_str());
      }
      std::fflush(stdout);
    }
    try {
      client.disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  } catch (const mqtt::exception& e) {
    std::fprintf(stderr, "eport-tail: %s: %s\n", opt.broker.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr, "eport-tail: readings=%lld envelopes=%lld errors=%lld skipped=%lld\n", readings, envelopes,
               errors, skipped);
  return 0;
}

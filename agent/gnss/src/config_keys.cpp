// The gateway receiver's config key rows (docs/config.md, [gnss]).
#include "eport/gnss/receiver_options.h"

#include "eport/gnss/serial_source.h"

namespace eport::gnss {

namespace {

std::vector<std::int64_t> receiver_rates() {
  auto bauds = supported_bauds();
  return {bauds.begin(), bauds.end()};
}

config::Keys<ReceiverOptions> build() {
  using O = ReceiverOptions;
  config::Keys<O> k;
  k.add(config::enumeration<O>(
      "gnss.source", {{"none", SourceKind::kNone}, {"serial", SourceKind::kSerial}, {"gpsd", SourceKind::kGpsd}},
      "The gateway's own position: \"serial\" (an NMEA receiver on gnss.device), \"gpsd\" (a gpsd daemon) or "
      "\"none\". Positions go out under gateway.id. See docs/gnss.md.",
      EPORT_OPTION(O, source)));
  k.add(config::string<O>("gnss.device", "NMEA 0183 receiver tty (gnss.source = \"serial\").", EPORT_OPTION(O, device)));
  k.add(config::allowed(config::integer<O>("gnss.baud", 4800, 230400, "Receiver baud rate.", EPORT_OPTION(O, baud)),
                        receiver_rates(), "a supported rate"));
  k.add(config::string<O>("gnss.gpsd_host", "gpsd host (gnss.source = \"gpsd\").", EPORT_OPTION(O, gpsd_host)));
  k.add(config::integer<O>("gnss.gpsd_port", 1, 65535, "gpsd port.", EPORT_OPTION(O, gpsd_port)));
  k.add(config::duration<O>("gnss.min_interval_ms", 0, 3600000,
                            "At most one gateway position per this much receiver time; 0: every epoch.",
                            EPORT_OPTION(O, min_interval)));
  k.add(config::boolean<O>("gnss.require_fix", "Publish only epochs with a fix.", EPORT_OPTION(O, require_fix)));
  k.add(config::boolean<O>("gnss.require_checksum",
                           "Reject NMEA sentences without a *hh checksum (turn off only for receivers that never send "
                           "one).",
                           EPORT_OPTION(O, require_checksum)));
  k.rule({"gnss.device", "gnss.source"}, "`gnss.device` must be set when `gnss.source = \"serial\"`.", [](const O& o) {
    return config::problem_if(o.source == SourceKind::kSerial && o.device.empty(),
                              "must be set when gnss.source = \"serial\"");
  });
  return k;
}

}  // namespace

const config::Keys<ReceiverOptions>& config_keys() {
  static const config::Keys<ReceiverOptions> keys = build();
  return keys;
}

}  // namespace eport::gnss

// The uplink's config keys ([mqtt], [publish], [budget], [health],
// [commands]), one row per PublisherOptions field, and the rules over them
// (TLS files, passwords, placeholders).
#pragma once

#include "eport/config/keys.h"
#include "eport/uplink/publisher.h"

namespace eport::uplink {

const config::Keys<PublisherOptions>& config_keys();

}  // namespace eport::uplink

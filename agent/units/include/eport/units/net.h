// Socket helpers for the bridge transports (UNIX socket, TCP), used by the
// agent's server and by eport-sim. All sockets are returned non-blocking,
// close-on-exec; the caller owns the descriptor.
#pragma once

#include <cstdint>
#include <string>

#include "eport/model/result.h"

namespace eport::units::net {

// Endpoint in config syntax: "unix:/path", "tcp:host:port", or a bare path.
// listen_unix removes a stale socket file at path, but refuses ("another
// agent serves ...") when a process accepts connections on it.
Result<int> listen_unix(const std::string& path);
Result<int> listen_tcp(const std::string& host_port);  // port 0: any free port
Result<int> connect_endpoint(const std::string& endpoint);  // blocking connect, then non-blocking
std::uint16_t local_port(int fd);
Status set_nonblocking(int fd);

}  // namespace eport::units::net

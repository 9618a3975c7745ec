// Listening and connecting sockets for the bridge, with errors that name the
// address and the system error.
#include "eport/units/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace eport::units::net {

namespace {
std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

bool split_host_port(const std::string& hp, std::string& host, std::string& port) {
  auto colon = hp.rfind(':');
  if (colon == std::string::npos) return false;
  host = hp.substr(0, colon);
  port = hp.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return !port.empty();
}

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Error{"UNIX socket path \"" + path + "\" is empty or longer than " +
                 std::to_string(sizeof(addr.sun_path) - 1) + " bytes"};
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}
}  // namespace

Status set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return Error{sys_error("fcntl O_NONBLOCK")};
  return ok_status();
}

Result<int> listen_unix(const std::string& path) {
  auto addr = unix_address(path);
  if (!addr) return Error{addr.error()};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{sys_error("socket(AF_UNIX)")};
  // A socket file left by a previous run would make bind fail: remove it,
  // but only if nobody answers on it. A live one belongs to another agent
  // (two agents on one configuration); taking it over would cut that
  // agent's units off.
  struct stat st{};
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
      auto e = sys_error("socket(AF_UNIX)");
      close(fd);
      return Error{e};
    }
    int rc = connect(probe, reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un));
    int err = errno;
    close(probe);
    if (rc == 0 || err == EAGAIN) {  // EAGAIN: alive, its backlog is full
      close(fd);
      return Error{"another agent serves unix:" + path + " (a process accepts connections on it); not taking it over"};
    }
    if (err == ECONNREFUSED) unlink(path.c_str());  // stale: nobody listens
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un)) < 0 || listen(fd, 128) < 0) {
    auto e = sys_error("listen on unix:" + path);
    close(fd);
    return Error{e};
  }
  chmod(path.c_str(), 0660);
  return fd;
}

Result<int> listen_tcp(const std::string& host_port) {
  std::string host, port;
  if (!split_host_port(host_port, host, port)) return Error{"\"" + host_port + "\" is not host:port"};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return Error{"resolve " + host_port + ": " + gai_strerror(rc)};
  }
  std::string last_error = "no address for " + host_port;
  for (auto* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 512) == 0) {
      freeaddrinfo(res);
      return fd;
    }
    last_error = sys_error("listen on tcp:" + host_port);
    close(fd);
  }
  freeaddrinfo(res);
  return Error{last_error};
}

Result<int> connect_endpoint(const std::string& endpoint) {
  int fd = -1;
  if (endpoint.rfind("tcp:", 0) == 0) {
    std::string host, port;
    if (!split_host_port(endpoint.substr(4), host, port)) return Error{"\"" + endpoint + "\" is not tcp:host:port"};
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
      return Error{"resolve " + endpoint + ": " + gai_strerror(rc)};
    }
    std::string last_error = "no address for " + endpoint;
    for (auto* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
      fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) continue;
      if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        last_error = sys_error("connect " + endpoint);
        close(fd);
        fd = -1;
      }
    }
    freeaddrinfo(res);
    if (fd < 0) return Error{last_error};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  } else {
    std::string path = endpoint.rfind("unix:", 0) == 0 ? endpoint.substr(5) : endpoint;
    auto addr = unix_address(path);
    if (!addr) return Error{addr.error()};
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Error{sys_error("socket(AF_UNIX)")};
    if (connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un)) < 0) {
      auto e = sys_error("connect unix:" + path);
      close(fd);
      return Error{e};
    }
  }
  if (auto s = set_nonblocking(fd); !s) {
    close(fd);
    return Error{s.error()};
  }
  return fd;
}

std::uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

}  // namespace eport::units::net

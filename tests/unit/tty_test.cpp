// eport::tty: the baud table, raw 8N1 setup on a real pty and its failure
// on something that is not a terminal, and the pty pair's descriptors.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "eport/tty/tty.h"

TEST_CASE("tty baud table covers Linux's standard rates only", "[tty]") {
  CHECK(eport::tty::speed_for(9600) == B9600);
  CHECK(eport::tty::speed_for(115200) == B115200);
  CHECK(eport::tty::speed_for(4000000) == B4000000);
  CHECK(eport::tty::speed_for(50) == B50);
  CHECK_FALSE(eport::tty::speed_for(0).has_value());
  CHECK_FALSE(eport::tty::speed_for(100000).has_value());
  CHECK_FALSE(eport::tty::speed_for(-9600).has_value());
}

TEST_CASE("tty pty pair is raw 8N1 at 115200 with non-blocking ends", "[tty]") {
  auto p = eport::tty::open_pty_pair();
  REQUIRE(p.ok());
  CHECK(p->slave_path.rfind("/dev/pts/", 0) == 0);
  termios t{};
  REQUIRE(::tcgetattr(p->slave_keeper, &t) == 0);
  CHECK((t.c_lflag & (ECHO | ICANON)) == 0);
  CHECK((t.c_cflag & CSIZE) == CS8);
  CHECK((t.c_cflag & (PARENB | CSTOPB | CRTSCTS)) == 0);
  CHECK((t.c_cflag & CLOCAL) != 0);
  CHECK((t.c_iflag & (IXON | IXOFF)) == 0);
  CHECK(t.c_cc[VMIN] == 1);
  CHECK(::cfgetospeed(&t) == B115200);
  CHECK((::fcntl(p->master, F_GETFL) & O_NONBLOCK) != 0);
  CHECK((::fcntl(p->slave_keeper, F_GETFL) & O_NONBLOCK) != 0);
  // Bytes pass untranslated: a CR stays a CR, nothing is echoed.
  REQUIRE(::write(p->master, "a\rb\n", 4) == 4);
  char buf[16];
  ::usleep(20000);
  CHECK(::read(p->slave_keeper, buf, sizeof buf) == 4);
  CHECK(std::string(buf, 4) == "a\rb\n");
  CHECK(::read(p->master, buf, sizeof buf) < 0);  // no echo
  ::close(p->slave_keeper);
  ::close(p->master);
}

TEST_CASE("tty make_raw names the failing call on a non-terminal", "[tty]") {
  int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  auto f = eport::tty::make_raw(fd, B9600, 0);
  ::close(fd);
  REQUIRE(f.has_value());
  CHECK(f->call == "tcgetattr");
  CHECK(f->error == ENOTTY);
}

// LineFramer: cuts a byte stream from a serial port into lines with a bounded
// buffer. A line longer than the buffer is dropped and counted, and framing
// resumes after the next '\n'. Used by SerialSource; no I/O of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace eport::gnss {

class LineFramer {
 public:
  explicit LineFramer(std::size_t max_line_bytes) : max_(max_line_bytes) { buf_.reserve(max_); }

  // Calls on_line(std::string_view) for each complete line, without its '\n'
  // (a trailing '\r' is left for the parser). The view is valid only during
  // the call.
  template <class OnLine>
  void feed(std::string_view bytes, OnLine&& on_line) {
    for (char c : bytes) {
      if (c == '\n') {
        if (!discarding_) on_line(std::string_view(buf_));
        buf_.clear();
        discarding_ = false;
      } else if (!discarding_) {
        if (buf_.size() == max_) {
          ++overlong_;
          buf_.clear();
          discarding_ = true;
        } else {
          buf_.push_back(c);
        }
      }
    }
  }

  std::uint64_t overlong_lines() const { return overlong_; }
  std::size_t pending_bytes() const { return buf_.size(); }

 private:
  std::size_t max_;
  std::string buf_;
  bool discarding_ = false;
  std::uint64_t overlong_ = 0;
};

}  // namespace eport::gnss

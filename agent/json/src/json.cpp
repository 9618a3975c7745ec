// JSON string escaping (every control byte as \u00XX, invalid UTF-8 as
// U+FFFD) and the flat object writer; the policy is in json.h.
#include "eport/json/json.h"

#include <utility>

namespace eport::json {

namespace {

constexpr char kHex[] = "0123456789abcdef";

// At s[i] (a byte >= 0x80): a well-formed UTF-8 sequence of n bytes
// (valid), or the maximal subpart of one, n >= 1 bytes that stand for one
// U+FFFD (Unicode 15 section 3.9, as Python's and ICU's decoders do; the
// ranges are RFC 3629's: no overlongs, no surrogates, nothing above U+10FFFF).
struct Utf8Step {
  std::size_t n;
  bool valid;
};

Utf8Step utf8_step(std::string_view s, std::size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
  } else {
    return {1, false};  // a continuation byte or one that never starts a sequence
  }
  for (std::size_t k = 1; k < n; ++k) {
    if (i + k >= s.size()) return {k, false};
    const unsigned char b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return {k, false};
  }
  return {n, true};
}

}  // namespace

void append_quoted(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      const auto step = utf8_step(s, i);
      if (step.valid) out.append(s.substr(i, step.n));
      else out += "\\ufffd";
      i += step.n;
    }
  }
  out += '"';
}

std::string quote(std::string_view s) {
  std::string out;
  append_quoted(out, s);
  return out;
}

void Object::key(std::string_view k) {
  if (out_.size() > 1) out_ += ',';
  append_quoted(out_, k);
  out_ += ':';
}

Object& Object::add(std::string_view k, std::string_view value) {
  key(k);
  append_quoted(out_, value);
  return *this;
}

Object& Object::add(std::string_view k, bool value) {
  key(k);
  out_ += value ? "true" : "false";
  return *this;
}

Object& Object::add_signed(std::string_view k, std::int64_t value) {
  key(k);
  out_ += std::to_string(value);
  return *this;
}

Object& Object::add_unsigned(std::string_view k, std::uint64_t value) {
  key(k);
  out_ += std::to_string(value);
  return *this;
}

Object& Object::add_raw(std::string_view k, std::string_view json_value) {
  key(k);
  out_ += json_value;
  return *this;
}

std::string Object::str() const& { return out_ + "}"; }

std::string Object::str() && {
  out_ += '}';
  return std::move(out_);
}

}  // namespace eport::json

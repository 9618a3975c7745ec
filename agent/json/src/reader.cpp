// The bounded RFC 8259 reader of eport/json/reader.h: a recursive-descent
// parser whose depth is bounded by ReaderLimits::max_depth (never above
// kMaxDepthCap), so the stack it uses is bounded whatever the input.
#include "eport/json/reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>

namespace eport::json {

std::string describe_offset(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "at byte " + std::to_string(offset) + " (line " + std::to_string(line) + ", column " +
         std::to_string(offset - line_start + 1) + ")";
}

std::string_view Value::type_name(Type t) {
  switch (t) {
    case Type::kNull: return "null";
    case Type::kBool: return "boolean";
    case Type::kNumber: return "number";
    case Type::kString: return "string";
    case Type::kArray: return "array";
    case Type::kObject: return "object";
  }
  return "?";
}

const Value* Value::find(std::string_view key) const {
  for (const auto& m : members_) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

namespace {

// A byte as a message shows it: 'x' when printable ASCII, else 0xNN.
std::string show_byte(unsigned char c) {
  if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(c));
  return buf;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Length of the well-formed UTF-8 sequence at s[i] (a byte >= 0x80), or 0
// (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (std::size_t k = 1; k < n; ++k) {
    if (i + k >= s.size()) return 0;
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return 0;
  }
  return n;
}

int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// The power of ten of a well-formed number literal's leading digit
// (saturating), to tell overflow from underflow when from_chars reports
// either as out of range.
long long decimal_exponent(std::string_view lit) {
  std::size_t i = (lit[0] == '-') ? 1 : 0;
  long long magnitude = 0;
  bool seen_nonzero = false;
  long long int_digits = 0, leading_frac_zeros = 0;
  for (; i < lit.size() && lit[i] >= '0' && lit[i] <= '9'; ++i) {
    if (lit[i] != '0') seen_nonzero = true;
    if (seen_nonzero) ++int_digits;
  }
  if (i < lit.size() && lit[i] == '.') {
    for (++i; i < lit.size() && lit[i] >= '0' && lit[i] <= '9'; ++i) {
      if (!seen_nonzero && lit[i] == '0') ++leading_frac_zeros;
      else seen_nonzero = true;
    }
  }
  long long exp = 0;
  if (i < lit.size() && (lit[i] == 'e' || lit[i] == 'E')) {
    ++i;
    const bool negative = i < lit.size() && lit[i] == '-';
    if (i < lit.size() && (lit[i] == '+' || lit[i] == '-')) ++i;
    for (; i < lit.size(); ++i) exp = std::min<long long>(exp * 10 + (lit[i] - '0'), 1000000000LL);
    if (negative) exp = -exp;
  }
  magnitude = int_digits > 0 ? int_digits - 1 : -(leading_frac_zeros + 1);
  return magnitude + exp;
}

struct Failure {
  std::string what;
  std::size_t offset;
};

}  // namespace

class Parser {
 public:
  Parser(std::string_view in, const ReaderLimits& limits)
      : in_(in), max_depth_(std::min(limits.max_depth, kMaxDepthCap)), max_values_(limits.max_values) {}

  bool run(Value& out) {
    skip_ws();
    if (!value(out, 0)) return false;
    skip_ws();
    if (pos_ != in_.size()) return fail("unexpected " + show_byte(byte()) + " after the JSON value", pos_);
    return true;
  }
  const Failure& failure() const { return failure_; }

 private:
  bool fail(std::string what, std::size_t at) {
    failure_ = {std::move(what), at};
    return false;
  }
  bool at_end() const { return pos_ >= in_.size(); }
  unsigned char byte() const { return static_cast<unsigned char>(in_[pos_]); }
  void skip_ws() {
    while (!at_end() && (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r')) ++pos_;
  }
  bool unexpected(std::string_view expected) {
    if (at_end()) return fail("unexpected end of input, expected " + std::string(expected), pos_);
    return fail("unexpected " + show_byte(byte()) + ", expected " + std::string(expected), pos_);
  }

  bool value(Value& v, std::size_t depth) {
    if (++values_ > max_values_) {
      return fail("more than " + std::to_string(max_values_) + " values", pos_);
    }
    v.offset_ = pos_;
    if (at_end()) return unexpected("a value");
    switch (in_[pos_]) {
      case '{': return object(v, depth + 1);
      case '[': return array(v, depth + 1);
      case '"': v.type_ = Value::Type::kString; return string(v.text_);
      case 't': return literal(v, "true", Value::Type::kBool, true);
      case 'f': return literal(v, "false", Value::Type::kBool, false);
      case 'n': return literal(v, "null", Value::Type::kNull, false);
      default:
        if (in_[pos_] == '-' || (in_[pos_] >= '0' && in_[pos_] <= '9')) return number(v);
        if (in_.substr(pos_, 3) == "NaN" || in_.substr(pos_, 8) == "Infinity") {
          return fail("NaN and Infinity are not JSON numbers", pos_);
        }
        return unexpected("a value");
    }
  }

  bool literal(Value& v, std::string_view word, Value::Type type, bool b) {
    if (in_.substr(pos_, word.size()) != word) return unexpected("a value");
    pos_ += word.size();
    v.type_ = type;
    v.bool_ = b;
    return true;
  }

  bool digits() {
    const std::size_t start = pos_;
    while (!at_end() && in_[pos_] >= '0' && in_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  bool number(Value& v) {
    const std::size_t start = pos_;
    if (in_[pos_] == '-') ++pos_;
    if (in_.substr(pos_, 8) == "Infinity") return fail("NaN and Infinity are not JSON numbers", start);
    if (at_end() || in_[pos_] < '0' || in_[pos_] > '9') return unexpected("a digit");
    if (in_[pos_] == '0' && pos_ + 1 < in_.size() && in_[pos_ + 1] >= '0' && in_[pos_ + 1] <= '9') {
      return fail("number with a leading zero", start);
    }
    digits();
    if (!at_end() && in_[pos_] == '.') {
      ++pos_;
      if (!digits()) return unexpected("a digit after the decimal point");
    }
    if (!at_end() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
      ++pos_;
      if (!at_end() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
      if (!digits()) return unexpected("a digit in the exponent");
    }
    const std::string_view lit = in_.substr(start, pos_ - start);
    double d = 0;
    const auto r = std::from_chars(lit.data(), lit.data() + lit.size(), d);
    if (r.ec == std::errc::result_out_of_range) {
      // Underflow to zero is harmless; overflow to infinity is refused.
      if (decimal_exponent(lit) > 0) return fail("number out of range", start);
      d = 0.0;
    } else if (r.ec != std::errc() || r.ptr != lit.data() + lit.size()) {
      return fail("malformed number", start);
    }
    if (!std::isfinite(d)) return fail("number out of range", start);
    v.type_ = Value::Type::kNumber;
    v.number_ = d;
    v.text_.assign(lit);
    return true;
  }

  bool hex4(std::uint32_t& out) {
    if (pos_ + 4 > in_.size()) return fail("truncated \\u escape", pos_);
    out = 0;
    for (int k = 0; k < 4; ++k) {
      const int h = hex_digit(in_[pos_ + static_cast<std::size_t>(k)]);
      if (h < 0) return fail("invalid hex digit in \\u escape", pos_ + static_cast<std::size_t>(k));
      out = out * 16 + static_cast<std::uint32_t>(h);
    }
    pos_ += 4;
    return true;
  }

  bool string(std::string& out) {
    const std::size_t open = pos_;
    ++pos_;  // the opening quote
    while (true) {
      if (at_end()) return fail("unterminated string (opened at byte " + std::to_string(open) + ")", pos_);
      const unsigned char c = byte();
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return fail("control byte " + show_byte(c) + " in a string (escape it)", pos_);
      if (c == '\\') {
        const std::size_t esc = pos_;
        ++pos_;
        if (at_end()) return fail("unterminated string (opened at byte " + std::to_string(open) + ")", pos_);
        const char e = in_[pos_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            std::uint32_t cp;
            if (!hex4(cp)) return false;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate \\u escape in a string", esc);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              std::uint32_t lo;
              if (in_.substr(pos_, 2) != "\\u") return fail("lone high surrogate \\u escape in a string", esc);
              pos_ += 2;
              if (!hex4(lo)) return false;
              if (lo < 0xDC00 || lo > 0xDFFF) return fail("lone high surrogate \\u escape in a string", esc);
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            append_utf8(out, cp);
            break;
          }
          default:
            return fail("invalid escape \\" + std::string(1, e) + " in a string", esc);
        }
        continue;
      }
      if (c < 0x80) {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      const std::size_t n = utf8_length(in_, pos_);
      if (n == 0) return fail("invalid UTF-8 byte " + show_byte(c) + " in a string", pos_);
      out.append(in_.substr(pos_, n));
      pos_ += n;
    }
  }

  bool check_depth(std::size_t depth) {
    if (depth > max_depth_) return fail("nesting deeper than " + std::to_string(max_depth_) + " levels", pos_);
    return true;
  }

  bool array(Value& v, std::size_t depth) {
    if (!check_depth(depth)) return false;
    v.type_ = Value::Type::kArray;
    ++pos_;
    skip_ws();
    if (!at_end() && in_[pos_] == ']') {
      ++pos_;
      return true;
    }
    while (true) {
      skip_ws();
      v.items_.emplace_back();
      if (!value(v.items_.back(), depth)) return false;
      skip_ws();
      if (at_end()) return unexpected("',' or ']'");
      if (in_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (in_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return unexpected("',' or ']'");
    }
  }

  bool object(Value& v, std::size_t depth) {
    if (!check_depth(depth)) return false;
    v.type_ = Value::Type::kObject;
    ++pos_;
    skip_ws();
    if (!at_end() && in_[pos_] == '}') {
      ++pos_;
      return true;
    }
    std::vector<std::size_t> key_offsets;
    while (true) {
      skip_ws();
      if (at_end() || in_[pos_] != '"') return unexpected("a string key");
      const std::size_t key_at = pos_;
      Member m;
      if (!string(m.key)) return false;
      skip_ws();
      if (at_end() || in_[pos_] != ':') return unexpected("':'");
      ++pos_;
      skip_ws();
      if (!value(m.value, depth)) return false;
      v.members_.push_back(std::move(m));
      key_offsets.push_back(key_at);
      skip_ws();
      if (at_end()) return unexpected("',' or '}'");
      if (in_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (in_[pos_] == '}') {
        ++pos_;
        break;
      }
      return unexpected("',' or '}'");
    }
    return unique_keys(v, key_offsets);
  }

  // O(n log n): sort the member indices by key, compare neighbours; report
  // the later of the two occurrences that comes first in the document.
  bool unique_keys(const Value& v, const std::vector<std::size_t>& key_offsets) {
    const auto& ms = v.members_;
    if (ms.size() < 2) return true;
    std::vector<std::size_t> idx(ms.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return ms[a].key < ms[b].key; });
    std::size_t best_second = ms.size(), best_first = 0;
    for (std::size_t k = 1; k < idx.size(); ++k) {
      if (ms[idx[k]].key == ms[idx[k - 1]].key && idx[k] < best_second) {
        best_second = idx[k];
        best_first = idx[k - 1];
      }
    }
    if (best_second == ms.size()) return true;
    std::string shown;
    append_display(shown, ms[best_second].key);
    return fail("duplicate key " + shown + " (first at byte " + std::to_string(key_offsets[best_first]) + ")",
                key_offsets[best_second]);
  }

  // A key for a message: quoted, at most 64 bytes, bytes outside printable
  // ASCII as \xNN.
  static void append_display(std::string& out, std::string_view key) {
    out += '"';
    std::size_t n = 0;
    for (char ch : key) {
      if (++n > 64) {
        out += "...";
        break;
      }
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(c));
        out += buf;
      } else {
        out += ch;
      }
    }
    out += '"';
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  std::size_t max_depth_;
  std::size_t max_values_;
  std::size_t values_ = 0;
  Failure failure_;
};

Result<Value> parse(std::string_view text, const ReaderLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Error{"input is " + std::to_string(text.size()) + " bytes (at most " + std::to_string(limits.max_bytes) +
                 ")"};
  }
  Value v;
  Parser p(text, limits);
  if (!p.run(v)) return Error{p.failure().what + " " + describe_offset(text, p.failure().offset)};
  return v;
}

}  // namespace eport::json

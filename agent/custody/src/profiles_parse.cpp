// The text form of a profile table (profiles.h): parsing with an error that
// names the rule and the token, formatting back, and the built-in table.
// One row per key below owns its name and range.
#include <array>
#include <charconv>
#include <string>

#include "eport/custody/profiles.h"

namespace eport::custody {

const std::string_view kDefaultProfilesText =
    "burst      when burst      position_s=600   sensor_s=600   temperature_deadband_centi_c=50\n"
    "terminal   when terminal   position_s=300   sensor_s=300   position_deadband_m=25\n"
    "sea_reefer when sea+reefer position_s=21600 sensor_s=3600  temperature_deadband_centi_c=50\n"
    "sea        when sea        position_s=86400 sensor_s=86400 position_deadband_m=5000\n"
    "land       always          position_s=900   sensor_s=900   position_deadband_m=200\n";

namespace {

constexpr std::array<std::pair<std::string_view, Condition>, 7> kConditions{{
    {"terminal", Condition::kTerminal},
    {"sea", Condition::kSea},
    {"moving", Condition::kMoving},
    {"stopped", Condition::kStopped},
    {"excursion", Condition::kExcursion},
    {"burst", Condition::kBurst},
    {"reefer", Condition::kReefer},
}};

enum class Key { kPosition, kSensor, kTemperatureDeadband, kPositionDeadband };
struct KeyRow {
  std::string_view name;
  Key key;
  std::uint64_t min;
  std::uint64_t max;
};
constexpr std::array<KeyRow, 4> kKeys{{
    {"position_s", Key::kPosition, 10, 604800},
    {"sensor_s", Key::kSensor, 10, 604800},
    {"temperature_deadband_centi_c", Key::kTemperatureDeadband, 0, 2000},
    {"position_deadband_m", Key::kPositionDeadband, 0, 100000},
}};

constexpr std::size_t kMaxNameBytes = 32;

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::vector<std::string_view> tokens(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && blank(line[i])) ++i;
    std::size_t j = i;
    while (j < line.size() && !blank(line[j])) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > kMaxNameBytes) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

std::optional<Condition> condition_from(std::string_view s) {
  for (const auto& [name, c] : kConditions)
    if (name == s) return c;
  return std::nullopt;
}

const KeyRow* key_from(std::string_view s) {
  for (const auto& row : kKeys)
    if (row.name == s) return &row;
  return nullptr;
}

struct RuleParser {
  std::size_t number;  // 1-based rule number, for messages
  std::string name;

  Error fail(const std::string& what) const {
    return Error{"profile rule " + std::to_string(number) + (name.empty() ? "" : " (" + name + ")") + ": " + what};
  }

  Result<ProfileRule> parse(const std::vector<std::string_view>& t) {
    if (!valid_name(t[0])) return fail("name '" + std::string(t[0]) + "' is not 1..32 of [a-z0-9_]");
    name = std::string(t[0]);
    ProfileRule rule;
    rule.profile.name = name;
    std::size_t i = 1;
    if (i < t.size() && t[i] == "always") {
      ++i;
    } else if (i < t.size() && t[i] == "when") {
      ++i;
      if (i >= t.size() || t[i].find('=') != std::string_view::npos) return fail("'when' without conditions");
      auto st = conditions(t[i++], rule.when);
      if (!st) return Error{st.error()};
    } else {
      return fail("expected 'when <conditions>' or 'always' after the name");
    }
    bool seen[kKeys.size()] = {};
    for (; i < t.size(); ++i) {
      auto st = setting(t[i], rule.profile, seen);
      if (!st) return Error{st.error()};
    }
    if (!seen[0]) return fail("position_s is missing");
    if (!seen[1]) return fail("sensor_s is missing");
    return rule;
  }

  Status conditions(std::string_view list, std::vector<Condition>& out) {
    std::size_t start = 0;
    while (true) {
      std::size_t plus = list.find('+', start);
      std::string_view one = list.substr(start, plus == std::string_view::npos ? std::string_view::npos : plus - start);
      auto c = condition_from(one);
      if (!c) return fail("unknown condition '" + std::string(one) + "' (terminal, sea, moving, stopped, excursion, burst, reefer)");
      for (Condition have : out)
        if (have == *c) return fail("condition '" + std::string(one) + "' twice");
      out.push_back(*c);
      if (plus == std::string_view::npos) break;
      start = plus + 1;
    }
    bool moving = false, stopped = false;
    for (Condition c : out) {
      moving = moving || c == Condition::kMoving;
      stopped = stopped || c == Condition::kStopped;
    }
    if (moving && stopped) return fail("'moving+stopped' can never apply");
    return ok_status();
  }

  Status setting(std::string_view token, Profile& p, bool* seen) {
    std::size_t eq = token.find('=');
    if (eq == std::string_view::npos) return fail("'" + std::string(token) + "' is not key=value");
    std::string_view k = token.substr(0, eq), v = token.substr(eq + 1);
    const KeyRow* row = key_from(k);
    if (row == nullptr)
      return fail("unknown key '" + std::string(k) +
                  "' (position_s, sensor_s, temperature_deadband_centi_c, position_deadband_m)");
    const auto index = static_cast<std::size_t>(row - kKeys.data());
    if (seen[index]) return fail(std::string(k) + " given twice");
    seen[index] = true;
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc{} || end != v.data() + v.size())
      return fail(std::string(k) + " = '" + std::string(v) + "' is not a whole number");
    if (n < row->min || n > row->max)
      return fail(std::string(k) + " = " + std::string(v) + " is outside " + std::to_string(row->min) + ".." +
                  std::to_string(row->max));
    switch (row->key) {
      case Key::kPosition: p.position_interval = std::chrono::seconds(n); break;
      case Key::kSensor: p.sensor_interval = std::chrono::seconds(n); break;
      case Key::kTemperatureDeadband: p.temperature_deadband_centi_c = static_cast<std::uint16_t>(n); break;
      case Key::kPositionDeadband: p.position_deadband_m = static_cast<std::uint32_t>(n); break;
    }
    return ok_status();
  }
};

}  // namespace

std::string_view condition_name(Condition c) {
  for (const auto& [name, cond] : kConditions)
    if (cond == c) return name;
  return "?";
}

Result<ProfileTable> parse_profiles(std::string_view text) {
  ProfileTable table;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find_first_of("\n;", pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    auto t = tokens(line);
    if (t.empty()) continue;
    const std::size_t number = table.rules.size() + 1;
    if (number > kMaxProfileRules)
      return Error{"profile rules: more than " + std::to_string(kMaxProfileRules)};
    if (!table.rules.empty() && table.rules.back().when.empty())
      return Error{"profile rule " + std::to_string(number) + " (" + std::string(t[0]) + "): unreachable after the 'always' rule " +
                   table.rules.back().profile.name};
    RuleParser parser{number, {}};
    auto rule = parser.parse(t);
    if (!rule) return Error{rule.error()};
    for (const auto& have : table.rules)
      if (have.profile.name == rule->profile.name)
        return Error{"profile rule " + std::to_string(number) + " (" + rule->profile.name + "): name used twice"};
    table.rules.push_back(std::move(*rule));
  }
  if (table.rules.empty()) return Error{"profile rules: none given"};
  if (!table.rules.back().when.empty())
    return Error{"profile rules: the last rule (" + table.rules.back().profile.name +
                 ") is not 'always', so some states would have no profile"};
  return table;
}

std::string format_profiles(const ProfileTable& t) {
  std::string out;
  for (const auto& rule : t.rules) {
    out += rule.profile.name;
    if (rule.when.empty()) {
      out += " always";
    } else {
      out += " when ";
      for (std::size_t i = 0; i < rule.when.size(); ++i) {
        if (i > 0) out += '+';
        out += condition_name(rule.when[i]);
      }
    }
    out += " position_s=" + std::to_string(rule.profile.position_interval.count());
    out += " sensor_s=" + std::to_string(rule.profile.sensor_interval.count());
    if (rule.profile.temperature_deadband_centi_c)
      out += " temperature_deadband_centi_c=" + std::to_string(*rule.profile.temperature_deadband_centi_c);
    if (rule.profile.position_deadband_m)
      out += " position_deadband_m=" + std::to_string(*rule.profile.position_deadband_m);
    out += '\n';
  }
  return out;
}

ProfileTable default_profiles() {
  auto t = parse_profiles(kDefaultProfilesText);
  return std::move(t).value();  // the built-in text is tested to parse
}

}  // namespace eport::custody

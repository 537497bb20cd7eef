// SPDX-License-Identifier: LGPL-2.1-or-later
#include "config.h"

#include <fnmatch.h>

#include <algorithm>
#include <sstream>

#include "request_name.h"

// Hand-written rather than inih: diagnostics need the line of every semantic error (an invalid
// module name in Modules=), which inih's handler is not told.

namespace lkmd {
namespace {

std::string_view trim(std::string_view text) {
    const std::size_t first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos)
        return {};
    const std::size_t last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

std::vector<std::string> words(std::string_view text) {
    std::vector<std::string> out;
    std::istringstream stream{std::string(text)};
    std::string word;
    while (stream >> word)
        out.push_back(word);
    return out;
}

bool isGlobChar(char c) {
    return c == '*' || c == '?' || c == '[' || c == ']' || c == '!';
}

std::string withoutGlobChars(const std::string &pattern) {
    std::string literal;
    for (char c : pattern)
        if (!isGlobChar(c))
            literal += c;
    return literal;
}

// A request pattern is valid when the name it would match with its glob characters removed is.
const char *whyInvalidRequestPattern(const std::string &pattern) {
    const std::string literal = withoutGlobChars(pattern);
    if (literal.empty())
        return pattern.empty() ? "empty pattern" : nullptr;
    return whyInvalidRequestName(literal);
}

// A module pattern holds module-name characters and glob characters only: a '.' would be cut
// by libkmod and never match.
const char *whyInvalidModulePattern(const std::string &pattern) {
    const std::string literal = withoutGlobChars(pattern);
    if (literal.empty())
        return pattern.empty() ? "empty pattern" : nullptr;
    return whyInvalidModuleName(literal);
}

// What one [Section] builds while its lines are read.
struct Reader {
    const std::string &file;
    Config &config;
    std::vector<ConfigDiagnostic> &diagnostics;
    const std::string &profile;
    std::string section;
    bool sectionValid = false;
    int line = 0;
    std::optional<Rule> rule;  // the [Rule] being read

    std::string here() const { return file + ":" + std::to_string(line); }
    void report(const std::string &message) { diagnostics.push_back({file, line, message}); }

    void finishRule() {
        if (!rule)
            return;
        if (rule->modules.empty() && rule->requests.empty())
            diagnostics.push_back(
                {file, std::stoi(rule->where.substr(rule->where.rfind(':') + 1)),
                 "[Rule] with neither Modules= nor Requests= is about nothing, ignoring it"});
        else if (rule->allows && !rule->profile.empty())
            diagnostics.push_back({file, std::stoi(rule->where.substr(rule->where.rfind(':') + 1)),
                                   "a profile cannot allow, ignoring the rule"});
        else
            config.policy.rules.push_back(std::move(*rule));
        rule.reset();
    }

    // Each value of a list on its own: a bad one is reported and skipped, the others count.
    template <typename Why, typename Add>
    void eachValue(const std::string &key, const std::vector<std::string> &values, Why why,
                   Add add) {
        for (const std::string &value : values) {
            if (const char *problem = why(value))
                report("invalid value '" + value + "' in " + key + "=: " + problem +
                       ", ignoring it");
            else
                add(value);
        }
    }

    void patterns(const std::string &key, const std::vector<std::string> &values, bool modules,
                  std::vector<Pattern> *list) {
        if (values.empty()) {
            list->clear();  // an empty assignment resets the list, as in systemd's units
            return;
        }
        eachValue(key, values, modules ? whyInvalidModulePattern : whyInvalidRequestPattern,
                  [&](const std::string &value) {
                      list->push_back({modules ? normalizeModuleName(value) : value, here()});
                  });
    }

    void deny(const std::string &key, const std::vector<std::string> &values) {
        Policy &policy = config.policy;
        if (key == "Modules")
            patterns(key, values, true, &policy.denyModules);
        else if (key == "Requests")
            patterns(key, values, false, &policy.denyRequests);
        else
            report("unknown key '" + key + "' in [Deny], ignoring it");
    }

    void requesters(const std::string &key, const std::vector<std::string> &values,
                    std::vector<RequesterMatch> *list) {
        if (values.empty())
            list->clear();
        for (const std::string &value : values) {
            RequesterMatch match;
            if (const char *why = parseRequesterMatch(value, &match))
                report("invalid value '" + value + "' in " + key + "=: " + why + ", ignoring it");
            else
                list->push_back(match);
        }
    }

    void ruleKey(const std::string &key, std::string_view rawValue,
                 const std::vector<std::string> &values) {
        if (key == "Modules")
            patterns(key, values, true, &rule->modules);
        else if (key == "Requests")
            patterns(key, values, false, &rule->requests);
        else if (key == "Requesters")
            requesters(key, values, &rule->requesters);
        else if (key == "Except")
            requesters(key, values, &rule->except);
        else if (key == "Reason")
            rule->reason = std::string(rawValue);
        else if (key == "Action" && (rawValue == "deny" || rawValue == "allow"))
            rule->allows = rawValue == "allow";
        else if (key == "Action")
            report("Action= takes deny or allow, ignoring it");
        else
            report("unknown key '" + key + "' in [Rule], ignoring it");
    }

    void policyKey(const std::string &key, const std::vector<std::string> &values) {
        Policy &policy = config.policy;
        if (key == "Mode") {
            PolicyMode mode;
            if (values.size() != 1 || !parsePolicyMode(values.front(), &mode)) {
                report("Mode= takes off, audit or enforce; keeping " +
                       std::string(policyModeName(policy.mode)));
                return;
            }
            policy.mode = mode;
            policy.modeWhere = here();
        } else if (key == "Allow") {
            // A name in the allow-list may be a request (class) or a module.
            if (values.empty())
                policy.allow.clear();
            eachValue(key, values, whyInvalidRequestPattern, [&](const std::string &value) {
                policy.allow.push_back({value, here()});
            });
        } else if (key == "DenyUserNamespaces") {
            // Sugar for a rule: these, from any user namespace but the host's.
            Rule sugar;
            sugar.requesters.push_back({RequesterMatch::Kind::UserNamespace, {}});
            sugar.where = here();
            sugar.reason = "requested from a user namespace (DenyUserNamespaces=)";
            for (const std::string &value : values) {
                const bool asModule = whyInvalidModulePattern(value) == nullptr;
                if (!asModule && whyInvalidRequestPattern(value) != nullptr) {
                    report("invalid value '" + value + "' in DenyUserNamespaces=, ignoring it");
                    continue;
                }
                if (asModule)
                    sugar.modules.push_back({normalizeModuleName(value), here()});
                sugar.requests.push_back({value, here()});
            }
            if (!sugar.requests.empty())
                policy.rules.push_back(std::move(sugar));
        } else if (key == "Profile") {
            if (values.empty())
                config.profiles.clear();
            for (const std::string &value : values) {
                const std::size_t colon = value.find(':');
                ProfileUse use{value.substr(0, colon), std::nullopt, here()};
                PolicyMode mode;
                if (colon != std::string::npos &&
                    !parsePolicyMode(value.substr(colon + 1), &mode)) {
                    report("invalid mode in Profile=" + value + ", ignoring it");
                    continue;
                }
                if (colon != std::string::npos)
                    use.mode = mode;
                if (whyInvalidModuleName(use.name) != nullptr) {
                    report("invalid profile name '" + use.name + "', ignoring it");
                    continue;
                }
                config.profiles.push_back(std::move(use));
            }
        } else if (key == "RequestLimitBurst") {
            unsigned long burst = 0;
            if (values.size() != 1 ||
                (burst = std::strtoul(values.front().c_str(), nullptr, 10)) == 0 ||
                burst > 1'000'000)
                report("RequestLimitBurst= takes a number from 1 to 1000000, ignoring it");
            else
                config.limit.burst = static_cast<std::uint32_t>(burst);
        } else if (key == "RequestLimitIntervalSec") {
            std::uint64_t usec = 0;
            if (values.empty() || !parseTimespan(joinedWords(values), &usec) || usec == 0)
                report("RequestLimitIntervalSec= takes a time span, ignoring it");
            else
                config.limit.intervalUsec = usec;
        } else {
            report("unknown key '" + key + "' in [Policy], ignoring it");
        }
    }

    static std::string joinedWords(const std::vector<std::string> &values) {
        std::string text;
        for (const std::string &value : values)
            text += (text.empty() ? "" : " ") + value;
        return text;
    }

    void hotplugKey(const std::string &key, const std::vector<std::string> &values) {
        HotplugSettings &hotplug = config.hotplug;
        const std::string value = values.size() == 1 ? values.front() : std::string();
        bool valid = true;
        if (key == "Mode")
            valid = parseHotplugMode(value, &hotplug.mode);
        else if (key == "Coldplug")
            valid = parseBoolean(value, &hotplug.coldplug);
        else if (key == "Source")
            valid = parseUeventSource(value, &hotplug.source);
        else
            report("unknown key '" + key + "' in [Hotplug], ignoring it");
        if (!valid)
            report("invalid value for " + key + "=, ignoring it");
    }

    void autocleanKey(const std::string &key, const std::vector<std::string> &values) {
        AutocleanSettings &autoclean = config.autoclean;
        if (key == "IdleTimeout") {
            std::uint64_t usec = 0;
            if (!parseTimespan(joinedWords(values), &usec))
                report("invalid time span for IdleTimeout=, keeping " +
                       formatTimespan(autoclean.idleTimeoutUsec));
            else
                autoclean.idleTimeoutUsec = usec;
        } else if (key == "Keep") {
            if (values.empty())
                autoclean.keep.clear();
            eachValue(
                key, values, [](const std::string &v) { return whyInvalidModuleName(v); },
                [&](const std::string &value) {
                    autoclean.keep.push_back(normalizeModuleName(value));
                });
        } else if (key == "ModuleTimeout" || key == "RequestTimeout") {
            const bool perModule = key == "ModuleTimeout";
            auto &list = perModule ? autoclean.moduleTimeouts : autoclean.requestTimeouts;
            if (values.empty())
                list.clear();
            for (const std::string &value : values) {
                const std::size_t colon = value.rfind(':');
                std::uint64_t usec = 0;
                const std::string name = colon == std::string::npos ? "" : value.substr(0, colon);
                const char *why = name.empty() ? "expected NAME:DURATION"
                                  : perModule  ? whyInvalidModuleName(name)
                                               : whyInvalidRequestPattern(name);
                if (why == nullptr && !parseTimespan(value.substr(colon + 1), &usec))
                    why = "invalid time span";
                if (why != nullptr)
                    report("invalid entry '" + value + "' in " + key + "=: " + why +
                           ", ignoring it");
                else
                    list.emplace_back(perModule ? normalizeModuleName(name) : name, usec);
            }
        } else {
            report("unknown key '" + key + "' in [Autoclean], ignoring it");
        }
    }

    void header(std::string_view text) {
        finishRule();
        if (text.back() != ']' || text.size() < 3) {
            report("malformed section header '" + std::string(text) +
                   "', ignoring the lines up to the next section");
            sectionValid = false;
            return;
        }
        section = std::string(text.substr(1, text.size() - 2));
        sectionValid = true;
        static const char *kSections[] = {"Deny", "Policy", "Rule", "Hotplug", "Autoclean"};
        if (std::find(std::begin(kSections), std::end(kSections), section) == std::end(kSections)) {
            report("unknown section [" + section + "], ignoring it");
            sectionValid = false;
        } else if (!profile.empty() && section != "Rule") {
            report("a profile holds [Rule] sections only, ignoring [" + section + "]");
            sectionValid = false;
        } else if (section == "Rule") {
            rule.emplace();
            rule->where = here();
            rule->profile = profile;
        }
    }

    void assignment(std::string_view text) {
        const std::size_t equals = text.find('=');
        if (equals == std::string_view::npos) {
            report("expected Key=Value, got '" + std::string(text) + "', ignoring it");
            return;
        }
        if (!sectionValid) {
            if (section.empty())
                report("'" + std::string(trim(text.substr(0, equals))) +
                       "' outside of a section, ignoring it");
            return;  // an unusable section was reported once, at its header
        }
        const std::string key(trim(text.substr(0, equals)));
        const std::string_view rawValue = trim(text.substr(equals + 1));
        const std::vector<std::string> values = words(rawValue);
        if (section == "Deny")
            deny(key, values);
        else if (section == "Rule")
            ruleKey(key, rawValue, values);
        else if (section == "Policy")
            policyKey(key, values);
        else if (section == "Hotplug")
            hotplugKey(key, values);
        else if (section == "Autoclean")
            autocleanKey(key, values);
    }
};

}  // namespace

bool parseHotplugMode(std::string_view text, HotplugMode *mode) {
    if (text == "load")
        *mode = HotplugMode::Load;
    else if (text == "observe")
        *mode = HotplugMode::Observe;
    else if (text == "off")
        *mode = HotplugMode::Off;
    else
        return false;
    return true;
}

bool parseUeventSource(std::string_view text, UeventSourceKind *source) {
    if (text == "auto")
        *source = UeventSourceKind::Auto;
    else if (text == "kernel")
        *source = UeventSourceKind::Kernel;
    else if (text == "udev")
        *source = UeventSourceKind::Udev;
    else
        return false;
    return true;
}

bool parseBoolean(std::string_view text, bool *value) {
    if (text == "yes" || text == "true" || text == "1" || text == "on")
        *value = true;
    else if (text == "no" || text == "false" || text == "0" || text == "off")
        *value = false;
    else
        return false;
    return true;
}

std::uint64_t AutocleanSettings::timeoutFor(const std::string &module,
                                            const std::string &trigger) const {
    for (const auto &[name, usec] : moduleTimeouts)
        if (name == module)
            return usec;
    for (const auto &[pattern, usec] : requestTimeouts)
        if (fnmatch(pattern.c_str(), trigger.c_str(), 0) == 0)
            return usec;
    return idleTimeoutUsec;
}

bool AutocleanSettings::keeps(const std::string &module) const {
    return std::find(keep.begin(), keep.end(), module) != keep.end();
}

std::string formatDiagnostic(const ConfigDiagnostic &diagnostic) {
    std::string text = diagnostic.file;
    if (diagnostic.line > 0)
        text += ":" + std::to_string(diagnostic.line);
    return text + ": " + diagnostic.message;
}

void parseConfigText(std::string_view text, const std::string &file, Config *config,
                     std::vector<ConfigDiagnostic> *diagnostics, const std::string &profile) {
    Reader reader{file, *config, *diagnostics, profile};
    while (!text.empty()) {
        ++reader.line;
        const std::size_t newline = text.find('\n');
        const std::string_view line = trim(text.substr(0, newline));
        text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
        if (line.empty() || line[0] == '#' || line[0] == ';')
            continue;
        if (line[0] == '[')
            reader.header(line);
        else
            reader.assignment(line);
    }
    reader.finishRule();
}

}  // namespace lkmd

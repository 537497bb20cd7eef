// SPDX-License-Identifier: LGPL-2.1-or-later
#include "config.h"

#include <fnmatch.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "kernel_state.h"
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

// A pattern is valid when the name it would match with its glob characters removed is valid.
const char *whyInvalidPattern(const std::string &pattern) {
    std::string literal;
    for (char c : pattern)
        if (!isGlobChar(c))
            literal += c;
    if (literal.empty())
        return pattern.empty() ? "empty pattern" : nullptr;
    return whyInvalidRequestName(literal);
}

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

bool parseDuration(std::string_view text, std::uint64_t *usec) {
    if (text == "never" || text == "infinity") {
        *usec = kNever;
        return true;
    }
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    if (digits == 0 || digits > 9)
        return false;
    const std::uint64_t number = std::stoull(std::string(text.substr(0, digits)));
    const std::string_view unit = text.substr(digits);
    std::uint64_t scale;
    if (unit.empty() || unit == "s" || unit == "sec")
        scale = 1'000'000;
    else if (unit == "ms")
        scale = 1'000;
    else if (unit == "min" || unit == "m")
        scale = 60'000'000;
    else if (unit == "h")
        scale = 3'600'000'000;
    else
        return false;
    *usec = number * scale;
    return true;
}

std::string formatDuration(std::uint64_t usec) {
    if (usec == kNever)
        return "never";
    if (usec % 1'000'000 != 0)
        return std::to_string(usec / 1000) + "ms";
    return std::to_string(usec / 1'000'000) + "s";
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

const std::string *Policy::ruleDenyingRequest(std::string_view request) const {
    const std::string name(request);
    for (const std::string &pattern : denyRequests)
        if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0)
            return &pattern;
    return nullptr;
}

bool Policy::deniesModule(const std::string &module) const {
    return std::find(denyModules.begin(), denyModules.end(), normalizeModuleName(module)) !=
           denyModules.end();
}

std::string formatDiagnostic(const ConfigDiagnostic &diagnostic) {
    std::string text = diagnostic.file;
    if (diagnostic.line > 0)
        text += ":" + std::to_string(diagnostic.line);
    return text + ": " + diagnostic.message + (diagnostic.fatal ? ", ignoring the file" : "");
}

bool parseConfigText(std::string_view text, const std::string &file, Config *config,
                     std::vector<ConfigDiagnostic> *diagnostics) {
    Config parsed = *config;
    std::string section;
    bool ok = true;
    int number = 0;
    auto report = [&](const std::string &message, bool fatal) {
        diagnostics->push_back({file, number, message, fatal});
        ok = ok && !fatal;
    };

    while (!text.empty()) {
        ++number;
        const std::size_t newline = text.find('\n');
        const std::string_view line = trim(text.substr(0, newline));
        text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
        if (line.empty() || line[0] == '#' || line[0] == ';')
            continue;
        if (line[0] == '[') {
            if (line.back() != ']' || line.size() < 3) {
                report("malformed section header '" + std::string(line) + "'", true);
                continue;
            }
            section = std::string(line.substr(1, line.size() - 2));
            if (section != "Deny" && section != "Hotplug" && section != "Autoclean")
                report("unknown section [" + section + "]", false);
            continue;
        }
        const std::size_t equals = line.find('=');
        if (equals == std::string_view::npos) {
            report("expected Key=Value, got '" + std::string(line) + "'", true);
            continue;
        }
        const std::string key(trim(line.substr(0, equals)));
        const std::vector<std::string> values = words(line.substr(equals + 1));
        if (section.empty()) {
            report("'" + key + "' outside of a section", true);
            continue;
        }
        if (section == "Hotplug") {
            const std::string value = values.size() == 1 ? values.front() : std::string();
            bool valid = true;
            if (key == "Mode")
                valid = parseHotplugMode(value, &parsed.hotplug.mode);
            else if (key == "Coldplug")
                valid = parseBoolean(value, &parsed.hotplug.coldplug);
            else if (key == "Source")
                valid = parseUeventSource(value, &parsed.hotplug.source);
            else
                report("unknown key '" + key + "' in [Hotplug]", false);
            if (!valid)
                report("invalid value for " + key + "=", true);
            continue;
        }
        if (section == "Autoclean") {
            AutocleanSettings &autoclean = parsed.autoclean;
            if (key == "IdleTimeout") {
                if (values.size() != 1 ||
                    !parseDuration(values.front(), &autoclean.idleTimeoutUsec))
                    report("invalid duration for IdleTimeout=", true);
            } else if (key == "Keep") {
                if (values.empty())
                    autoclean.keep.clear();
                for (const std::string &value : values) {
                    if (const char *why = whyInvalidRequestName(value))
                        report("invalid module name '" + value + "' in Keep=: " + why, true);
                    else
                        autoclean.keep.push_back(normalizeModuleName(value));
                }
            } else if (key == "ModuleTimeout" || key == "RequestTimeout") {
                const bool perModule = key == "ModuleTimeout";
                auto &list = perModule ? autoclean.moduleTimeouts : autoclean.requestTimeouts;
                if (values.empty())
                    list.clear();
                for (const std::string &value : values) {
                    const std::size_t colon = value.rfind(':');
                    std::uint64_t usec = 0;
                    const std::string name =
                        colon == std::string::npos ? "" : value.substr(0, colon);
                    const char *why = name.empty() ? "expected NAME:DURATION"
                                      : perModule  ? whyInvalidRequestName(name)
                                                   : whyInvalidPattern(name);
                    if (why == nullptr && !parseDuration(value.substr(colon + 1), &usec))
                        why = "invalid duration";
                    if (why != nullptr)
                        report("invalid entry '" + value + "' in " + key + "=: " + why, true);
                    else
                        list.emplace_back(perModule ? normalizeModuleName(name) : name, usec);
                }
            } else {
                report("unknown key '" + key + "' in [Autoclean]", false);
            }
            continue;
        }
        if (section != "Deny")
            continue;

        // An empty assignment resets the list, as in systemd's unit files.
        if (key == "Modules") {
            if (values.empty())
                parsed.policy.denyModules.clear();
            for (const std::string &value : values) {
                if (const char *why = whyInvalidRequestName(value))
                    report("invalid module name '" + value + "' in Modules=: " + why, true);
                else
                    parsed.policy.denyModules.push_back(normalizeModuleName(value));
            }
        } else if (key == "Requests") {
            if (values.empty())
                parsed.policy.denyRequests.clear();
            for (const std::string &value : values) {
                if (const char *why = whyInvalidPattern(value))
                    report("invalid pattern '" + value + "' in Requests=: " + why, true);
                else
                    parsed.policy.denyRequests.push_back(value);
            }
        } else {
            report("unknown key '" + key + "' in [Deny]", false);
        }
    }
    if (ok)
        *config = std::move(parsed);
    else
        diagnostics->push_back({file, 0, "file has errors", true});
    return ok;
}

Config loadConfig(const std::filesystem::path &dir, std::vector<ConfigDiagnostic> *diagnostics) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    std::error_code ec;
    if (fs::is_regular_file(dir / "lkmd.conf", ec))
        files.push_back(dir / "lkmd.conf");
    std::vector<fs::path> dropIns;
    for (const fs::directory_entry &entry : fs::directory_iterator(dir / "lkmd.conf.d", ec))
        if (entry.path().extension() == ".conf" && entry.is_regular_file(ec))
            dropIns.push_back(entry.path());
    std::sort(dropIns.begin(), dropIns.end());
    files.insert(files.end(), dropIns.begin(), dropIns.end());

    Config config;
    for (const fs::path &path : files) {
        std::ifstream in(path);
        if (!in) {
            diagnostics->push_back({path.string(), 0, "cannot be read", true});
            continue;
        }
        std::ostringstream text;
        text << in.rdbuf();
        parseConfigText(text.str(), path.string(), &config, diagnostics);
    }
    return config;
}

}  // namespace lkmd

// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy.h"
#include "timespan.h"

namespace lkmd {

enum class HotplugMode { Load, Observe, Off };
enum class UeventSourceKind { Auto, Kernel, Udev };

struct HotplugSettings {
    HotplugMode mode = HotplugMode::Load;  // observe: log what would be loaded, load nothing
    bool coldplug = true;                  // at start, for devices present without a driver
    UeventSourceKind source = UeventSourceKind::Auto;
};

// Parse the values of --hotplug=, --coldplug=, --uevent-source= and of [Hotplug]'s keys.
bool parseHotplugMode(std::string_view text, HotplugMode *mode);
bool parseUeventSource(std::string_view text, UeventSourceKind *source);
bool parseBoolean(std::string_view text, bool *value);

// When lkmd unloads what it loaded on demand (kerneld's idle sweep; docs/kernel.md,
// "Unloading").
struct AutocleanSettings {
    std::uint64_t idleTimeoutUsec = 60'000'000;                          // kerneld's 60 s
    std::vector<std::string> keep;                                       // normalized module names
    std::vector<std::pair<std::string, std::uint64_t>> moduleTimeouts;   // module -> usec
    std::vector<std::pair<std::string, std::uint64_t>> requestTimeouts;  // trigger glob -> usec

    // A module's own timeout, else its trigger's class, else the default; kNever: never.
    std::uint64_t timeoutFor(const std::string &module, const std::string &trigger) const;
    bool keeps(const std::string &module) const;
};

// How many refused or unanswerable requests one requester may make (a token bucket per uid):
// beyond it lkmd answers at once, without a lookup.
struct RequestLimit {
    std::uint32_t burst = 64;
    std::uint64_t intervalUsec = 10'000'000;  // burst more tokens come back each interval
};

struct ConfigDiagnostic {
    std::string file;
    int line = 0;  // 0: about the file as a whole
    std::string message;
};

std::string formatDiagnostic(const ConfigDiagnostic &diagnostic);

// A profile a configuration enables: [Policy] Profile=NAME[:MODE].
struct ProfileUse {
    std::string name;
    std::optional<PolicyMode> mode;  // empty: the policy's Mode=
    std::string where;
};

struct Config {
    Policy policy;
    HotplugSettings hotplug;
    AutocleanSettings autoclean;
    RequestLimit limit;
    std::vector<ProfileUse> profiles;
    std::vector<std::string> files;  // what was read, in order
};

// Applies every valid line of text to *config. A bad line, or a bad value in a list, is
// reported with file and line and skipped; the rest applies, so that a typo never costs the
// rules around it. profile: the text is that profile (only [Rule] sections count).
void parseConfigText(std::string_view text, const std::string &file, Config *config,
                     std::vector<ConfigDiagnostic> *diagnostics, const std::string &profile = {});

// Where configuration is looked for, highest precedence first, as in systemd: /etc/lkmd (the
// administrator's), /run/lkmd (generated at runtime), /usr/lib/lkmd (the package's).
struct ConfigSearch {
    std::vector<std::filesystem::path> dirs;
};

// lkmd.conf from the first directory that has one; then every *.conf of every lkmd.conf.d/,
// ordered by file name, a name in a higher directory hiding the same name in lower ones (a link
// to /dev/null or an empty file masks it); then the profiles they enable, from profiles/NAME.conf
// in the first directory that has it. Missing files and directories are an empty configuration.
Config loadConfig(const ConfigSearch &search, std::vector<ConfigDiagnostic> *diagnostics);

}  // namespace lkmd

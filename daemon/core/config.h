// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace lkmd {

// What lkmd refuses to load. Unlike kmod's "blacklist", which only hides a module's aliases, a
// denied module is refused by name, by alias and as a dependency of another module.
struct Policy {
    std::vector<std::string> denyModules;   // normalized module names
    std::vector<std::string> denyRequests;  // shell globs over the requested name

    // The Requests= pattern that denies request, or nullptr.
    const std::string *ruleDenyingRequest(std::string_view request) const;
    bool deniesModule(const std::string &module) const;
};

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

inline constexpr std::uint64_t kNever = UINT64_MAX;

// When lkmd unloads what it loaded on demand (kerneld's idle sweep; docs/kernel.md, "Unloading").
struct AutocleanSettings {
    std::uint64_t idleTimeoutUsec = 60'000'000;                          // kerneld's 60 s
    std::vector<std::string> keep;                                       // normalized module names
    std::vector<std::pair<std::string, std::uint64_t>> moduleTimeouts;   // module -> usec
    std::vector<std::pair<std::string, std::uint64_t>> requestTimeouts;  // trigger glob -> usec

    // A module's own timeout, else its trigger's class, else the default; kNever: never.
    std::uint64_t timeoutFor(const std::string &module, const std::string &trigger) const;
    bool keeps(const std::string &module) const;
};

// "60s", "500ms", "5min", "1h", a bare number of seconds, or "never" (kNever).
bool parseDuration(std::string_view text, std::uint64_t *usec);
std::string formatDuration(std::uint64_t usec);

struct Config {
    Policy policy;
    HotplugSettings hotplug;
    AutocleanSettings autoclean;
};

struct ConfigDiagnostic {
    std::string file;
    int line = 0;
    std::string message;
    bool fatal = false;  // the file was skipped
};

std::string formatDiagnostic(const ConfigDiagnostic &diagnostic);

// Parses one file into *config. A file with any fatal error leaves *config untouched, so that no
// policy is ever half-read; unknown sections and keys are reported and ignored.
bool parseConfigText(std::string_view text, const std::string &file, Config *config,
                     std::vector<ConfigDiagnostic> *diagnostics);

// dir/lkmd.conf, then dir/lkmd.conf.d/*.conf in lexical order, later files adding to earlier
// ones. A missing directory or file is an empty configuration.
Config loadConfig(const std::filesystem::path &dir, std::vector<ConfigDiagnostic> *diagnostics);

}  // namespace lkmd

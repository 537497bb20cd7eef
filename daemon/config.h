// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

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

struct Config {
    Policy policy;
    HotplugSettings hotplug;
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

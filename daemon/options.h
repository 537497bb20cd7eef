// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <spdlog/common.h>

#include "build_config.h"
#include "config.h"

namespace lkmd {

struct Options {
    std::filesystem::path sysfs = "/sys";
    std::filesystem::path procfs = "/proc";
    std::filesystem::path moduleDir;  // empty: libkmod's default, /lib/modules/$(uname -r)
    std::filesystem::path runtimeDir = LKMD_RUNTIME_DIR;
    std::filesystem::path configDir = LKMD_CONFIG_DIR;
    std::filesystem::path vendorConfigDir = LKMD_VENDOR_DIR;
    std::filesystem::path stateDir = LKMD_STATE_DIR;  // what outlives a reboot: the load history
    std::filesystem::path tracefs = "/sys/kernel/tracing";
    std::filesystem::path metricsDir = "/var/lib/prometheus/node-exporter";
    std::filesystem::path modprobeDir = "/run/modprobe.d";
    spdlog::level::level_enum logLevel = spdlog::level::info;
    // Given on the command line: these override the configuration file.
    std::optional<HotplugMode> hotplug;
    std::optional<bool> coldplug;
    std::optional<UeventSourceKind> ueventSource;
    bool sysfsGiven = false;
    bool procfsGiven = false;
};

enum class ParseResult { Run, ExitSuccess, UsageError };

// Prints --help and --version output to stdout; on a usage error fills *error.
ParseResult parseOptions(int argc, char **argv, Options *options, std::string *error);

// Where configuration is looked for: --config-dir (/etc/lkmd), --runtime-dir (/run/lkmd),
// --vendor-config-dir (/usr/lib/lkmd), in that order of precedence.
ConfigSearch configSearch(const Options &options);

// The [Hotplug] settings in force: the configuration's, with what the command line gave on top
// (also on reload).
HotplugSettings effectiveHotplug(const Config &config, const Options &options);

}  // namespace lkmd

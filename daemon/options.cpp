// SPDX-License-Identifier: LGPL-2.1-or-later
#include "options.h"

#include <getopt.h>

#include <cstdio>

#include "build_config.h"

namespace lkmd {
namespace {

enum : int {
    kOptSysfs = 0x100,
    kOptProcfs,
    kOptModuleDir,
    kOptRuntimeDir,
    kOptConfigDir,
    kOptVendorConfigDir,
    kOptStateDir,
    kOptTracefs,
    kOptMetricsDir,
    kOptModprobeDir,
    kOptHotplug,
    kOptColdplug,
    kOptUeventSource,
    kOptLogLevel,
    kOptVersion,
};

void printHelp() {
    std::printf(
        "Usage: lkmd [OPTIONS]\n"
        "Load kernel modules on demand and serve org.lkmd1 on the system bus.\n\n"
        "  -h --help              Show this help and exit\n"
        "     --version           Show the version and exit\n"
        "     --log-level=LEVEL   trace, debug, info, warning or error (default: info)\n"
        "     --sysfs=DIR         Where sysfs is mounted (default: /sys)\n"
        "     --procfs=DIR        Where procfs is mounted (default: /proc)\n"
        "     --module-dir=DIR    Module tree (default: /lib/modules/$(uname -r))\n"
        "     --runtime-dir=DIR   State and the kernel-request socket (default: %s)\n"
        "     --config-dir=DIR    The administrator's lkmd.conf, lkmd.conf.d/ and profiles/\n"
        "                         (default: %s)\n"
        "     --vendor-config-dir=DIR  The package's (default: %s)\n"
        "     --state-dir=DIR     The load history, kept across reboots (default: %s)\n"
        "     --tracefs=DIR       Where tracefs is mounted, to learn who made each kernel\n"
        "                         request (default: /sys/kernel/tracing)\n"
        "     --modprobe-d-dir=DIR  Where kmod learns what lkmd refuses (default:\n"
        "                         /run/modprobe.d)\n"
        "     --metrics-dir=DIR   Write lkmd.prom there for node-exporter, if DIR exists\n"
        "                         (default: /var/lib/prometheus/node-exporter)\n"
        "     --hotplug=MODE      load, observe or off: what to do for new devices\n"
        "     --coldplug=BOOL     Load drivers for devices present at start (default: yes)\n"
        "     --uevent-source=SRC auto, kernel or udev (default: auto)\n",
        LKMD_RUNTIME_DIR, LKMD_CONFIG_DIR, LKMD_VENDOR_DIR, LKMD_STATE_DIR);
}

bool parseLevel(const std::string &text, spdlog::level::level_enum *level) {
    if (text == "trace")
        *level = spdlog::level::trace;
    else if (text == "debug")
        *level = spdlog::level::debug;
    else if (text == "info")
        *level = spdlog::level::info;
    else if (text == "warning")
        *level = spdlog::level::warn;
    else if (text == "error")
        *level = spdlog::level::err;
    else
        return false;
    return true;
}

}  // namespace

ParseResult parseOptions(int argc, char **argv, Options *options, std::string *error) {
    static const option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, kOptVersion},
        {"log-level", required_argument, nullptr, kOptLogLevel},
        {"sysfs", required_argument, nullptr, kOptSysfs},
        {"procfs", required_argument, nullptr, kOptProcfs},
        {"module-dir", required_argument, nullptr, kOptModuleDir},
        {"runtime-dir", required_argument, nullptr, kOptRuntimeDir},
        {"config-dir", required_argument, nullptr, kOptConfigDir},
        {"vendor-config-dir", required_argument, nullptr, kOptVendorConfigDir},
        {"state-dir", required_argument, nullptr, kOptStateDir},
        {"tracefs", required_argument, nullptr, kOptTracefs},
        {"metrics-dir", required_argument, nullptr, kOptMetricsDir},
        {"modprobe-d-dir", required_argument, nullptr, kOptModprobeDir},
        {"hotplug", required_argument, nullptr, kOptHotplug},
        {"coldplug", required_argument, nullptr, kOptColdplug},
        {"uevent-source", required_argument, nullptr, kOptUeventSource},
        {nullptr, 0, nullptr, 0},
    };
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", kLongOptions, nullptr)) >= 0) {
        switch (c) {
            case 'h':
                printHelp();
                return ParseResult::ExitSuccess;
            case kOptVersion:
                std::printf("lkmd %s\n", LKMD_VERSION);
                return ParseResult::ExitSuccess;
            case kOptLogLevel:
                if (!parseLevel(optarg, &options->logLevel)) {
                    *error = std::string("unknown log level '") + optarg + "'";
                    return ParseResult::UsageError;
                }
                break;
            case kOptSysfs:
                options->sysfs = optarg;
                options->sysfsGiven = true;
                break;
            case kOptProcfs:
                options->procfs = optarg;
                options->procfsGiven = true;
                break;
            case kOptModuleDir:
                options->moduleDir = optarg;
                break;
            case kOptRuntimeDir:
                options->runtimeDir = optarg;
                break;
            case kOptConfigDir:
                options->configDir = optarg;
                break;
            case kOptVendorConfigDir:
                options->vendorConfigDir = optarg;
                break;
            case kOptStateDir:
                options->stateDir = optarg;
                break;
            case kOptTracefs:
                options->tracefs = optarg;
                break;
            case kOptMetricsDir:
                options->metricsDir = optarg;
                break;
            case kOptModprobeDir:
                options->modprobeDir = optarg;
                break;
            case kOptHotplug: {
                HotplugMode mode;
                if (!parseHotplugMode(optarg, &mode)) {
                    *error =
                        std::string("--hotplug takes load, observe or off, not '") + optarg + "'";
                    return ParseResult::UsageError;
                }
                options->hotplug = mode;
                break;
            }
            case kOptColdplug: {
                bool enabled;
                if (!parseBoolean(optarg, &enabled)) {
                    *error = std::string("--coldplug takes yes or no, not '") + optarg + "'";
                    return ParseResult::UsageError;
                }
                options->coldplug = enabled;
                break;
            }
            case kOptUeventSource: {
                UeventSourceKind source;
                if (!parseUeventSource(optarg, &source)) {
                    *error = std::string("--uevent-source takes auto, kernel or udev, not '") +
                             optarg + "'";
                    return ParseResult::UsageError;
                }
                options->ueventSource = source;
                break;
            }
            default:
                *error = optopt != 0 ? std::string("unknown or incomplete option '-") +
                                           static_cast<char>(optopt) + "'"
                                     : std::string("unknown or incomplete option '") +
                                           argv[optind - 1] + "'";
                return ParseResult::UsageError;
        }
    }
    if (optind < argc) {
        *error = std::string("unexpected argument '") + argv[optind] + "'";
        return ParseResult::UsageError;
    }
    return ParseResult::Run;
}

ConfigSearch configSearch(const Options &options) {
    return {{options.configDir, options.runtimeDir, options.vendorConfigDir}};
}

HotplugSettings effectiveHotplug(const Config &config, const Options &options) {
    HotplugSettings settings = config.hotplug;
    if (options.hotplug)
        settings.mode = *options.hotplug;
    if (options.coldplug)
        settings.coldplug = *options.coldplug;
    if (options.ueventSource)
        settings.source = *options.ueventSource;
    return settings;
}

}  // namespace lkmd

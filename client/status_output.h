// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "module_info.h"
#include "property_map.h"

namespace lkmd::client {

// org.lkmd1.Manager's properties (keys documented in org.lkmd1.Manager.xml). An lkmd older than
// lkmctl leaves out what it does not have; the defaults then say "unknown".
struct DaemonStatus {
    std::string version;
    std::uint64_t startedAtUsec = 0;
    std::string hotplugMode;
    bool idleTimeoutKnown = false;
    std::uint64_t idleTimeoutUsec = 0;  // UINT64_MAX: never
    std::vector<std::string> configFiles;
    std::vector<std::string> configErrors;
    std::string kernelModprobe;
    bool kernelModprobeIsLkmd = false;
    std::string modprobeHelper;
    std::vector<std::string> staticUsermodeHelper;  // empty, or the one program (maybe "")
    Counts requestCounts;
};

DaemonStatus daemonStatusFromProperties(const PropertyMap &properties);

// What the kernel does with its module requests, in one line, and whether that is a problem:
// none (they reach lkmd), a warning (they bypass it) or an error (the kernel runs another program
// or none at all, whatever kernel.modprobe says).
enum class HelperVerdict { Lkmd, Bypassed, Unknown, Overridden };
HelperVerdict helperVerdict(const DaemonStatus &status);
std::string describeKernelHelper(const DaemonStatus &status);

// systemctl status's shape: a headline with a dot, then "Key: value" lines; colours on
// failures (config errors, a kernel that ignores kernel.modprobe) when colors is set.
std::string formatStatus(const DaemonStatus &status, const std::vector<ModuleInfo> &modules,
                         std::uint64_t nowUsec, bool colors = false);
nlohmann::ordered_json statusJson(const DaemonStatus &status,
                                  const std::vector<ModuleInfo> &modules);

// When lkmd does not run: what status prints, and its JSON.
std::string formatNotRunning();
nlohmann::ordered_json notRunningJson();

}  // namespace lkmd::client

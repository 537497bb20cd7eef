// SPDX-License-Identifier: LGPL-2.1-or-later
#include "status_output.h"

#include <algorithm>
#include <utility>

#include "output.h"
#include "table.h"
#include "text.h"
#include "time_format.h"

namespace lkmd::client {
namespace {

constexpr std::uint64_t kNeverUsec = UINT64_MAX;

std::string idleTimeoutText(const DaemonStatus &status) {
    if (!status.idleTimeoutKnown)
        return "-";
    return status.idleTimeoutUsec == kNeverUsec ? "never" : formatDuration(status.idleTimeoutUsec);
}

std::string joinedLines(const std::vector<std::string> &items, const char *none) {
    std::string text;
    for (const std::string &item : items)
        text += (text.empty() ? "" : "\n") + item;
    return text.empty() ? none : text;
}

// "42 loaded, 3 by lkmd (1 pinned)".
std::string modulesText(const std::vector<ModuleInfo> &modules) {
    const auto byLkmd = std::count_if(modules.begin(), modules.end(), isLoadedByLkmd);
    const auto pinned =
        std::count_if(modules.begin(), modules.end(), [](const ModuleInfo &m) { return m.pinned; });
    std::string text =
        std::to_string(modules.size()) + " loaded, " + std::to_string(byLkmd) + " of them by lkmd";
    if (pinned > 0)
        text += " (" + std::to_string(pinned) + " pinned)";
    return text;
}

// "17 answered: 12 loaded, 3 present, 2 not-found".
std::string requestsText(const Counts &counts) {
    std::uint64_t total = 0;
    std::string parts;
    for (const auto &[result, count] : counts) {
        total += count;
        parts += (parts.empty() ? "" : ", ") + std::to_string(count) + " " + result;
    }
    return std::to_string(total) + " answered" + (parts.empty() ? "" : ": " + parts);
}

}  // namespace

DaemonStatus daemonStatusFromProperties(const PropertyMap &properties) {
    DaemonStatus status;
    assignString(properties, "Version", status.version);
    assignInteger(properties, "StartedAt", status.startedAtUsec);
    assignString(properties, "HotplugMode", status.hotplugMode);
    if (const auto timeout = integerProperty<std::uint64_t>(properties, "IdleTimeoutUsec")) {
        status.idleTimeoutKnown = true;
        status.idleTimeoutUsec = *timeout;
    }
    assignStrings(properties, "ConfigFiles", status.configFiles);
    assignStrings(properties, "ConfigErrors", status.configErrors);
    assignString(properties, "KernelModprobe", status.kernelModprobe);
    assignBool(properties, "KernelModprobeIsLkmd", status.kernelModprobeIsLkmd);
    assignString(properties, "ModprobeHelper", status.modprobeHelper);
    assignStrings(properties, "StaticUsermodeHelper", status.staticUsermodeHelper);
    assignCounts(properties, "RequestCounts", status.requestCounts);
    return status;
}

HelperVerdict helperVerdict(const DaemonStatus &status) {
    if (!status.staticUsermodeHelper.empty())
        return HelperVerdict::Overridden;
    if (status.kernelModprobeIsLkmd)
        return HelperVerdict::Lkmd;
    return status.kernelModprobe.empty() ? HelperVerdict::Unknown : HelperVerdict::Bypassed;
}

std::string describeKernelHelper(const DaemonStatus &status) {
    switch (helperVerdict(status)) {
        case HelperVerdict::Overridden: {
            const std::string &program = status.staticUsermodeHelper.front();
            if (program.empty())
                return "ignored: the kernel runs no helper at all "
                       "(CONFIG_STATIC_USERMODEHELPER with an empty path)";
            return "ignored: the kernel runs " + program +
                   " for every helper (CONFIG_STATIC_USERMODEHELPER)";
        }
        case HelperVerdict::Lkmd:
            return status.kernelModprobe + " (lkmd's helper: the kernel's requests reach lkmd)";
        case HelperVerdict::Bypassed:
            return status.kernelModprobe + " (not " +
                   (status.modprobeHelper.empty() ? "lkmd-modprobe" : status.modprobeHelper) +
                   ": the kernel's requests bypass lkmd)";
        case HelperVerdict::Unknown:
            break;
    }
    return "unknown (cannot read /proc/sys/kernel/modprobe)";
}

std::string formatStatus(const DaemonStatus &status, const std::vector<ModuleInfo> &modules,
                         std::uint64_t nowUsec, bool colors) {
    const HelperVerdict verdict = helperVerdict(status);
    const Color helperColor = verdict == HelperVerdict::Overridden ? Color::Red
                              : verdict == HelperVerdict::Lkmd     ? Color::None
                                                                   : Color::Yellow;
    std::vector<std::pair<std::string, std::string>> lines = {
        {"Active",
         status.startedAtUsec == 0
             ? std::string("running")
             : "running since " + formatTimestampAndRelative(status.startedAtUsec, nowUsec)},
        {"Hotplug", status.hotplugMode.empty() ? "-" : status.hotplugMode},
        {"Idle timeout", idleTimeoutText(status)},
        {"kernel.modprobe", describeKernelHelper(status)},
        {"Config", joinedLines(status.configFiles, "none (built-in defaults)")},
    };
    std::vector<Color> lineColors = {Color::Green, Color::None, Color::None, helperColor,
                                     Color::None};
    if (!status.configErrors.empty()) {
        lines.emplace_back("Config errors", joinedLines(status.configErrors, ""));
        lineColors.push_back(Color::Red);
    }
    lines.emplace_back("Modules", modulesText(modules));
    lines.emplace_back("Requests", requestsText(status.requestCounts));
    return colored("●", Color::Green, colors) + " lkmd " + escapeForTerminal(status.version) +
           " on org.lkmd1\n" + formatKeyValueLines(lines, lineColors, colors);
}

nlohmann::ordered_json statusJson(const DaemonStatus &status,
                                  const std::vector<ModuleInfo> &modules) {
    nlohmann::ordered_json counts = nlohmann::ordered_json::object();
    for (const auto &[result, count] : status.requestCounts)
        counts[result] = count;
    return {
        {"version", status.version},
        {"modules", modules.size()},
        {"loaded_by_lkmd", std::count_if(modules.begin(), modules.end(), isLoadedByLkmd)},
        {"running", true},
        {"started_at", isoTimeJson(status.startedAtUsec)},
        {"started_at_usec", status.startedAtUsec},
        {"hotplug_mode", status.hotplugMode},
        {"idle_timeout_usec", status.idleTimeoutKnown && status.idleTimeoutUsec != kNeverUsec
                                  ? nlohmann::ordered_json(status.idleTimeoutUsec)
                                  : nlohmann::ordered_json(nullptr)},
        {"kernel_modprobe", status.kernelModprobe},
        {"kernel_modprobe_is_lkmd", status.kernelModprobeIsLkmd},
        {"modprobe_helper", status.modprobeHelper},
        {"static_usermode_helper", status.staticUsermodeHelper.empty()
                                       ? nlohmann::ordered_json(nullptr)
                                       : nlohmann::ordered_json(status.staticUsermodeHelper[0])},
        {"config_files", status.configFiles},
        {"config_errors", status.configErrors},
        {"requests", counts},
    };
}

std::string formatNotRunning() {
    return "lkmd is not running.\n";
}

nlohmann::ordered_json notRunningJson() {
    return {{"running", false}};
}

}  // namespace lkmd::client

// SPDX-License-Identifier: LGPL-2.1-or-later
#include "output.h"

#include <algorithm>
#include <utility>

#include "table.h"
#include "text.h"

namespace lkmd::client {
namespace {

std::string orDash(std::string text) {
    return text.empty() ? "-" : text;
}

std::string joinedOrDash(const std::vector<std::string> &items, std::string_view separator) {
    std::string text;
    for (const std::string &item : items) {
        if (!text.empty())
            text += separator;
        text += item;
    }
    return orDash(std::move(text));
}

std::string refCountText(std::int32_t refCount) {
    return refCount < 0 ? "-" : std::to_string(refCount);
}

void sortByName(std::vector<ModuleInfo> &modules) {
    std::sort(modules.begin(), modules.end(),
              [](const ModuleInfo &a, const ModuleInfo &b) { return a.name < b.name; });
}

// "YYYY-MM-DDTHH:MM:SSZ", or null when the time is unknown.
nlohmann::ordered_json isoTimeJson(std::uint64_t realtimeUsec) {
    const std::string text = formatIso8601Utc(realtimeUsec);
    return text.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(text);
}

std::string yesNo(bool flag) {
    return flag ? "yes" : "no";
}

// When the module goes, with how long until then: "2024-05-01 12:01:00 (in 42s)".
std::string unloadTimeText(std::uint64_t unloadAtUsec, std::uint64_t nowUsec) {
    if (unloadAtUsec == 0)
        return "-";
    const std::string when = formatLocalTime(unloadAtUsec);
    if (unloadAtUsec <= nowUsec)
        return when + " (due now)";
    return when + " (in " + formatDuration(unloadAtUsec - nowUsec) + ")";
}

// "N things listed.", with the noun in the singular for one.
std::string listedFooter(std::size_t count, std::string_view singular) {
    return std::to_string(count) + " " + std::string(singular) + (count == 1 ? "" : "s") +
           " listed.\n";
}

// The keys shared by list and info, so that a script can treat either the same way.
nlohmann::ordered_json moduleJson(const ModuleInfo &module) {
    return {
        {"name", module.name},
        {"origin", module.origin},
        {"trigger", module.trigger},
        {"device", module.device},
        {"refcnt", module.refCount},
        {"size", module.size},
        {"state", module.state},
        {"holders", module.holders},
        {"loaded_at", isoTimeJson(module.loadedAtUsec)},
        {"loaded_at_usec", module.loadedAtUsec},
        {"autoclean", module.autoclean},
        {"pinned", module.pinned},
        {"idle_since", isoTimeJson(module.idleSinceUsec)},
        {"idle_since_usec", module.idleSinceUsec},
        {"unload_at", isoTimeJson(module.unloadAtUsec)},
        {"unload_at_usec", module.unloadAtUsec},
        {"kept_because", module.keptBecause},
    };
}

}  // namespace

std::string formatStatus(std::string_view version, const std::vector<ModuleInfo> &modules) {
    const auto byLkmd = std::count_if(modules.begin(), modules.end(), isLoadedByLkmd);
    return "lkmd " + escapeForTerminal(version) + " on org.lkmd1\n" +
           "Modules loaded: " + std::to_string(modules.size()) + " (" + std::to_string(byLkmd) +
           " loaded by lkmd)\n";
}

nlohmann::ordered_json statusJson(std::string_view version,
                                  const std::vector<ModuleInfo> &modules) {
    return {
        {"version", version},
        {"modules", modules.size()},
        {"loaded_by_lkmd", std::count_if(modules.begin(), modules.end(), isLoadedByLkmd)},
    };
}

std::string autocleanSummary(const ModuleInfo &module, std::uint64_t nowUsec) {
    if (!isLoadedByLkmd(module))
        return "-";
    if (module.pinned)
        return "pinned";
    if (module.unloadAtUsec != 0)
        return module.unloadAtUsec > nowUsec
                   ? "idle, goes in " + formatDuration(module.unloadAtUsec - nowUsec)
                   : "idle, goes now";
    if (module.idleSinceUsec != 0 && module.keptBecause.empty())
        return "idle";
    return "kept";
}

std::string formatModuleList(std::vector<ModuleInfo> modules, bool legend, std::uint64_t nowUsec) {
    sortByName(modules);
    // AUTOCLEAN comes last because its cells have spaces: the columns before it stay one
    // awk field each (LOADED is two).
    Table table({
        {"MODULE"},
        {"ORIGIN"},
        {"TRIGGER"},
        {"REFCNT", Table::Align::Right},
        {"LOADED"},
        {"AUTOCLEAN"},
    });
    for (const ModuleInfo &module : modules)
        table.addRow({
            module.name,
            orDash(module.origin),
            orDash(module.trigger),
            refCountText(module.refCount),
            formatLocalTime(module.loadedAtUsec),
            autocleanSummary(module, nowUsec),
        });

    if (!legend)
        return table.format(false);
    if (modules.empty())
        return listedFooter(0, "module");
    return table.format(true) + "\n" + listedFooter(modules.size(), "module");
}

nlohmann::ordered_json moduleListJson(std::vector<ModuleInfo> modules) {
    sortByName(modules);
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const ModuleInfo &module : modules)
        list.push_back(moduleJson(module));
    return list;
}

std::string formatRequestList(const std::vector<RequestInfo> &requests, bool legend) {
    // Why a request failed does not fit a column; --json carries the message.
    Table table({{"TIME"}, {"REQUEST"}, {"ORIGIN"}, {"RESULT"}, {"MODULES"}});
    for (const RequestInfo &request : requests)
        table.addRow({
            formatLocalTime(request.timeUsec),
            orDash(request.request),
            orDash(request.origin),
            orDash(request.result),
            // No spaces, so that MODULES stays one field for awk.
            joinedOrDash(request.modules, ","),
        });

    if (!legend)
        return table.format(false);
    if (requests.empty())
        return listedFooter(0, "request");
    return table.format(true) + "\n" + listedFooter(requests.size(), "request");
}

nlohmann::ordered_json requestListJson(const std::vector<RequestInfo> &requests) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const RequestInfo &request : requests)
        list.push_back({
            {"request", request.request},
            {"origin", request.origin},
            {"device", request.device},
            {"time", isoTimeJson(request.timeUsec)},
            {"time_usec", request.timeUsec},
            {"duration_usec", request.durationUsec},
            {"result", request.result},
            {"message", request.message},
            {"modules", request.modules},
        });
    return list;
}

std::string formatModuleDetails(const ModuleInfo &module, std::uint64_t nowUsec) {
    return formatKeyValueLines({
        {"Module", module.name},
        {"Origin", orDash(module.origin)},
        {"Trigger", orDash(module.trigger)},
        {"Device", orDash(module.device)},
        {"State", orDash(module.state)},
        {"RefCount", refCountText(module.refCount)},
        {"Size", std::to_string(module.size) + " bytes"},
        {"Loaded", formatLocalTime(module.loadedAtUsec)},
        {"Holders", joinedOrDash(module.holders, ", ")},
        {"Drivers", joinedOrDash(module.drivers, ", ")},
        {"Devices", joinedOrDash(module.devices, ", ")},
        {"Autoclean", yesNo(module.autoclean)},
        {"Pinned", yesNo(module.pinned)},
        {"Idle since", formatLocalTime(module.idleSinceUsec)},
        {"Unloads at", unloadTimeText(module.unloadAtUsec, nowUsec)},
        {"Kept because", orDash(module.keptBecause)},
    });
}

nlohmann::ordered_json moduleDetailsJson(const ModuleInfo &module) {
    nlohmann::ordered_json object = moduleJson(module);
    object["drivers"] = module.drivers;
    object["devices"] = module.devices;
    return object;
}

std::string formatLoadResult(std::string_view request, const std::vector<std::string> &inserted) {
    if (inserted.empty())
        return "Nothing inserted: " + quoteEscaped(request) + " is already loaded or built in.\n";
    std::string text;
    for (const std::string &name : inserted)
        text += "Inserted " + escapeForTerminal(name) + ".\n";
    return text;
}

nlohmann::ordered_json loadResultJson(std::string_view request,
                                      const std::vector<std::string> &inserted) {
    return {{"request", request}, {"inserted", inserted}};
}

std::string formatUnloadResult(std::string_view name) {
    return "Unloaded " + escapeForTerminal(name) + ".\n";
}

nlohmann::ordered_json unloadResultJson(std::string_view name) {
    return {{"unloaded", name}};
}

std::string formatPinResult(std::string_view name, bool pinned) {
    return (pinned ? "Pinned " : "Unpinned ") + escapeForTerminal(name) + ".\n";
}

nlohmann::ordered_json pinResultJson(std::string_view name, bool pinned) {
    return {{"module", name}, {"pinned", pinned}};
}

std::string dumpJson(const nlohmann::ordered_json &value) {
    return value.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace lkmd::client

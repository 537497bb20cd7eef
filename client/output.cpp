// SPDX-License-Identifier: LGPL-2.1-or-later
#include "output.h"

#include <algorithm>
#include <utility>

#include "request_name.h"
#include "text.h"
#include "time_format.h"

namespace lkmd::client {
namespace {

// Free-text columns are cut no narrower than this, so that a cut value still says what it is
// ("pci:v0000…", "fs-vfat").
constexpr std::size_t kMinFreeTextWidth = 10;

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

std::string yesNo(bool flag) {
    return flag ? "yes" : "no";
}

std::string relativeOrDash(std::uint64_t realtimeUsec, std::uint64_t nowUsec) {
    return realtimeUsec == 0 ? "-" : formatRelative(realtimeUsec, nowUsec);
}

// When the module goes: "Thu 2024-05-02 12:01:00 UTC; in 42s", "...; due now".
std::string unloadTimeText(std::uint64_t unloadAtUsec, std::uint64_t nowUsec) {
    if (unloadAtUsec == 0)
        return "-";
    if (unloadAtUsec <= nowUsec)
        return formatTimestamp(unloadAtUsec) + "; due now";
    return formatTimestampAndRelative(unloadAtUsec, nowUsec);
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

nlohmann::ordered_json isoTimeJson(std::uint64_t realtimeUsec) {
    const std::string text = formatIso8601Utc(realtimeUsec);
    return text.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(text);
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

std::string formatModuleList(std::vector<ModuleInfo> modules, bool legend, std::uint64_t nowUsec,
                             const TableLayout &layout) {
    sortByName(modules);
    // AUTOCLEAN comes last because its cells have spaces: the columns before it stay one
    // awk field each (LOADED, "3min ago", is two or three).
    Table table({
        {"MODULE"},
        {"ORIGIN"},
        {"TRIGGER", Table::Align::Left, 1, kMinFreeTextWidth},
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
            relativeOrDash(module.loadedAtUsec, nowUsec),
            autocleanSummary(module, nowUsec),
        });

    if (!legend)
        return table.format(false, layout);
    if (modules.empty())
        return listedFooter(0, "module");
    return table.format(true, layout) + "\n" + listedFooter(modules.size(), "module");
}

nlohmann::ordered_json moduleListJson(std::vector<ModuleInfo> modules) {
    sortByName(modules);
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const ModuleInfo &module : modules)
        list.push_back(moduleJson(module));
    return list;
}

Color resultColor(std::string_view result) {
    if (result == "failed" || result == "invalid")
        return Color::Red;
    if (result == "denied")
        return Color::Yellow;
    return Color::None;
}

std::string formatRequestList(const std::vector<RequestInfo> &requests, bool legend,
                              const TableLayout &layout) {
    // Why a request failed does not fit a column; --json carries the message. The modalias of a
    // CPU can be 357 characters long: REQUEST gives up most of the excess.
    Table table({
        {"TIME"},
        {"REQUEST", Table::Align::Left, 3, kMinFreeTextWidth},
        {"ORIGIN"},
        {"RESULT"},
        {"MODULES", Table::Align::Left, 1, 8},
        {"CAUSE", Table::Align::Left, 2, 6},
    });
    for (const RequestInfo &request : requests)
        table.addRow(
            {
                formatTimestamp(request.timeUsec),
                orDash(request.request),
                orDash(request.origin),
                orDash(request.result),
                // No spaces, so that MODULES stays one field for awk.
                joinedOrDash(request.modules, ","),
                // Who asked: the device of a uevent, else the process (a kernel request's
                // requester or the bus caller).
                orDash(request.origin == "kernel" || request.origin == "bus"
                           ? request.requester.description
                           : request.device),
            },
            {Color::None, Color::None, Color::None, resultColor(request.result)});

    if (!legend)
        return table.format(false, layout);
    if (requests.empty())
        return listedFooter(0, "request");
    return table.format(true, layout) + "\n" + listedFooter(requests.size(), "request");
}

nlohmann::ordered_json requestJson(const RequestInfo &request) {
    return {
        {"request", request.request},
        {"origin", request.origin},
        {"device", request.device},
        {"time", isoTimeJson(request.timeUsec)},
        {"time_usec", request.timeUsec},
        {"duration_usec", request.durationUsec},
        {"result", request.result},
        {"message", request.message},
        {"modules", request.modules},
        {"requester", request.requester.description},
        {"requester_uid", request.requester.uid},
        {"requester_unit", request.requester.unit},
    };
}

nlohmann::ordered_json requestListJson(const std::vector<RequestInfo> &requests) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const RequestInfo &request : requests)
        list.push_back(requestJson(request));
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
        {"Size", formatBytes(module.size)},
        {"Loaded", formatTimestampAndRelative(module.loadedAtUsec, nowUsec)},
        {"Holders", joinedOrDash(module.holders, ", ")},
        {"Drivers", joinedOrDash(module.drivers, ", ")},
        {"Devices", joinedOrDash(module.devices, ", ")},
        {"Autoclean", yesNo(module.autoclean)},
        {"Pinned", yesNo(module.pinned)},
        {"Idle since", formatTimestampAndRelative(module.idleSinceUsec, nowUsec)},
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

std::string formatMeaning(std::string_view request, std::string_view module) {
    if (request == module ||
        (!looksLikeModalias(request) && normalizeModuleName(request) == module))
        return {};
    return escapeForTerminal(request) + " is " + escapeForTerminal(module) + ".\n";
}

std::string formatUnloadResult(std::string_view module) {
    return "Unloaded " + escapeForTerminal(module) + ".\n";
}

nlohmann::ordered_json unloadResultJson(std::string_view request, std::string_view module) {
    return {{"request", request}, {"unloaded", module}};
}

std::string formatPinResult(std::string_view module, bool pinned) {
    return (pinned ? "Pinned " : "Unpinned ") + escapeForTerminal(module) + ".\n";
}

nlohmann::ordered_json pinResultJson(std::string_view request, std::string_view module,
                                     bool pinned) {
    return {{"request", request}, {"module", module}, {"pinned", pinned}};
}

std::string dumpJson(const nlohmann::ordered_json &value, JsonMode mode) {
    const int indent = mode == JsonMode::Short ? -1 : 2;
    return value.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace lkmd::client

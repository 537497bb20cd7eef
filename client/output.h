// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "module_info.h"
#include "request_info.h"
#include "table.h"

namespace lkmd::client {

// Each command's output as text (every line '\n'-terminated, escaped for the terminal) and as a
// JSON value (keys in the order documented in lkmctl(1)). Module lists are sorted by name; request
// lists keep the order they are given in. nowUsec (CLOCK_REALTIME) turns times into "3min ago".

// The list table: long triggers are cut to layout.width ("…"), nothing else is.
std::string formatModuleList(std::vector<ModuleInfo> modules, bool legend, std::uint64_t nowUsec,
                             const TableLayout &layout = {});
nlohmann::ordered_json moduleListJson(std::vector<ModuleInfo> modules);

// The AUTOCLEAN column of list: "-" for a module lkmd did not load, else "pinned", "idle, goes in
// 42s", "idle" (idle, going at a time lkmd did not say) or "kept" (lkmd will not unload it now;
// info says why).
std::string autocleanSummary(const ModuleInfo &module, std::uint64_t nowUsec);

// The requests table (CAUSE: the device of a uevent, else who asked): requests, modules and
// causes are cut to layout.width; failures are red
// and refusals yellow when layout.colors is set.
std::string formatRequestList(const std::vector<RequestInfo> &requests, bool legend,
                              const TableLayout &layout = {});
nlohmann::ordered_json requestJson(const RequestInfo &request);
nlohmann::ordered_json requestListJson(const std::vector<RequestInfo> &requests);
// failed and invalid are failures, denied a refusal; the rest is uncoloured.
Color resultColor(std::string_view result);

std::string formatModuleDetails(const ModuleInfo &module, std::uint64_t nowUsec);
nlohmann::ordered_json moduleDetailsJson(const ModuleInfo &module);

std::string formatLoadResult(std::string_view request, const std::vector<std::string> &inserted);
nlohmann::ordered_json loadResultJson(std::string_view request,
                                      const std::vector<std::string> &inserted);

// "fs-vfat is vfat.": said before acting when the name given is not the module's own (an alias,
// or '-' for '_'); empty when it is.
std::string formatMeaning(std::string_view request, std::string_view module);

std::string formatUnloadResult(std::string_view module);
nlohmann::ordered_json unloadResultJson(std::string_view request, std::string_view module);

std::string formatPinResult(std::string_view module, bool pinned);
nlohmann::ordered_json pinResultJson(std::string_view request, std::string_view module,
                                     bool pinned);

// "ISO 8601 in UTC", or null when the time is unknown (0).
nlohmann::ordered_json isoTimeJson(std::uint64_t realtimeUsec);

// Pretty: indented by two spaces; short: one line. Either ends in a newline. Invalid UTF-8
// cannot come off the bus (sd-bus rejects it) but may come from the command line; it is replaced
// rather than allowed to throw.
std::string dumpJson(const nlohmann::ordered_json &value, JsonMode mode = JsonMode::Pretty);

}  // namespace lkmd::client

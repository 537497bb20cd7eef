// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "module_info.h"
#include "request_info.h"

namespace lkmd::client {

// Each command's output as text (every line '\n'-terminated, escaped for the terminal) and as a
// JSON value (keys in the order documented in lkmctl(1)). Module lists are sorted by name; request
// lists keep the daemon's order, oldest first.

std::string formatStatus(std::string_view version, const std::vector<ModuleInfo> &modules);
nlohmann::ordered_json statusJson(std::string_view version, const std::vector<ModuleInfo> &modules);

// nowUsec (CLOCK_REALTIME) turns a module's UnloadAt into "goes in 42s".
std::string formatModuleList(std::vector<ModuleInfo> modules, bool legend, std::uint64_t nowUsec);
nlohmann::ordered_json moduleListJson(std::vector<ModuleInfo> modules);

// The AUTOCLEAN column of list: "-" for a module lkmd did not load, else "pinned", "idle, goes in
// 42s", "idle" (idle, going at a time lkmd did not say) or "kept" (lkmd will not unload it now;
// info says why).
std::string autocleanSummary(const ModuleInfo &module, std::uint64_t nowUsec);

std::string formatRequestList(const std::vector<RequestInfo> &requests, bool legend);
nlohmann::ordered_json requestListJson(const std::vector<RequestInfo> &requests);

std::string formatModuleDetails(const ModuleInfo &module, std::uint64_t nowUsec);
nlohmann::ordered_json moduleDetailsJson(const ModuleInfo &module);

std::string formatLoadResult(std::string_view request, const std::vector<std::string> &inserted);
nlohmann::ordered_json loadResultJson(std::string_view request,
                                      const std::vector<std::string> &inserted);

std::string formatUnloadResult(std::string_view name);
nlohmann::ordered_json unloadResultJson(std::string_view name);

std::string formatPinResult(std::string_view name, bool pinned);
nlohmann::ordered_json pinResultJson(std::string_view name, bool pinned);

// Invalid UTF-8 cannot come off the bus (sd-bus rejects it) but may come from the command line;
// it is replaced rather than allowed to throw.
std::string dumpJson(const nlohmann::ordered_json &value);

}  // namespace lkmd::client

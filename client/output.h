// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

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

std::string formatModuleList(std::vector<ModuleInfo> modules, bool legend);
nlohmann::ordered_json moduleListJson(std::vector<ModuleInfo> modules);

std::string formatRequestList(const std::vector<RequestInfo> &requests, bool legend);
nlohmann::ordered_json requestListJson(const std::vector<RequestInfo> &requests);

std::string formatModuleDetails(const ModuleInfo &module);
nlohmann::ordered_json moduleDetailsJson(const ModuleInfo &module);

std::string formatLoadResult(std::string_view request, const std::vector<std::string> &inserted);
nlohmann::ordered_json loadResultJson(std::string_view request,
                                      const std::vector<std::string> &inserted);

std::string formatUnloadResult(std::string_view name);
nlohmann::ordered_json unloadResultJson(std::string_view name);

// Invalid UTF-8 cannot come off the bus (sd-bus rejects it) but may come from the command line;
// it is replaced rather than allowed to throw.
std::string dumpJson(const nlohmann::ordered_json &value);

}  // namespace lkmd::client

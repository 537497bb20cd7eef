// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "property_map.h"

namespace lkmd::client {

// One record of SuggestAllowList (keys documented in org.lkmd1.Manager.xml).
struct SuggestionInfo {
    std::string name;
    std::string source;  // history or loaded
    std::string origin;
    std::vector<std::string> modules;
    std::string requester;
    std::uint64_t count = 0;
    std::uint64_t firstUsec = 0;
    std::uint64_t lastUsec = 0;
    std::string refusedBy;  // the policy refuses it anyway: written commented out
    std::string loadedAs;
};

SuggestionInfo suggestionFromProperties(const PropertyMap &properties);

// A name as an Allow= glob that matches that name only: fnmatch()'s '*', '?', '[' and '\' escaped
// (a modalias may hold them). Empty when no line of lkmd.conf could carry it (spaces, '#' first).
std::string allowGlobFor(std::string_view name);

// lkmctl policy suggest: a drop-in for /etc/lkmd/lkmd.conf.d/ with Mode=audit and one Allow= line
// per suggestion, each under a comment that says where it comes from. What lkmd must refuse
// anyway stays commented out, with the reason. Every text from lkmd is escaped, so that no name
// or requester can end a comment and add a line of configuration.
// configDir: where the header says to save it (lkmd's configuration directory).
std::string formatAllowListDropIn(const std::vector<SuggestionInfo> &suggestions,
                                  std::uint64_t nowUsec, std::string_view configDir);
nlohmann::ordered_json suggestionsJson(const std::vector<SuggestionInfo> &suggestions);

}  // namespace lkmd::client

// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "module_info.h"

namespace lkmd::client {

// One step of `lkmctl why`, from a module back towards its first cause.
struct WhyLink {
    std::string kind;  // module, dependency, request, device, requester or external
    std::string text;
};

// What the module's record says, newest cause first: "fat", "dependency of vfat", "fs-vfat",
// "pid 812 'mount' uid 0 (session-3.scope), called from get_fs_type". A module lkmd did not load
// ends in one "external" link: lkmd was not asked, so it cannot say who was.
std::vector<WhyLink> whyChain(const ModuleInfo &module);

// The links on one line, joined by " ← " (" <- " without UTF-8) and escaped for the terminal.
std::string formatWhyChain(const std::vector<WhyLink> &chain, bool utf8);

// {"module", "origin", "chain": [{"kind", "text"}...], "requester": {...}}.
nlohmann::ordered_json whyChainJson(const ModuleInfo &module, const std::vector<WhyLink> &chain);

}  // namespace lkmd::client

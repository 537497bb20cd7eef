// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "load_history.h"
#include "module_registry.h"
#include "policy.h"

namespace lkmd {

// One line lkmctl policy suggest proposes for Allow=: a name from the load history, or a module
// loaded now that no entry of the history covers (loaded before lkmd, by an administrator, or by
// lkmd before the history began).
struct AllowSuggestion {
    std::string name;
    std::string source;    // "history" or "loaded"
    HistoryEntry history;  // for "history"
    std::string loadedAs;  // for "loaded": "lkmd's, for fs-vfat", "not loaded by lkmd"
    // What the policy would refuse anyway (a [Deny], a rule): an allow-list never lifts that, and
    // a learning period may have seen an attack. lkmctl shows these commented out.
    std::string refusedBy;
};

// In order of name. loaded: the modules in the kernel now.
std::vector<AllowSuggestion> suggestAllowList(const LoadHistory &history,
                                              const std::vector<std::string> &loaded,
                                              const ModuleRegistry &registry, const Policy &policy);

}  // namespace lkmd

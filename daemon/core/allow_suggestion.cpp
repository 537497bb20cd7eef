// SPDX-License-Identifier: LGPL-2.1-or-later
#include "allow_suggestion.h"

#include <algorithm>
#include <set>

namespace lkmd {
namespace {

// Refused whoever asks: [Deny], and rules for anyone in force. Audit-mode verdicts do not count:
// the point of audit is to learn what the list must hold.
std::string refusedToAnyone(const Policy &policy, const std::string &name, bool isRequest) {
    const Verdict verdict =
        isRequest ? policy.judgeRequest(name, nullptr) : policy.judgeModule(name, nullptr);
    return verdict.refuses() ? verdict.because : std::string();
}

}  // namespace

std::vector<AllowSuggestion> suggestAllowList(const LoadHistory &history,
                                              const std::vector<std::string> &loaded,
                                              const ModuleRegistry &registry,
                                              const Policy &policy) {
    std::vector<AllowSuggestion> suggestions;
    std::set<std::string> covered;
    for (const auto &[name, entry] : history.entries()) {
        AllowSuggestion suggestion{name, "history", entry, {}, {}};
        suggestion.refusedBy = refusedToAnyone(policy, name, true);
        for (const std::string &module : entry.modules) {
            covered.insert(module);
            if (suggestion.refusedBy.empty())
                suggestion.refusedBy = refusedToAnyone(policy, module, false);
        }
        covered.insert(name);
        suggestions.push_back(std::move(suggestion));
    }
    for (const std::string &module : loaded) {
        if (covered.count(module) != 0)
            continue;
        AllowSuggestion suggestion{module, "loaded", {}, "not loaded by lkmd", {}};
        if (const ModuleRecord *record = registry.find(module))
            suggestion.loadedAs =
                record->need == Need::Requested
                    ? "loaded by lkmd for " + record->trigger
                    : "loaded by lkmd for " + record->trigger + ", needed by " + record->neededBy;
        suggestion.refusedBy = refusedToAnyone(policy, module, false);
        suggestions.push_back(std::move(suggestion));
    }
    std::sort(suggestions.begin(), suggestions.end(),
              [](const AllowSuggestion &a, const AllowSuggestion &b) { return a.name < b.name; });
    return suggestions;
}

}  // namespace lkmd

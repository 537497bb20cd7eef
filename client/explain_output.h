// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus_reader.h"
#include "property_map.h"

namespace lkmd::client {

// Explain's reply (keys documented in org.lkmd1.Manager.xml).
struct ExplainInfo {
    struct Step {
        std::string module, forModule, role, state, options;
        bool installCommand = false;
    };
    struct Rule {
        std::string where, text, reason, mode;
    };
    struct Judgement {
        std::string requester, verdict, because;
    };
    std::string request;
    std::string lookup;  // why the name resolves to nothing, or empty
    std::vector<std::string> modules;
    std::vector<std::string> hiddenByBlacklist;
    std::vector<Step> steps;
    std::vector<Rule> rules;
    std::vector<Judgement> judgements;
    std::uint64_t idleTimeoutUsec = 0;
    std::string idleTimeout;
};

// Unknown keys are ignored and missing or mistyped keys keep their defaults.
ExplainInfo explainInfoFromProperties(const PropertyMap &properties, const RecordLists &lists);

// lkmctl explain: how the name resolves, what a load would insert, which entries of the policy
// name it (with file:line), what each kind of requester would get, and the idle timeout.
std::string formatExplanation(const ExplainInfo &info, bool colors);
nlohmann::ordered_json explanationJson(const ExplainInfo &info);

}  // namespace lkmd::client

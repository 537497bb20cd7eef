// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "admission.h"
#include "config.h"
#include "load_coordinator.h"
#include "module_backend.h"
#include "policy.h"

namespace lkmd {

// What a load of a name would do, without doing it: lkmctl explain (read-only, for everyone).
struct Explanation {
    struct Step {
        std::string module;
        std::string forModule;  // the module asked for that brings it in
        std::string role;       // "requested", "dependency", "soft dependency"
        std::string state;      // "loaded", "built in", "not loaded", "loading", "unloading"
        std::string options;    // from modprobe.d
        bool installCommand = false;
    };
    // The verdict for one kind of requester, from the same admission a load goes through, on a
    // host where none of the modules were loaded.
    struct Judgement {
        std::string requester;  // "root", "uid 65534", ...
        std::string verdict;    // "loads", "refused", "loads (audit: would be refused)", ...
        std::string because;
    };

    std::string request;
    std::string invalidName;  // why the name is refused as such; then nothing else is filled
    std::string lookup;       // empty, or why the name resolves to nothing
    std::vector<std::string> modules;            // what the name resolves to
    std::vector<std::string> hiddenByBlacklist;  // what kmod's blacklist keeps it from
    std::vector<Step> steps;                     // in load order, per module asked for
    std::vector<PolicyMatch> rules;
    std::vector<Judgement> judgements;
    std::uint64_t idleTimeoutUsec = 0;  // kNever: never unloaded when idle
    std::string idleTimeout;            // how that timeout comes about
};

Explanation explain(const std::string &request, const Policy &policy, ModuleBackend &backend,
                    const LoadCoordinator &coordinator, const AutocleanSettings &autoclean);

}  // namespace lkmd

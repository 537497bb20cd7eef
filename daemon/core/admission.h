// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "load_coordinator.h"
#include "module_backend.h"
#include "policy.h"
#include "requester.h"

namespace lkmd {

// What a request may load: its name checked, the policy applied to the request, to each module
// it resolves to (the allow-list too) and to each module their plans would insert.
struct Admission {
    int error = 0;        // a refusal or failure to answer at once
    std::string message;  // with it, for the caller
    bool invalidName = false;
    std::vector<std::pair<std::string, std::vector<PlanStep>>> plans;  // by module asked for
    std::vector<std::string> wouldRefuse;  // what Mode=audit let through, for the log
    // Soft dependencies the policy refuses: left out of the plans, the load goes on without them.
    struct RefusedSoftDependency {
        std::string module;
        std::string of;
        std::string because;
    };
    std::vector<RefusedSoftDependency> refusedSoftDependencies;
};

// Now: what a load would do at this moment. AsIfNothingLoaded: what it would do on a host where
// none of the modules involved were loaded (lkmctl explain's verdicts, which must not depend on
// what happens to be loaded).
enum class AdmitView { Now, AsIfNothingLoaded };

// requester: nullptr for loads no process asked for (hotplug, coldplug). Reads indexes only.
Admission admit(const std::string &request, const Requester *requester, const Policy &policy,
                ModuleBackend &backend, const LoadCoordinator &coordinator,
                AdmitView view = AdmitView::Now);

// Per-errno phrases in the manner of modprobe's, so that a user learns what to do next. The
// failing module is named only when it is not the one asked for (a dependency, an alias's).
std::string insertFailure(const std::string &request, const std::string &failed, int error);

}  // namespace lkmd

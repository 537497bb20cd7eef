// SPDX-License-Identifier: LGPL-2.1-or-later
#include "explain.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "request_name.h"
#include "timespan.h"

namespace lkmd {
namespace {

std::string stateName(ModuleState state, const LoadCoordinator &coordinator,
                      const std::string &module) {
    if (coordinator.removing(module))
        return "unloading";
    if (coordinator.inserting(module))
        return "loading";
    switch (state) {
        case ModuleState::Builtin:
            return "built in";
        case ModuleState::Live:
            return "loaded";
        case ModuleState::Coming:
            return "loading";
        case ModuleState::Going:
            return "unloading";
        case ModuleState::Absent:
            break;
    }
    return "not loaded";
}

// The requesters whose verdicts lkmctl explain shows: the ones rules tell apart.
std::vector<std::pair<std::string, std::optional<Requester>>> typicalRequesters() {
    Requester root;
    root.known = true;
    root.uid = 0;
    root.gid = 0;
    root.userns = root.pidns = root.netns = Namespace::Initial;
    Requester user = root;
    user.uid = user.gid = 65534;
    Requester contained = user;
    contained.userns = Namespace::Other;
    return {{"root", root},
            {"uid 65534", user},
            {"uid 65534 in a user namespace", contained},
            {"a device (hotplug)", std::nullopt}};
}

Explanation::Judgement judge(const std::string &who, const Admission &admission) {
    Explanation::Judgement judgement{who, "loads", {}};
    if (admission.error == -EACCES) {
        judgement.verdict = "refused";
        judgement.because = admission.message;
    } else if (admission.error < 0) {
        judgement.verdict = "fails";
        judgement.because = admission.message;
    } else if (!admission.wouldRefuse.empty()) {
        judgement.verdict = "loads (audit: would be refused)";
        judgement.because = admission.wouldRefuse.front();
    } else if (!admission.refusedSoftDependencies.empty()) {
        judgement.verdict = "loads without a soft dependency";
        judgement.because = admission.refusedSoftDependencies.front().module + ": " +
                            admission.refusedSoftDependencies.front().because;
    }
    return judgement;
}

void explainIdleTimeout(const std::string &request, const std::vector<std::string> &modules,
                        const AutocleanSettings &autoclean, Explanation *out) {
    std::uint64_t shortest = kNever;
    std::string why;
    for (const std::string &module : modules) {
        if (autoclean.keeps(module)) {
            why = "'" + module + "' is in Keep=";
            continue;
        }
        const std::uint64_t usec = autoclean.timeoutFor(module, request);
        if (usec < shortest)
            shortest = usec;
    }
    out->idleTimeoutUsec = shortest;
    if (shortest == kNever) {
        out->idleTimeout = why.empty() ? "never (IdleTimeout=never)" : "never: " + why;
        return;
    }
    out->idleTimeout = formatTimespan(shortest) +
                       " after nothing uses it, when the kernel or a device loaded it "
                       "(lkmctl load only with --autoclean)";
}

}  // namespace

Explanation explain(const std::string &request, const Policy &policy, ModuleBackend &backend,
                    const LoadCoordinator &coordinator, const AutocleanSettings &autoclean) {
    Explanation out;
    out.request = request;
    if (const char *why = whyInvalidRequestName(request)) {
        out.invalidName = why;
        return out;
    }
    out.hiddenByBlacklist = backend.hiddenByBlacklist(request);
    if (const int r = backend.resolve(request, &out.modules); r < 0) {
        out.modules.clear();
        out.lookup = r == -ENOENT
                         ? "no such module"
                         : std::string("could not look up the module: ") + std::strerror(-r);
    }

    std::vector<std::string> involved = out.modules;
    for (const std::string &module : out.modules) {
        std::vector<PlanStep> steps;
        if (backend.plan(module, &steps) < 0)
            continue;
        if (steps.empty())  // built in: nothing to insert
            steps.push_back({module, {}, false, true});
        for (const PlanStep &step : steps) {
            const std::string role = step.module == module ? "requested"
                                     : step.required       ? "dependency"
                                                           : "soft dependency";
            out.steps.push_back({step.module, module, role,
                                 stateName(backend.state(step.module), coordinator, step.module),
                                 step.options, step.installCommand});
            if (std::find(involved.begin(), involved.end(), step.module) == involved.end())
                involved.push_back(step.module);
        }
    }
    out.rules = policy.about(request, involved);
    for (auto &[who, requester] : typicalRequesters())
        out.judgements.push_back(
            judge(who, admit(request, requester ? &*requester : nullptr, policy, backend,
                             coordinator, AdmitView::AsIfNothingLoaded)));
    if (!out.modules.empty())
        explainIdleTimeout(request, out.modules, autoclean, &out);
    return out;
}

}  // namespace lkmd

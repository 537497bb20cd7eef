// SPDX-License-Identifier: LGPL-2.1-or-later
#include "admission.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "request_name.h"

namespace lkmd {
namespace {

bool present(ModuleBackend &backend, const LoadCoordinator &coordinator,
             const std::string &module) {
    const ModuleState state = backend.state(module);
    return (state == ModuleState::Live || state == ModuleState::Builtin) &&
           !coordinator.removing(module);
}

Admission refusal(int error, std::string message) {
    Admission admission;
    admission.error = error;
    admission.message = std::move(message);
    return admission;
}

}  // namespace

std::string insertFailure(const std::string &request, const std::string &failed, int error) {
    std::string reason;
    switch (-error) {
        case EACCES:
            return "denied by policy (Modules=" + failed + ")";
        case ENOENT:
            return "no such module";
        case ENOEXEC:
            reason = "invalid module format (see dmesg)";
            break;
        case ENOKEY:
        case EKEYREJECTED:
            reason = "module signature could not be verified (see dmesg)";
            break;
        case EPERM:
            reason = "not permitted: module loading is disabled or refused by an install command";
            break;
        default:
            reason = std::string(std::strerror(-error)) + " (see dmesg)";
    }
    if (failed.empty() || failed == normalizeModuleName(request))
        return reason;
    return "could not insert '" + failed + "': " + reason;
}

Admission admit(const std::string &request, const Requester *requester, const Policy &policy,
                ModuleBackend &backend, const LoadCoordinator &coordinator, AdmitView view) {
    const auto there = [&](const std::string &module) {
        return view == AdmitView::Now && present(backend, coordinator, module);
    };
    if (const char *why = whyInvalidRequestName(request)) {
        Admission invalid = refusal(-EINVAL, std::string("invalid module name: ") + why);
        invalid.invalidName = true;
        return invalid;
    }
    Admission admission;
    const auto judged = [&](const Verdict &verdict) {
        if (verdict.kind == Verdict::Kind::WouldRefuse)
            admission.wouldRefuse.push_back(verdict.because);
        return verdict.refuses();
    };
    if (Verdict verdict = policy.judgeRequest(request, requester); judged(verdict))
        return refusal(-EACCES, verdict.because);

    std::vector<std::string> modules;
    const int r = backend.resolve(request, &modules);
    if (r < 0)
        return refusal(r, r == -ENOENT
                              ? "no such module"
                              : std::string("could not look up the module: ") + std::strerror(-r));
    // A modalias may name several modules: the refused ones are left out, the others load.
    std::string refused;
    std::erase_if(modules, [&](const std::string &module) {
        Verdict verdict = policy.judgeModule(module, requester);
        if (!judged(verdict)) {
            verdict = policy.judgeAllowed(module, request);
            if (!judged(verdict))
                return false;
        }
        if (refused.empty())
            refused = verdict.because;
        return true;
    });
    if (modules.empty())
        return refusal(-EACCES, refused);
    // What is live (and not on its way out through lkmd) is there: modprobe then loads nothing,
    // not even a soft dependency that failed before.
    std::erase_if(modules, there);

    // Plans first, all of them: a refused dependency refuses the request before anything loads.
    for (const std::string &module : modules) {
        std::vector<PlanStep> steps;
        const int planned = backend.plan(module, &steps);
        if (planned < 0)
            return refusal(planned, insertFailure(request, module, planned));
        for (auto step = steps.begin(); step != steps.end();) {
            // A refused module that is there already is not inserted by this load; should it go
            // meanwhile, the coordinator asks the policy again before inserting it.
            if (step->module == module || there(step->module)) {
                ++step;
                continue;
            }
            const Verdict verdict = policy.judgeModule(step->module, requester);
            if (!judged(verdict)) {
                ++step;
                continue;
            }
            if (step->required)
                return refusal(-EACCES, verdict.because);
            admission.refusedSoftDependencies.push_back({step->module, module, verdict.because});
            step = steps.erase(step);
        }
        admission.plans.emplace_back(module, std::move(steps));
    }
    return admission;
}

}  // namespace lkmd

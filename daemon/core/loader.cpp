// SPDX-License-Identifier: LGPL-2.1-or-later
#include "loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "log.h"
#include "provenance_log.h"
#include "request_name.h"

namespace lkmd {
namespace {

// Per-errno phrases in the manner of modprobe's, so that a user learns what to do next. The
// failing module is named only when it is not the one asked for (a dependency, or an alias's).
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

}  // namespace

Loader::Loader(ModuleBackend &backend, LoadCoordinator &coordinator, RequestLog &log,
               Scheduler &scheduler, Metrics *metrics)
    : backend_(backend),
      coordinator_(coordinator),
      log_(log),
      scheduler_(scheduler),
      metrics_(metrics),
      policy_(std::make_shared<const Policy>()) {}

void Loader::setPolicy(Policy policy) {
    policy_ = std::make_shared<const Policy>(std::move(policy));
}

void Loader::load(const std::string &request, Origin origin, Done done, LoadOptions options) {
    RequestRecord record;
    record.request = request;
    record.origin = origin;
    record.device = options.device;
    record.subsystem = options.subsystem;
    record.requester = options.requester;
    record.timeUsec = scheduler_.realtimeUsec();
    record.startedUsec = scheduler_.monotonicUsec();
    if (const char *why = whyInvalidRequestName(request)) {
        record.invalidName = true;
        finish(std::move(record), {-EINVAL, std::string("invalid module name: ") + why, {}}, done);
        return;
    }
    const Policy &policy = *policy_;
    if (const std::string *rule = policy.ruleDenyingRequest(request)) {
        finish(std::move(record), {-EACCES, "denied by policy (Requests=" + *rule + ")", {}}, done);
        return;
    }
    const std::uint64_t resolveStarted = scheduler_.monotonicUsec();
    std::vector<std::string> modules;
    int r = backend_.resolve(request, &modules);
    if (r < 0) {
        finish(std::move(record),
               {r,
                r == -ENOENT ? "no such module"
                             : std::string("could not look up the module: ") + std::strerror(-r),
                {}},
               done);
        return;
    }
    std::string deniedModule;
    std::erase_if(modules, [&](const std::string &module) {
        if (!policy.deniesModule(module))
            return false;
        deniedModule = module;
        return true;
    });
    if (modules.empty()) {
        finish(std::move(record), {-EACCES, "denied by policy (Modules=" + deniedModule + ")", {}},
               done);
        return;
    }

    // What is live (and not on its way out through lkmd) is there: modprobe then loads nothing,
    // not even a soft dependency that failed before.
    std::erase_if(modules, [this](const std::string &module) {
        const ModuleState state = backend_.state(module);
        return (state == ModuleState::Live || state == ModuleState::Builtin) &&
               !coordinator_.removing(module);
    });
    if (modules.empty()) {
        finish(std::move(record), {}, done);
        return;
    }

    // Plans first, all of them: a denied dependency refuses the request before anything loads.
    std::vector<std::pair<std::string, std::vector<PlanStep>>> plans;
    for (const std::string &module : modules) {
        std::vector<PlanStep> steps;
        r = backend_.plan(module, &steps);
        if (r < 0) {
            finish(std::move(record), {r, insertFailure(request, module, r), {}}, done);
            return;
        }
        for (auto step = steps.begin(); step != steps.end();) {
            const ModuleState state = backend_.state(step->module);
            const bool present = (state == ModuleState::Live || state == ModuleState::Builtin) &&
                                 !coordinator_.removing(step->module);
            // A denied module that is there already is not inserted by this load; should it go
            // meanwhile, the coordinator asks the policy again before inserting it.
            if (present || !policy.deniesModule(step->module)) {
                ++step;
                continue;
            }
            if (step->required) {
                finish(std::move(record),
                       {-EACCES, "denied by policy (Modules=" + step->module + ")", {}}, done);
                return;
            }
            logger("loader")->info(
                "Not inserting '{}', a soft dependency of '{}': denied by "
                "policy",
                step->module, module);
            step = steps.erase(step);
        }
        plans.emplace_back(module, std::move(steps));
    }

    if (metrics_ != nullptr)
        metrics_->observeResolve(scheduler_.monotonicUsec() - resolveStarted);

    // A modalias may name several modules: their plans run in parallel and the caller hears once
    // all have finished, with the first error if any.
    struct Pending {
        std::size_t remaining;
        RequestRecord record;
        Outcome outcome;
        Done done;
    };
    LoadCause cause;
    cause.request = request;
    cause.origin = origin;
    cause.device = options.device;
    cause.subsystem = options.subsystem;
    cause.autoclean = origin != Origin::Bus || options.autoclean;
    cause.requester = options.requester;
    auto pending = std::make_shared<Pending>(Pending{plans.size(), std::move(record), {}, done});
    const LoadCoordinator::Allowed allowed = [policy = policy_](const std::string &module) {
        return !policy->deniesModule(module);
    };
    for (auto &[module, steps] : plans) {
        cause.target = module;
        coordinator_.execute(
            std::move(steps), cause, allowed, [this, pending, request, module](PlanOutcome result) {
                Outcome &outcome = pending->outcome;
                for (const std::string &name : result.inserted)
                    if (std::find(outcome.inserted.begin(), outcome.inserted.end(), name) ==
                        outcome.inserted.end())
                        outcome.inserted.push_back(name);
                for (const StepFailure &skipped : result.skipped)
                    logger("loader")->info(
                        "Could not insert '{}', a soft dependency of '{}': {}; loading on "
                        "without it, as modprobe does",
                        skipped.module, module,
                        skipped.error == -EACCES ? "denied by policy"
                                                 : std::strerror(-skipped.error));
                if (!result.initStillRunning.empty())
                    logger("loader")->info(
                        "Answered '{}' while the init of '{}' still runs (asked from inside it?)",
                        printable(request), result.initStillRunning);
                if (result.error < 0 && outcome.error == 0) {
                    outcome.error = result.error;
                    outcome.message = insertFailure(request, result.failedModule, result.error);
                }
                if (--pending->remaining == 0)
                    finish(std::move(pending->record), std::move(outcome), pending->done);
            });
    }
}

// One journal entry per request, with fields a person can query (provenance_log.h).
void Loader::finish(RequestRecord record, Outcome outcome, const Done &done) {
    record.durationUsec = scheduler_.monotonicUsec() - record.startedUsec;
    record.error = outcome.error;
    record.message = outcome.message;
    record.inserted = outcome.inserted;
    {
        const LogFields fields(requestFields(record));
        logger("loader")->log(outcome.error == -EACCES ? spdlog::level::warn : spdlog::level::info,
                              "{}", describeRequest(record));
    }
    if (metrics_ != nullptr)
        metrics_->countRequest(record);
    log_.add(std::move(record));
    done(std::move(outcome));
}

}  // namespace lkmd

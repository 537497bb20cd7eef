// SPDX-License-Identifier: LGPL-2.1-or-later
#include "loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "admission.h"
#include "log.h"
#include "provenance_log.h"
#include "request_name.h"

namespace lkmd {
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
    const Requester *requester =
        origin == Origin::Hotplug || origin == Origin::Coldplug ? nullptr : &record.requester;
    const std::int64_t uid = requester != nullptr && requester->known ? requester->uid : -1;
    if (!limiter_.allows(uid, record.startedUsec)) {
        record.limited = true;
        finish(std::move(record),
               {-EAGAIN,
                "uid " + std::to_string(uid) +
                    " made too many requests lkmd could not serve; answered without a "
                    "lookup",
                {}},
               done);
        return;
    }
    admitAndStart(std::move(record), std::move(done), std::move(options), false);
}

void Loader::admitAndStart(RequestRecord record, Done done, LoadOptions options, bool rechecked) {
    const std::string request = record.request;
    const Origin origin = record.origin;
    const Requester *requester =
        origin == Origin::Hotplug || origin == Origin::Coldplug ? nullptr : &record.requester;
    const std::uint64_t resolveStarted = scheduler_.monotonicUsec();
    Admission admission = admit(request, requester, *policy_, backend_, coordinator_);
    if (admission.error == -ENOENT && !admission.invalidName && !rechecked) {
        // The backend looks from a job whether the index changed since it was read (a module
        // installed, then its device plugged in), and lookups go on meanwhile; the request is
        // answered once it knows.
        backend_.recheck([this, alive = std::weak_ptr<int>(alive_), record = std::move(record),
                          done = std::move(done), options = std::move(options),
                          admission = std::move(admission)](bool changed) mutable {
            if (alive.expired())
                return;
            if (changed) {
                admitAndStart(std::move(record), std::move(done), std::move(options), true);
                return;
            }
            record.wouldRefuse = std::move(admission.wouldRefuse);
            finish(std::move(record), {admission.error, admission.message, {}}, done);
        });
        return;
    }
    record.wouldRefuse = std::move(admission.wouldRefuse);
    record.invalidName = admission.invalidName;
    for (const Admission::RefusedSoftDependency &soft : admission.refusedSoftDependencies)
        logger("loader")->info("Not inserting '{}', a soft dependency of '{}': {}", soft.module,
                               soft.of, soft.because);
    if (admission.error < 0 || admission.plans.empty()) {
        finish(std::move(record), {admission.error, admission.message, {}}, done);
        return;
    }
    std::vector<std::pair<std::string, std::vector<PlanStep>>> &plans = admission.plans;

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
    const LoadCoordinator::Allowed allowed =
        [policy = policy_,
         who = requester ? std::optional(*requester) : std::nullopt](const std::string &module) {
            return !policy->judgeModule(module, who ? &*who : nullptr).refuses();
        };
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one.
    for (auto &plan : plans) {
        const std::string &module = plan.first;
        cause.target = module;
        coordinator_.execute(
            std::move(plan.second), cause, allowed,
            [this, pending, request, module](PlanOutcome result) {
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
    if (metrics_ != nullptr)
        metrics_->countRequest(record);
    const std::string result = record.result();
    const bool unserved = result == "not-found" || result == "denied" || result == "invalid";
    const bool knownUser = record.origin != Origin::Hotplug && record.origin != Origin::Coldplug &&
                           record.requester.known;
    if (unserved && knownUser &&
        limiter_.charge(record.requester.uid, record.startedUsec + record.durationUsec))
        logger("loader")->warn(
            "uid {} made too many requests lkmd could not serve: its requests "
            "are answered without a lookup for a while",
            record.requester.uid);
    // A flood answered without a lookup is counted, not logged or listed one by one.
    if (!record.limited) {
        const LogFields fields(requestFields(record));
        const bool warn = outcome.error == -EACCES || !record.wouldRefuse.empty();
        logger("loader")->log(warn ? spdlog::level::warn : spdlog::level::info, "{}",
                              describeRequest(record));
        log_.add(std::move(record));
    }
    done(std::move(outcome));
}

}  // namespace lkmd

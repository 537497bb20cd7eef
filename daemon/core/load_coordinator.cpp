// SPDX-License-Identifier: LGPL-2.1-or-later
#include "load_coordinator.h"

#include <algorithm>
#include <cerrno>

#include "log.h"
#include "provenance_log.h"

namespace lkmd {

struct LoadCoordinator::Plan {
    std::vector<PlanStep> steps;
    std::size_t next = 0;
    LoadCause cause;
    Allowed allowed;
    PlanOutcome outcome;
    PlanDone done;
    // While the next step's module is in someone's init or being removed by someone else.
    std::unique_ptr<Timer> recheck;
    std::uint64_t waitDeadline = 0;
    ModuleState waitingFor = ModuleState::Absent;
};

LoadCoordinator::LoadCoordinator(ModuleBackend &backend, JobRunner &runner, Scheduler &scheduler,
                                 ModuleRegistry &registry, const KernelState &kernel,
                                 ModuleEvents &events, StateFile *stateFile,
                                 InsertingThreads *threads, Metrics *metrics)
    : backend_(backend),
      runner_(runner),
      scheduler_(scheduler),
      registry_(registry),
      kernel_(kernel),
      events_(events),
      stateFile_(stateFile),
      threads_(threads),
      metrics_(metrics) {}

LoadCoordinator::~LoadCoordinator() = default;

void LoadCoordinator::execute(std::vector<PlanStep> steps, LoadCause cause, Allowed allowed,
                              PlanDone done) {
    auto plan = std::make_shared<Plan>();
    plan->steps = std::move(steps);
    plan->cause = std::move(cause);
    plan->allowed = std::move(allowed);
    plan->done = std::move(done);
    ++activePlans_;
    advance(plan);
}

bool LoadCoordinator::inserting(const std::string &module) const {
    auto it = operations_.find(module);
    return it != operations_.end() && !it->second.removal;
}

bool LoadCoordinator::removing(const std::string &module) const {
    auto it = operations_.find(module);
    return it != operations_.end() && it->second.removal;
}

bool LoadCoordinator::tryBeginRemoval(const std::string &module) {
    if (operations_.count(module) != 0)
        return false;
    operations_[module].removal = true;
    ++removals_;
    return true;
}

void LoadCoordinator::endRemoval(const std::string &module) {
    auto node = operations_.extract(module);
    if (node.empty() || !node.mapped().removal)
        return;
    --removals_;
    for (const auto &waiter : node.mapped().waiters)
        waiter(0, false);
    maybeIdle();
}

// Each step is looked at when its turn comes, not when the plan was made: meanwhile another
// plan may have inserted the module, or lkmd may have begun to remove it.
void LoadCoordinator::advance(const std::shared_ptr<Plan> &plan) {
    while (plan->next < plan->steps.size()) {
        const PlanStep &step = plan->steps[plan->next];
        const ModuleState state = backend_.state(step.module);
        auto operation = operations_.find(step.module);
        if (operation != operations_.end()) {
            if (operation->second.removal) {
                // Loaded again once lkmd's removal is over, and credited to this plan.
                operation->second.waiters.push_back([this, plan](int, bool) { advance(plan); });
                return;
            }
            if (state != ModuleState::Coming || outsideAnyInit(plan->cause.requester)) {
                // One insertion, N answers: before the init, or for a requester the init cannot
                // be waiting for.
                operation->second.waiters.push_back(
                    [this, plan](int result, bool inserted) { stepDone(plan, result, inserted); });
                return;
            }
            // Its init runs, and this request may come from inside it: never queue behind it.
            awaitSettled(plan, state);
            return;
        }
        switch (state) {
            case ModuleState::Live:
            case ModuleState::Builtin:
                ++plan->next;
                continue;
            case ModuleState::Coming:  // someone else's init
            case ModuleState::Going:   // someone else's removal
                awaitSettled(plan, state);
                return;
            case ModuleState::Absent:
                break;
        }
        if (plan->allowed && !plan->allowed(step.module)) {
            stepDone(plan, -EACCES, false);
            return;
        }
        startInsertion(step, plan->cause);
        operations_[step.module].waiters.push_back(
            [this, plan](int result, bool inserted) { stepDone(plan, result, inserted); });
        return;
    }
    finish(plan);
}

// A request from inside an init comes from the thread in finit_module() (one of lkmd's, known by
// fromInitOf) or from a kernel thread the init waits for (crypto's probes). A userspace process
// that lkmd knows asked on its own (a mount, a bus caller) can wait for the whole init, and
// learns the truth at its end, not an answer given while the module is not there yet.
bool LoadCoordinator::outsideAnyInit(const Requester &requester) {
    return requester.known && !requester.kernelThread && requester.fromInitOf.empty();
}

// A second finit_module() for a module in its init would wait for that init, and if this request
// comes from inside it, the init waits for this request: the deadlock modprobe runs into. So the
// state is looked at again on the loop until the init is over, for a bounded time: most inits
// finish within it, and an unfinished one most likely made this request itself. The kernel
// announces the end of an init only by a uevent lkmd may not listen to, hence the timer.
void LoadCoordinator::awaitSettled(const std::shared_ptr<Plan> &plan, ModuleState state) {
    plan->waitingFor = state;
    plan->waitDeadline =
        scheduler_.monotonicUsec() + (state == ModuleState::Going ? kGoingWaitUsec : kInitWaitUsec);
    // The timer's callback holds the plan; the plan drops the timer when it moves on.
    plan->recheck = scheduler_.timer([this, plan] { recheck(plan); });
    plan->recheck->setAt(scheduler_.monotonicUsec() + kRecheckUsec);
}

void LoadCoordinator::recheck(const std::shared_ptr<Plan> &plan) {
    const PlanStep &step = plan->steps[plan->next];
    const ModuleState state = backend_.state(step.module);
    const std::uint64_t now = scheduler_.monotonicUsec();
    if (state == plan->waitingFor && now < plan->waitDeadline) {
        plan->recheck->setAt(now + kRecheckUsec);
        return;
    }
    plan->recheck.reset();
    if (state == plan->waitingFor && state == ModuleState::Coming) {
        plan->outcome.initStillRunning = step.module;
        finish(plan);
        return;
    }
    if (state == plan->waitingFor && operations_.count(step.module) == 0) {
        // Still going after all this time: let the kernel say what it thinks of an insertion.
        if (plan->allowed && !plan->allowed(step.module)) {
            stepDone(plan, -EACCES, false);
            return;
        }
        startInsertion(step, plan->cause);
        operations_[step.module].waiters.push_back(
            [this, plan](int result, bool inserted) { stepDone(plan, result, inserted); });
        return;
    }
    advance(plan);  // live now, or its init failed, or it is gone: look again
}

void LoadCoordinator::startInsertion(const PlanStep &step, const LoadCause &cause) {
    ModuleRecord intent;
    intent.origin = cause.origin;
    intent.trigger = cause.request;
    intent.device = cause.device;
    intent.subsystem = cause.subsystem;
    intent.requester = cause.requester;
    if (step.module != cause.target && !cause.target.empty()) {
        intent.need = step.required ? Need::Dependency : Need::SoftDependency;
        intent.neededBy = cause.target;
    }
    intent.loadedAtUsec = scheduler_.realtimeUsec();
    intent.autoclean = cause.autoclean;
    intent.inserting = true;
    registry_.record(step.module, std::move(intent));
    operations_[step.module].removal = false;
    operations_[step.module].startedUsec = scheduler_.monotonicUsec();

    runner_.submit([this, step, origin = cause.origin, file = stateFile_,
                    threads = threads_](ModuleBackend &worker) -> JobRunner::Completion {
        // The intent is on disk before the init runs: if lkmd dies meanwhile, its successor
        // knows whose module this is.
        if (file != nullptr)
            file->flush();
        // A request_module() from the init comes from this thread.
        const InsertingThreads::Scope inserting(threads, step.module);
        const int result = worker.insert(step);
        return [this, step, origin, result] { finishInsertion(step, origin, result); };
    });
}

void LoadCoordinator::finishInsertion(const PlanStep &step, Origin origin, int result) {
    auto node = operations_.extract(step.module);
    bool inserted = false;
    if (result == 0) {
        // An install command may have loaded nothing ("install x /bin/true"): then nothing is
        // lkmd's.
        const std::uint64_t identity = kernel_.moduleIdentity(step.module);
        if (identity != 0) {
            registry_.confirm(step.module, identity);
            inserted = true;
        } else {
            registry_.forget(step.module);
        }
    } else {
        // -EEXIST: someone else inserted it meanwhile; it is theirs.
        registry_.forget(step.module);
    }
    if (inserted) {
        const ModuleRecord *record = registry_.find(step.module);
        std::vector<LogField> fields = record ? moduleFields(step.module, *record)
                                              : std::vector<LogField>{{"MODULE", step.module}};
        fields.emplace_back("MESSAGE_ID", message_id::kModuleLoaded);
        const LogFields scope(std::move(fields));
        const std::string need =
            record && record->need != Need::Requested
                ? std::string(", ") + needName(record->need) + " of " + record->neededBy
                : std::string();
        logger("loader")->info("Inserted '{}' for '{}' ({}){}", step.module,
                               record ? printable(record->trigger) : std::string(),
                               originName(origin), need);
        if (metrics_ != nullptr && !node.empty())
            metrics_->countInsertion(origin,
                                     scheduler_.monotonicUsec() - node.mapped().startedUsec);
        events_.moduleLoaded(step.module, origin);
    }
    if (!node.empty())
        for (const auto &waiter : node.mapped().waiters)
            waiter(result, inserted);
    maybeIdle();
}

void LoadCoordinator::stepDone(const std::shared_ptr<Plan> &plan, int result, bool inserted) {
    const PlanStep &step = plan->steps[plan->next];
    std::vector<std::string> &list = plan->outcome.inserted;
    if (inserted && std::find(list.begin(), list.end(), step.module) == list.end())
        list.push_back(step.module);
    if (result < 0 && result != -EEXIST) {
        if (step.required) {
            plan->outcome.error = result;
            plan->outcome.failedModule = step.module;
            finish(plan);
            return;
        }
        plan->outcome.skipped.push_back({step.module, result});
    }
    ++plan->next;
    advance(plan);
}

void LoadCoordinator::finish(const std::shared_ptr<Plan> &plan) {
    plan->recheck.reset();
    PlanDone done = std::move(plan->done);
    --activePlans_;
    done(std::move(plan->outcome));
    maybeIdle();
}

void LoadCoordinator::maybeIdle() {
    if (inFlight() == 0 && idle_)
        idle_();
}

}  // namespace lkmd

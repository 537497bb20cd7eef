// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernel_state.h"
#include "metrics.h"
#include "module_backend.h"
#include "module_events.h"
#include "module_registry.h"
#include "requester.h"
#include "requester_matcher.h"
#include "scheduler.h"
#include "state_file.h"

namespace lkmd {

// What a load is for: written into the record of every module it inserts.
struct LoadCause {
    std::string request;  // the requested name, e.g. "fs-vfat"
    Origin origin = Origin::Bus;
    std::string device;  // hotplug and coldplug: the devpath
    std::string subsystem;
    bool autoclean = false;
    Requester requester;
    std::string target;  // the module the plan is for: the other steps are what it needs
};

struct StepFailure {
    std::string module;
    int error = 0;
};

struct PlanOutcome {
    int error = 0;  // of the first required step that failed
    std::string failedModule;
    std::vector<std::string> inserted;  // what lkmd inserted for this plan, in order
    std::vector<StepFailure> skipped;   // optional steps that failed: the load went on without
    // Answered while an init ran that may itself be the asker (see awaitSettled).
    std::string initStillRunning;
};

// Carries out load plans. The one owner of "one operation per module at a time": an insertion
// that several plans need is done once and all of them wait for it; a plan that needs a module
// lkmd is removing waits for the removal; a removal waits for nothing and is refused while the
// module is being inserted. Lives on the loop thread; insertions run as jobs.
class LoadCoordinator {
public:
    using PlanDone = std::function<void(PlanOutcome)>;

    // A module's init may ask for a module itself (docs/kernel.md, "Requests from a module's
    // init"): a request that meets an init in progress waits this long for it, then is answered.
    static constexpr std::uint64_t kInitWaitUsec = 1'000'000;
    // A module someone else is removing is looked at again until it is gone, this long at most.
    static constexpr std::uint64_t kGoingWaitUsec = 5'000'000;
    static constexpr std::uint64_t kRecheckUsec = 10'000;

    LoadCoordinator(ModuleBackend &backend, JobRunner &runner, Scheduler &scheduler,
                    ModuleRegistry &registry, const KernelState &kernel, ModuleEvents &events,
                    StateFile *stateFile, InsertingThreads *threads = nullptr,
                    Metrics *metrics = nullptr);
    ~LoadCoordinator();

    // Whether policy lets a module be inserted, asked right before each insertion.
    using Allowed = std::function<bool(const std::string &module)>;

    // Inserts the plan's steps in order; done is called once, possibly before execute returns.
    void execute(std::vector<PlanStep> plan, LoadCause cause, Allowed allowed, PlanDone done);

    // A removal of module may start: false while lkmd inserts or removes it.
    bool tryBeginRemoval(const std::string &module);
    // The removal is over: plans that waited for it look at the module again.
    void endRemoval(const std::string &module);

    bool inserting(const std::string &module) const;
    bool removing(const std::string &module) const;
    // Plans and removals not finished yet.
    std::size_t inFlight() const { return activePlans_ + removals_; }
    // Called whenever inFlight() drops to 0 (shutdown waits for it).
    void setIdleHandler(std::function<void()> handler) { idle_ = std::move(handler); }

private:
    struct Plan;
    struct Operation {
        bool removal = false;
        std::uint64_t startedUsec = 0;
        std::vector<std::function<void(int result, bool inserted)>> waiters;
    };

    static bool outsideAnyInit(const Requester &requester);
    void advance(const std::shared_ptr<Plan> &plan);
    void awaitSettled(const std::shared_ptr<Plan> &plan, ModuleState state);
    void recheck(const std::shared_ptr<Plan> &plan);
    void startInsertion(const PlanStep &step, const LoadCause &cause);
    void finishInsertion(const PlanStep &step, Origin origin, int result);
    void stepDone(const std::shared_ptr<Plan> &plan, int result, bool inserted);
    void finish(const std::shared_ptr<Plan> &plan);
    void maybeIdle();

    ModuleBackend &backend_;
    JobRunner &runner_;
    Scheduler &scheduler_;
    ModuleRegistry &registry_;
    const KernelState &kernel_;
    ModuleEvents &events_;
    StateFile *stateFile_;
    InsertingThreads *threads_;
    Metrics *metrics_;
    std::map<std::string, Operation> operations_;
    std::size_t activePlans_ = 0;
    std::size_t removals_ = 0;
    std::function<void()> idle_;
};

}  // namespace lkmd

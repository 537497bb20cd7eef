// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <deque>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "autoclean.h"
#include "fake_kernel.h"
#include "kernel_state.h"
#include "load_coordinator.h"
#include "loader.h"
#include "module_queries.h"
#include "request_log.h"
#include "state_file.h"
#include "temp_dir.h"
#include "unloader.h"
#include "use_probe.h"

// A clock the test moves; timers fire when it passes them, in order.
class ManualScheduler final : public lkmd::Scheduler {
public:
    std::uint64_t monotonicUsec() override { return now; }
    std::uint64_t realtimeUsec() override { return now + 1'000'000'000'000; }
    std::unique_ptr<lkmd::Timer> timer(std::function<void()> fire) override {
        return std::make_unique<ManualTimer>(this, std::move(fire));
    }

    // Moves the clock to usec, firing every timer due on the way.
    void advanceTo(std::uint64_t usec) {
        for (;;) {
            ManualTimer *next = nullptr;
            for (ManualTimer *timer : timers_)
                if (timer->armed_ && timer->at_ <= usec && (!next || timer->at_ < next->at_))
                    next = timer;
            if (next == nullptr)
                break;
            now = std::max(now, next->at_);
            next->armed_ = false;
            std::function<void()> fire = next->fire_;  // it may destroy its timer
            fire();
        }
        now = std::max(now, usec);
    }
    void advanceBy(std::uint64_t usec) { advanceTo(now + usec); }

    std::uint64_t now = 0;

private:
    struct ManualTimer final : lkmd::Timer {
        ManualTimer(ManualScheduler *owner, std::function<void()> fire)
            : owner_(owner), fire_(std::move(fire)) {
            owner_->timers_.insert(this);
        }
        ~ManualTimer() override { owner_->timers_.erase(this); }
        void setAt(std::uint64_t usec) override {
            at_ = usec;
            armed_ = true;
        }
        void cancel() override { armed_ = false; }
        bool armed() const override { return armed_; }
        std::uint64_t at() const override { return at_; }

        ManualScheduler *owner_;
        std::function<void()> fire_;
        std::uint64_t at_ = 0;
        bool armed_ = false;
    };
    std::set<ManualTimer *> timers_;
};

// Jobs wait until the test runs them, on the test's own thread: no threads, no sleeps.
class QueuedJobRunner final : public lkmd::JobRunner {
public:
    explicit QueuedJobRunner(lkmd::ModuleBackend &backend) : backend_(backend) {}
    void submit(Job job) override { jobs_.push_back(std::move(job)); }

    std::size_t pending() const { return jobs_.size(); }
    // Runs the oldest job and its completion; false when there was none.
    bool runNext() {
        if (jobs_.empty())
            return false;
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        Completion completion = job(backend_);
        if (completion)
            completion();
        return true;
    }
    // Runs jobs until none is left (completions may queue more).
    void runAll() {
        while (runNext()) {
        }
    }

private:
    lkmd::ModuleBackend &backend_;
    std::deque<Job> jobs_;
};

struct RecordedEvents final : lkmd::ModuleEvents {
    std::vector<std::string> loaded;
    std::vector<std::string> unloaded;
    void moduleLoaded(const std::string &module, lkmd::Origin origin) override {
        loaded.push_back(module + "/" + lkmd::originName(origin));
    }
    void moduleUnloaded(const std::string &module, const std::string &reason) override {
        unloaded.push_back(module + "/" + reason);
    }
};

// lkmd's core over a simulated kernel in a temp dir, wired as the daemon wires it, with a manual
// clock and jobs run by the test. Call start() from SetUp() inside ASSERT_NO_FATAL_FAILURE.
struct CoreWorld {
    void start(const std::string &world) {
        std::ofstream(dir.path() / "world") << world;
        int error = 0;
        std::string detail;
        kernel = lkmd::FakeKernel::load(dir.path() / "world", dir.path() / "proc",
                                        dir.path() / "sys", &error, &detail);
        ASSERT_TRUE(kernel) << detail;
        backend = std::make_unique<lkmd::FakeBackend>(kernel);
        runner = std::make_unique<QueuedJobRunner>(*backend);
        backend->serveLoop(*runner);
        state = std::make_unique<lkmd::KernelState>(dir.path() / "proc", dir.path() / "sys");
        stateFile = std::make_unique<lkmd::StateFile>(dir.path() / "modules.state");
        lkmd::persistRegistry(registry, *stateFile, *runner);
        events.add(&recorded);
        coordinator = std::make_unique<lkmd::LoadCoordinator>(
            *backend, *runner, scheduler, registry, *state, events, stateFile.get());
        loader = std::make_unique<lkmd::Loader>(*backend, *coordinator, requests, scheduler);
        probe = std::make_unique<lkmd::UseProbe>(*state, [this](std::set<std::string> *kinds) {
            *kinds = links;
            return 0;
        });
        unloader = std::make_unique<lkmd::Unloader>(*backend, *coordinator, *runner, registry,
                                                    *probe, events);
        queries = std::make_unique<lkmd::ModuleQueries>(*backend, registry, *state);
    }

    void makeAutoclean(lkmd::AutocleanSettings settings) {
        autoclean = std::make_unique<lkmd::Autoclean>(scheduler, *runner, registry, *unloader,
                                                      *probe, std::move(settings));
        events.add(autoclean.get());
    }

    // Loads and runs every job until the answer is there.
    lkmd::Outcome load(const std::string &request, lkmd::Origin origin = lkmd::Origin::Bus,
                       lkmd::LoadOptions options = {}) {
        std::optional<lkmd::Outcome> result;
        loader->load(
            request, origin, [&](lkmd::Outcome outcome) { result = std::move(outcome); },
            std::move(options));
        runner->runAll();
        EXPECT_TRUE(result) << "no answer for " << request;
        return result.value_or(lkmd::Outcome{-ETIMEDOUT, "no answer", {}});
    }
    lkmd::Outcome unload(const std::string &name) {
        std::optional<lkmd::Outcome> result;
        unloader->unload(name, [&](lkmd::Outcome outcome) { result = std::move(outcome); });
        runner->runAll();
        EXPECT_TRUE(result) << "no answer for the unload of " << name;
        return result.value_or(lkmd::Outcome{-ETIMEDOUT, "no answer", {}});
    }

    TempDir dir;
    std::shared_ptr<lkmd::FakeKernel> kernel;
    std::unique_ptr<lkmd::ModuleBackend> backend;
    std::unique_ptr<QueuedJobRunner> runner;
    ManualScheduler scheduler;
    std::unique_ptr<lkmd::KernelState> state;
    std::unique_ptr<lkmd::StateFile> stateFile;
    lkmd::ModuleRegistry registry;
    lkmd::ModuleEventHub events;
    RecordedEvents recorded;
    lkmd::RequestLog requests;
    std::unique_ptr<lkmd::LoadCoordinator> coordinator;
    std::unique_ptr<lkmd::Loader> loader;
    std::set<std::string> links;
    std::unique_ptr<lkmd::UseProbe> probe;
    std::unique_ptr<lkmd::Unloader> unloader;
    std::unique_ptr<lkmd::ModuleQueries> queries;
    std::unique_ptr<lkmd::Autoclean> autoclean;
};

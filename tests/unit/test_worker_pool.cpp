// SPDX-License-Identifier: LGPL-2.1-or-later
// The worker pool and the load coordinator on real threads and a real sd-event loop, over the
// simulated kernel. Also what the TSan build runs (scripts/test): a data race between the loop
// and the workers is a failure there.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <optional>

#include <gtest/gtest.h>

#include "event_scheduler.h"
#include "fake_kernel.h"
#include "kernel_state.h"
#include "load_coordinator.h"
#include "loader.h"
#include "module_events.h"
#include "module_registry.h"
#include "request_log.h"
#include "sd_ptr.h"
#include "temp_dir.h"
#include "worker_pool.h"

using namespace lkmd;

namespace {

class WorkerPoolTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::ofstream(dir_.path() / "world") << "module fat\n"
                                                "module vfat deps=fat aliases=fs-vfat init_ms=20\n"
                                                "module dummy aliases=rtnl-link-dummy\n"
                                                "module loop init_ms=5\n";
        int error = 0;
        std::string detail;
        kernel_ = FakeKernel::load(dir_.path() / "world", dir_.path() / "proc", dir_.path() / "sys",
                                   &error, &detail);
        ASSERT_TRUE(kernel_) << detail;
        sd_event *raw = nullptr;
        ASSERT_GE(sd_event_new(&raw), 0);
        event_.reset(raw);
        pool_ = WorkerPool::create(
            event_.get(), [kernel = kernel_] { return std::make_unique<FakeBackend>(kernel); }, 64,
            &error);
        ASSERT_TRUE(pool_) << error;
    }

    // Turns the loop until done() says so.
    void runUntil(const std::function<bool()> &done) {
        for (int turns = 0; !done() && turns < 100000; ++turns)
            ASSERT_GE(sd_event_run(event_.get(), 100'000), 0);
        ASSERT_TRUE(done());
    }

    TempDir dir_;
    std::shared_ptr<FakeKernel> kernel_;
    EventPtr event_;
    std::unique_ptr<WorkerPool> pool_;
};

}  // namespace

TEST_F(WorkerPoolTest, EveryJobsCompletionRunsOnceOnTheLoopThread) {
    const std::thread::id loop = std::this_thread::get_id();
    std::size_t completed = 0;
    bool offLoop = false;
    for (int i = 0; i < 500; ++i)
        pool_->submit([&, i](ModuleBackend &backend) -> JobRunner::Completion {
            // Blocking work on a worker: the simulated kernel's own state is shared and locked.
            std::vector<std::string> modules;
            backend.resolve(i % 2 ? "fs-vfat" : "rtnl-link-dummy", &modules);
            return [&] {
                offLoop = offLoop || std::this_thread::get_id() != loop;
                ++completed;
            };
        });
    runUntil([&] { return completed == 500; });
    EXPECT_FALSE(offLoop);
}

TEST_F(WorkerPoolTest, ConcurrentLoadsOfOneModuleShareOneInsertion) {
    FakeBackend loopBackend(kernel_);
    loopBackend.serveLoop(*pool_);
    EventScheduler scheduler(event_.get());
    ModuleRegistry registry;
    KernelState state(dir_.path() / "proc", dir_.path() / "sys");
    ModuleEventHub events;
    RequestLog requests;
    LoadCoordinator coordinator(loopBackend, *pool_, scheduler, registry, state, events, nullptr);
    Loader loader(loopBackend, coordinator, requests, scheduler);

    std::mutex lock;  // the hook runs on the workers
    std::vector<std::string> inserted;
    kernel_->setInsertHook([&](const std::string &module) {
        std::lock_guard guard(lock);
        inserted.push_back(module);
    });
    std::size_t answered = 0;
    std::size_t failed = 0;
    for (int i = 0; i < 50; ++i)
        for (const char *request : {"fs-vfat", "loop", "rtnl-link-dummy", "fs-nonexistent"})
            loader.load(request, Origin::Kernel, [&](Outcome outcome) {
                ++answered;
                failed += outcome.error < 0;
            });
    runUntil([&] { return answered == 200; });
    EXPECT_EQ(failed, 50u);  // fs-nonexistent
    std::lock_guard guard(lock);
    std::sort(inserted.begin(), inserted.end());
    EXPECT_EQ(inserted, (std::vector<std::string>{"dummy", "fat", "loop", "vfat"}));
    EXPECT_EQ(kernel_->state("vfat"), ModuleState::Live);
}

// Opening a libkmod context reads the module indexes: a worker does it for the first job that
// calls its backend, never for jobs that do not (the coldplug walk, file writes), and once.
TEST_F(WorkerPoolTest, BackendsAreOpenedByTheFirstJobThatUsesThemOnly) {
    std::atomic<int> opened = 0;
    int error = 0;
    auto pool = WorkerPool::create(
        event_.get(),
        [&, kernel = kernel_] {
            ++opened;
            return std::make_unique<FakeBackend>(kernel);
        },
        1, &error);
    ASSERT_TRUE(pool) << error;
    int done = 0;
    auto run = [&](bool useBackend) {
        pool->submit([useBackend](ModuleBackend &backend) -> JobRunner::Completion {
            std::vector<std::string> modules;
            if (useBackend)
                backend.resolve("rtnl-link-dummy", &modules);
            return {};
        });
        pool->submit([&](ModuleBackend &) -> JobRunner::Completion { return [&] { ++done; }; });
        const int target = done + 1;
        runUntil([&] { return done == target; });
    };
    run(false);
    EXPECT_EQ(opened, 0) << "a job that never touched the backend opened a context";
    run(true);
    run(true);
    EXPECT_EQ(opened, 1);
}

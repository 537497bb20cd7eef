// SPDX-License-Identifier: LGPL-2.1-or-later
#include <cerrno>
#include <chrono>
#include <fstream>

#include <gtest/gtest.h>

#include "fake_backend.h"
#include "fake_world.h"
#include "manager.h"
#include "sd_ptr.h"
#include "temp_dir.h"

using namespace lkmd;

namespace {

struct Recorder final : ManagerListener {
    std::vector<std::string> loaded;
    std::vector<std::string> unloaded;
    void moduleLoaded(const std::string &module, Origin origin) override {
        loaded.push_back(module + "/" + originName(origin));
    }
    void moduleUnloaded(const std::string &module, const char *reason) override {
        unloaded.push_back(module + "/" + reason);
    }
};

// A simulated kernel, a real sd-event loop and a real worker pool.
class ManagerTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(
            world_.start("module fat\n"
                         "module vfat deps=fat aliases=fs-vfat\n"
                         "module slow init_ms=1500\n"
                         "module slowdep init_ms=300\n"
                         "module top deps=slowdep aliases=top-alias\n"
                         "module sctp aliases=net-pf-10-proto-132\n"
                         "module user_of_sctp deps=sctp\n"
                         "module broken init_error=ENODEV\n"
                         "module e1000 device=pci:e1000:0000:00:03.0\n"
                         "builtin unix\n"
                         "loaded other\n"
                         "module other\n",
                         8));
        manager_ = std::make_unique<Manager>(
            *loopBackend_, *pool_, *state_, [] { return 42; },
            [] {
                return static_cast<std::uint64_t>(
                    std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
            });
        manager_->addListener(&recorder_);
    }

    Outcome runUntilDone(const std::function<void(Manager::Done)> &start) {
        std::optional<Outcome> result;
        start([&](Outcome outcome) { result = std::move(outcome); });
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!result && std::chrono::steady_clock::now() < deadline)
            sd_event_run(event_.get(), 100000);
        EXPECT_TRUE(result) << "no answer within 10 s";
        return result.value_or(Outcome{-ETIMEDOUT, "timeout", {}});
    }

    Outcome load(const std::string &name, Origin origin = Origin::Bus) {
        return runUntilDone([&](Manager::Done done) { manager_->load(name, origin, done); });
    }
    Outcome unload(const std::string &name) {
        return runUntilDone([&](Manager::Done done) { manager_->unload(name, done); });
    }

    FakeWorld world_;
    TempDir &dir_ = world_.dir;
    std::shared_ptr<FakeKernel> &kernel_ = world_.kernel;
    EventPtr &event_ = world_.event;
    std::unique_ptr<ModuleBackend> &loopBackend_ = world_.loopBackend;
    std::unique_ptr<WorkerPool> &pool_ = world_.pool;
    std::unique_ptr<KernelState> &state_ = world_.state;
    std::unique_ptr<Manager> manager_;
    Recorder recorder_;
};

}  // namespace

TEST_F(ManagerTest, LoadByAliasInsertsDependenciesAndRecordsTheTrigger) {
    const Outcome outcome = load("fs-vfat");
    EXPECT_EQ(outcome.error, 0) << outcome.message;
    EXPECT_EQ(outcome.inserted, (std::vector<std::string>{"fat", "vfat"}));
    const ModuleRecord *record = manager_->registry().find("fat");
    ASSERT_NE(record, nullptr);
    EXPECT_EQ(record->origin, Origin::Bus);
    EXPECT_EQ(record->trigger, "fs-vfat");
    EXPECT_EQ(record->loadedAtUsec, 42u);
    EXPECT_EQ(recorder_.loaded, (std::vector<std::string>{"fat/bus", "vfat/bus"}));
}

TEST_F(ManagerTest, UnknownNameIsNoSuchModule) {
    EXPECT_EQ(load("fs-nonexistent").error, -ENOENT);
}

TEST_F(ManagerTest, InvalidNameNeverReachesTheBackend) {
    const Outcome outcome = load("fs-../x");
    EXPECT_EQ(outcome.error, -EINVAL);
    EXPECT_NE(outcome.message.find("contains '/'"), std::string::npos);
}

TEST_F(ManagerTest, FailedInitIsReportedWithTheModuleName) {
    const Outcome outcome = load("broken");
    EXPECT_EQ(outcome.error, -ENODEV);
    EXPECT_EQ(outcome.message, "No such device (see dmesg)");
    EXPECT_EQ(manager_->registry().find("broken"), nullptr);
}

TEST_F(ManagerTest, BuiltinOrLoadedModulesInsertNothing) {
    EXPECT_TRUE(load("unix").inserted.empty());
    EXPECT_TRUE(load("other").inserted.empty());
    EXPECT_EQ(manager_->registry().find("other"), nullptr);
}

TEST_F(ManagerTest, NeverUnloadsModuleWithBoundDevice) {
    ASSERT_EQ(load("e1000").error, 0);
    const Outcome outcome = unload("e1000");
    EXPECT_EQ(outcome.error, -EBUSY);
    EXPECT_NE(outcome.message.find("0000:00:03.0"), std::string::npos);
    EXPECT_EQ(kernel_->state("e1000"), ModuleState::Live);
}

TEST_F(ManagerTest, NeverUnloadsModuleHeldByAnother) {
    ASSERT_EQ(load("vfat").error, 0);
    EXPECT_EQ(unload("fat").error, -EBUSY);
    EXPECT_EQ(kernel_->state("fat"), ModuleState::Live);
}

TEST_F(ManagerTest, UnloadForgetsTheRecordAndTellsTheListener) {
    ASSERT_EQ(load("vfat").error, 0);
    EXPECT_EQ(unload("vfat").error, 0);
    EXPECT_EQ(manager_->registry().find("vfat"), nullptr);
    EXPECT_EQ(recorder_.unloaded, std::vector<std::string>{"vfat/request"});
}

TEST_F(ManagerTest, UnloadOfBuiltinOrAbsentModuleHasDistinctErrors) {
    EXPECT_EQ(unload("unix").error, -EOPNOTSUPP);
    EXPECT_EQ(unload("vfat").error, -ESRCH);
    EXPECT_EQ(unload("nothing_like_it").error, -ENOENT);
}

TEST_F(ManagerTest, ListShowsExternalModulesWithoutRecord) {
    ASSERT_EQ(load("vfat").error, 0);
    std::vector<ModuleView> modules;
    ASSERT_EQ(manager_->list(&modules), 0);
    ASSERT_EQ(modules.size(), 3u);
    EXPECT_EQ(modules[0].kernel.name, "fat");
    EXPECT_TRUE(modules[0].record.has_value());
    EXPECT_EQ(modules[1].kernel.name, "other");
    EXPECT_FALSE(modules[1].record.has_value());
}

TEST_F(ManagerTest, RecordIsDroppedWhenSomeoneElseUnloadsTheModule) {
    ASSERT_EQ(load("slow").error, 0);
    ASSERT_EQ(kernel_->remove("slow"), 0);  // rmmod behind lkmd's back
    std::vector<ModuleView> modules;
    ASSERT_EQ(manager_->list(&modules), 0);
    EXPECT_EQ(manager_->registry().find("slow"), nullptr);
}

TEST_F(ManagerTest, SlowInitDoesNotBlockTheLoop) {
    std::optional<Outcome> slow;
    manager_->load("slow", Origin::Bus, [&](Outcome outcome) { slow = std::move(outcome); });
    // While "slow" sits in its init on a worker, another load completes through the same loop.
    const Outcome fat = load("fat");
    EXPECT_EQ(fat.error, 0);
    EXPECT_FALSE(slow.has_value());
    while (!slow)
        sd_event_run(event_.get(), 100000);
    EXPECT_EQ(slow->inserted, std::vector<std::string>{"slow"});
}

TEST_F(ManagerTest, GetDistinguishesUnknownFromNotLoaded) {
    ModuleView view;
    ModuleBindings bindings;
    EXPECT_EQ(manager_->get("vfat", &view, &bindings), -ESRCH);
    EXPECT_EQ(manager_->get("nothing_like_it", &view, &bindings), -ENOENT);
    EXPECT_EQ(manager_->get("unix", &view, &bindings), 0);
    EXPECT_TRUE(view.builtin);
}

TEST_F(ManagerTest, ConcurrentRequestsForOneModuleShareOneInsertion) {
    std::vector<Outcome> outcomes;
    for (int i = 0; i < 5; ++i)
        manager_->load("slow", Origin::Kernel,
                       [&](Outcome outcome) { outcomes.push_back(std::move(outcome)); });
    EXPECT_EQ(manager_->loadsInFlight(), 1u);
    while (outcomes.size() < 5)
        sd_event_run(event_.get(), 100000);
    for (const Outcome &outcome : outcomes)
        EXPECT_EQ(outcome.error, 0) << outcome.message;
    EXPECT_EQ(recorder_.loaded, std::vector<std::string>{"slow/kernel"});
}

// A request arriving while an init of the same load runs may come from inside that init: it must
// not wait behind the load that caused it (KERNEL-FACTS 4).
TEST_F(ManagerTest, RequestDuringARunningInitIsNotQueuedBehindIt) {
    std::optional<Outcome> first;
    manager_->load("top", Origin::Kernel, [&](Outcome outcome) { first = std::move(outcome); });
    while (kernel_->state("slowdep") != ModuleState::Coming)
        sd_event_run(event_.get(), 1000);
    std::optional<Outcome> nested;
    manager_->load("top-alias", Origin::Kernel,
                   [&](Outcome outcome) { nested = std::move(outcome); });
    EXPECT_EQ(manager_->loadsInFlight(), 1u);  // the nested one runs beside it, not joined
    while (!first || !nested)
        sd_event_run(event_.get(), 100000);
    EXPECT_EQ(first->error, 0);
    EXPECT_EQ(nested->error, 0);
    EXPECT_EQ(kernel_->state("top"), ModuleState::Live);
    // Whichever inserted each module recorded it, once.
    EXPECT_EQ(recorder_.loaded.size(), 2u);
}

TEST_F(ManagerTest, RequestMatchingADeniedPatternFailsWithoutLoading) {
    Policy policy;
    policy.denyRequests = {"net-pf-10-proto-*"};
    manager_->setPolicy(policy);
    const Outcome outcome = load("net-pf-10-proto-132", Origin::Kernel);
    EXPECT_EQ(outcome.error, -EACCES);
    EXPECT_EQ(outcome.message, "denied by policy (Requests=net-pf-10-proto-*)");
    EXPECT_EQ(kernel_->state("sctp"), ModuleState::Absent);
    ASSERT_FALSE(manager_->history().empty());
    EXPECT_STREQ(manager_->history().back().result(), "denied");
}

TEST_F(ManagerTest, DeniedModuleIsRefusedByNameByAliasAndAsDependency) {
    Policy policy;
    policy.denyModules = {"sctp"};
    manager_->setPolicy(policy);
    EXPECT_EQ(load("sctp").error, -EACCES);
    EXPECT_EQ(load("net-pf-10-proto-132").error, -EACCES);
    const Outcome dependency = load("user_of_sctp");
    EXPECT_EQ(dependency.error, -EACCES);
    EXPECT_NE(dependency.message.find("Modules=sctp"), std::string::npos) << dependency.message;
    EXPECT_EQ(kernel_->state("sctp"), ModuleState::Absent);
    EXPECT_EQ(kernel_->state("user_of_sctp"), ModuleState::Absent);
}

TEST_F(ManagerTest, HistoryRecordsEveryRequestWithItsResult) {
    load("fs-vfat", Origin::Kernel);
    load("netdev-d0", Origin::Kernel);
    load("fs-vfat", Origin::Kernel);
    const auto &history = manager_->history();
    ASSERT_EQ(history.size(), 3u);
    EXPECT_STREQ(history[0].result(), "loaded");
    EXPECT_EQ(history[0].inserted, (std::vector<std::string>{"fat", "vfat"}));
    EXPECT_STREQ(history[1].result(), "not-found");
    EXPECT_STREQ(history[2].result(), "present");
    EXPECT_EQ(history[1].origin, Origin::Kernel);
}

// A request for a module whose init runs: no second finit_module (the kernel would make it wait
// for that init, and the init may be the one asking), but a bounded wait, then an answer.
TEST_F(ManagerTest, RequestForAModuleInItsInitIsAnsweredWithoutWaitingForTheInit) {
    std::optional<Outcome> first;
    manager_->load("slow", Origin::Kernel, [&](Outcome outcome) { first = std::move(outcome); });
    while (kernel_->state("slow") != ModuleState::Coming)
        sd_event_run(event_.get(), 1000);
    std::optional<Outcome> nested;
    manager_->load("slow", Origin::Kernel, [&](Outcome outcome) { nested = std::move(outcome); });
    while (!first || !nested)
        sd_event_run(event_.get(), 100000);
    EXPECT_EQ(nested->error, 0);
    EXPECT_TRUE(nested->inserted.empty());
    EXPECT_EQ(first->inserted, std::vector<std::string>{"slow"});
}

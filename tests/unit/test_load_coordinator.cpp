// SPDX-License-Identifier: LGPL-2.1-or-later
#include <cerrno>
#include <optional>

#include <gtest/gtest.h>

#include "core_world.h"

using namespace lkmd;

namespace {

class LoadCoordinatorTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(
            world_.start("module fat\n"
                         "module vfat deps=fat aliases=fs-vfat\n"
                         "module slow\n"
                         "module slowdep\n"
                         "module top deps=slowdep aliases=top-alias\n"));
    }

    void startLoad(const std::string &request, std::optional<Outcome> *result,
                   Origin origin = Origin::Kernel) {
        world_.loader->load(request, origin,
                            [result](Outcome outcome) { *result = std::move(outcome); });
    }

    CoreWorld world_;
};

}  // namespace

TEST_F(LoadCoordinatorTest, ConcurrentRequestsForOneModuleShareOneInsertion) {
    int insertions = 0;
    world_.kernel->setInsertHook([&](const std::string &) { ++insertions; });
    std::vector<std::optional<Outcome>> outcomes(5);
    for (auto &outcome : outcomes)
        startLoad("slow", &outcome);
    world_.runner->runAll();
    EXPECT_EQ(insertions, 1) << "one insertion for five requests";
    for (const auto &outcome : outcomes) {
        ASSERT_TRUE(outcome);
        EXPECT_EQ(outcome->error, 0) << outcome->message;
    }
    EXPECT_EQ(world_.recorded.loaded, std::vector<std::string>{"slow/kernel"});
}

// A request arriving while an init of the same load runs may come from inside that init: it must
// not wait behind the load that caused it (docs/kernel.md, "Requests from a module's init").
TEST_F(LoadCoordinatorTest, RequestDuringARunningInitIsNotQueuedBehindIt) {
    std::optional<Outcome> first;
    startLoad("top", &first);            // slowdep's insertion is queued
    world_.kernel->holdInit("slowdep");  // ... and inside slowdep's init now
    std::optional<Outcome> nested;
    startLoad("top-alias", &nested);
    EXPECT_FALSE(nested) << "looked at again, not answered at once";
    world_.scheduler.advanceBy(LoadCoordinator::kInitWaitUsec / 2);
    EXPECT_FALSE(nested) << "the init may still finish";
    world_.scheduler.advanceBy(LoadCoordinator::kInitWaitUsec);
    ASSERT_TRUE(nested) << "answered after a bounded wait, while the init still runs";
    EXPECT_EQ(nested->error, 0);
    EXPECT_TRUE(nested->inserted.empty());
    EXPECT_FALSE(first);
    world_.runner->runAll();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->error, 0);
    EXPECT_EQ(first->inserted, (std::vector<std::string>{"slowdep", "top"}));
}

// A mount that lkmd knows came from userspace cannot be what the init waits for: it waits for
// the whole init and hears the truth, not "done" while the module is still missing.
TEST_F(LoadCoordinatorTest, AKnownUserspaceRequesterWaitsForTheWholeInit) {
    std::optional<Outcome> first;
    startLoad("slow", &first);
    world_.kernel->holdInit("slow");
    LoadOptions options;
    options.requester.known = true;
    options.requester.pid = 4242;
    options.requester.comm = "mount";
    std::optional<Outcome> second;
    world_.loader->load(
        "slow", Origin::Kernel, [&](Outcome outcome) { second = std::move(outcome); }, options);
    world_.scheduler.advanceBy(10 * LoadCoordinator::kInitWaitUsec);
    EXPECT_FALSE(second) << "answered while the init still runs";
    world_.runner->runAll();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->error, 0);
    EXPECT_EQ(world_.kernel->state("slow"), ModuleState::Live);
}

TEST_F(LoadCoordinatorTest, AKernelThreadMayBeWhatTheInitWaitsFor) {
    std::optional<Outcome> first;
    startLoad("slow", &first);
    world_.kernel->holdInit("slow");
    LoadOptions options;
    options.requester.known = true;
    options.requester.kernelThread = true;
    options.requester.comm = "cryptomgr_probe";
    std::optional<Outcome> nested;
    world_.loader->load(
        "slow", Origin::Kernel, [&](Outcome outcome) { nested = std::move(outcome); }, options);
    world_.scheduler.advanceBy(2 * LoadCoordinator::kInitWaitUsec);
    ASSERT_TRUE(nested) << "a bounded wait, then an answer";
    world_.runner->runAll();
}

TEST_F(LoadCoordinatorTest, AnInitThatEndsDuringTheWaitLetsTheRequestGoOn) {
    std::optional<Outcome> first;
    startLoad("slow", &first);
    world_.kernel->holdInit("slow");
    std::optional<Outcome> second;
    startLoad("slow", &second);
    world_.runner->runAll();  // the init ends
    ASSERT_TRUE(first);
    EXPECT_FALSE(second);
    world_.scheduler.advanceBy(LoadCoordinator::kRecheckUsec);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->error, 0);
}

// The race of item 4 of the correctness issue: a mount needs fat while lkmd removes it. The load
// waits for the removal and then inserts fat again, credited to the request that needed it.
TEST_F(LoadCoordinatorTest, APlanWaitsForLkmdsRemovalAndOwnsTheReinsertion) {
    ASSERT_EQ(world_.load("fs-vfat").error, 0);
    ASSERT_EQ(world_.unload("vfat").error, 0);
    std::optional<Outcome> unloaded;
    world_.unloader->unload("fat", [&](Outcome outcome) { unloaded = std::move(outcome); });
    ASSERT_TRUE(world_.coordinator->removing("fat"));
    std::optional<Outcome> mount;
    startLoad("fs-vfat", &mount);
    world_.runner->runAll();
    ASSERT_TRUE(unloaded);
    EXPECT_EQ(unloaded->error, 0);
    ASSERT_TRUE(mount);
    EXPECT_EQ(mount->error, 0) << mount->message;
    EXPECT_EQ(mount->inserted, (std::vector<std::string>{"fat", "vfat"}));
    const ModuleRecord *fat = world_.registry.find("fat");
    ASSERT_NE(fat, nullptr) << "fat is lkmd's, not external";
    EXPECT_EQ(fat->origin, Origin::Kernel);
    EXPECT_EQ(fat->trigger, "fs-vfat");
}

TEST_F(LoadCoordinatorTest, ARemovalIsRefusedWhileTheModuleIsBeingInserted) {
    std::optional<Outcome> load;
    startLoad("slow", &load);
    world_.kernel->holdInit("slow");
    std::optional<Outcome> unload;
    world_.unloader->unload("slow", [&](Outcome outcome) { unload = std::move(outcome); });
    ASSERT_TRUE(unload);
    EXPECT_EQ(unload->error, -EBUSY);
    EXPECT_EQ(unload->message, "module is being loaded");
    world_.runner->runAll();
    EXPECT_EQ(world_.kernel->state("slow"), ModuleState::Live);
}

// Item 5: the intent is on disk before finit_module starts, so that an lkmd killed meanwhile
// leaves its successor a record to adopt.
TEST_F(LoadCoordinatorTest, TheIntentIsWrittenBeforeTheInsertion) {
    std::string atInsertion;
    world_.kernel->setInsertHook([&](const std::string &) {
        std::string text;
        world_.stateFile->read(&text);
        atInsertion = text;
    });
    ASSERT_EQ(world_.load("slow").error, 0);
    EXPECT_NE(atInsertion.find("slow\torigin=bus\ttrigger=slow\t"), std::string::npos)
        << atInsertion;
    EXPECT_NE(atInsertion.find("\tinserting=1\t"), std::string::npos) << atInsertion;
}

// Item 6: while lkmd's insertion is in its init, the module is lkmd's, not "external".
TEST_F(LoadCoordinatorTest, AModuleInItsInitShowsAsLkmds) {
    std::optional<Outcome> load;
    startLoad("slow", &load);
    world_.kernel->holdInit("slow");
    std::vector<ModuleView> modules;
    ASSERT_EQ(world_.queries->list(&modules), 0);
    auto slow = std::find_if(modules.begin(), modules.end(),
                             [](const ModuleView &m) { return m.kernel.name == "slow"; });
    ASSERT_NE(slow, modules.end());
    EXPECT_EQ(slow->kernel.state, LoadState::Coming);
    ASSERT_TRUE(slow->record);
    EXPECT_TRUE(slow->record->inserting);
    EXPECT_EQ(slow->record->origin, Origin::Kernel);
    world_.runner->runAll();
}

TEST_F(LoadCoordinatorTest, AModuleSomeoneElseInsertedMeanwhileIsNotCredited) {
    std::optional<Outcome> load;
    startLoad("slow", &load);
    // modprobe slow, between lkmd's look and its finit_module().
    ASSERT_EQ(world_.kernel->insert({"slow", {}, false, true}), 0);
    world_.runner->runAll();
    ASSERT_TRUE(load);
    EXPECT_EQ(load->error, 0);
    EXPECT_TRUE(load->inserted.empty());
    EXPECT_EQ(world_.registry.find("slow"), nullptr);
}

TEST_F(LoadCoordinatorTest, ShutdownHearsWhenTheLastOperationEnds) {
    bool idle = false;
    world_.coordinator->setIdleHandler([&] { idle = true; });
    std::optional<Outcome> load;
    startLoad("fs-vfat", &load);
    EXPECT_EQ(world_.coordinator->inFlight(), 1u);
    world_.runner->runNext();
    EXPECT_FALSE(idle);
    world_.runner->runAll();
    EXPECT_TRUE(idle);
    EXPECT_EQ(world_.coordinator->inFlight(), 0u);
}

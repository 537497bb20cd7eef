// SPDX-License-Identifier: LGPL-2.1-or-later
#include <cerrno>
#include <optional>

#include <gtest/gtest.h>

#include "core_world.h"

using namespace lkmd;

namespace {

class LoaderTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(
            world_.start("module fat\n"
                         "module vfat deps=fat aliases=fs-vfat\n"
                         "module sctp aliases=net-pf-10-proto-132\n"
                         "module user_of_sctp deps=sctp\n"
                         "module broken init_error=ENODEV\n"
                         "module e1000 device=pci:e1000:0000:00:03.0\n"
                         "module crc32c_intel init_error=ENODEV\n"
                         "module crc32c_generic\n"
                         "module jbd2\n"
                         "module ext4 deps=jbd2 softdeps=crc32c_intel,"
                         "crc32c_generic aliases=fs-ext4\n"
                         "builtin unix\n"
                         "loaded other\n"
                         "module other\n"));
    }

    CoreWorld world_;
};

}  // namespace

TEST_F(LoaderTest, LoadByAliasInsertsDependenciesAndRecordsTheTrigger) {
    const Outcome outcome = world_.load("fs-vfat");
    EXPECT_EQ(outcome.error, 0) << outcome.message;
    EXPECT_EQ(outcome.inserted, (std::vector<std::string>{"fat", "vfat"}));
    const ModuleRecord *record = world_.registry.find("fat");
    ASSERT_NE(record, nullptr);
    EXPECT_EQ(record->origin, Origin::Bus);
    EXPECT_EQ(record->trigger, "fs-vfat");
    EXPECT_FALSE(record->inserting);
    EXPECT_NE(record->identity, 0u);
    EXPECT_EQ(world_.recorded.loaded, (std::vector<std::string>{"fat/bus", "vfat/bus"}));
}

TEST_F(LoaderTest, UnknownNameIsNoSuchModule) {
    EXPECT_EQ(world_.load("fs-nonexistent").error, -ENOENT);
}

TEST_F(LoaderTest, UnknownNameIsAnsweredOnlyAfterTheIndexWasLookedAtAgainFromAJob) {
    std::optional<Outcome> result;
    world_.loader->load("fs-nonexistent", Origin::Kernel, [&](Outcome o) { result = o; });
    EXPECT_FALSE(result) << "answered before the index was looked at again";
    EXPECT_EQ(world_.runner->pending(), 1u);
    world_.runner->runAll();
    ASSERT_TRUE(result);
    EXPECT_EQ(result->error, -ENOENT);
}

TEST_F(LoaderTest, ModuleInstalledAfterTheIndexWasReadLoadsForItsDevice) {
    world_.kernel->installLater("e1001", {.aliases = {"pci:v00008086d00001001*"}});
    const Outcome outcome = world_.load("pci:v00008086d00001001sv0sd0bc02sc00i00", Origin::Hotplug);
    EXPECT_EQ(outcome.error, 0) << outcome.message;
    EXPECT_EQ(outcome.inserted, (std::vector<std::string>{"e1001"}));
}

TEST_F(LoaderTest, InvalidNameNeverReachesTheBackend) {
    const Outcome outcome = world_.load("fs-../x");
    EXPECT_EQ(outcome.error, -EINVAL);
    EXPECT_NE(outcome.message.find("contains '/'"), std::string::npos);
    EXPECT_EQ(world_.runner->pending(), 0u);
}

TEST_F(LoaderTest, FailedInitIsReportedAndLeavesNoRecord) {
    const Outcome outcome = world_.load("broken");
    EXPECT_EQ(outcome.error, -ENODEV);
    EXPECT_EQ(outcome.message, "No such device (see dmesg)");
    EXPECT_EQ(world_.registry.find("broken"), nullptr);
}

TEST_F(LoaderTest, BuiltinOrLoadedModulesInsertNothing) {
    EXPECT_TRUE(world_.load("unix").inserted.empty());
    EXPECT_TRUE(world_.load("other").inserted.empty());
    EXPECT_EQ(world_.registry.find("other"), nullptr);
}

// modprobe ignores failures of soft dependencies (an accelerator refusing this CPU): so does
// lkmd. Seen on Debian's kernels: ext4's softdep crc32c_intel fails on a CPU without SSE4.2.
TEST_F(LoaderTest, AFailingSoftDependencyDoesNotStopTheLoad) {
    const Outcome outcome = world_.load("fs-ext4", Origin::Kernel);
    EXPECT_EQ(outcome.error, 0) << outcome.message;
    EXPECT_EQ(world_.kernel->state("ext4"), ModuleState::Live);
    EXPECT_EQ(world_.kernel->state("crc32c_generic"), ModuleState::Live);
    EXPECT_EQ(world_.kernel->state("crc32c_intel"), ModuleState::Absent);
    EXPECT_EQ(outcome.inserted, (std::vector<std::string>{"crc32c_generic", "jbd2", "ext4"}));
    EXPECT_EQ(world_.registry.find("crc32c_intel"), nullptr);
}

TEST_F(LoaderTest, AFailingHardDependencyFailsTheLoadNamingIt) {
    CoreWorld world;
    ASSERT_NO_FATAL_FAILURE(world.start("module dep init_error=ENODEV\nmodule top deps=dep\n"));
    const Outcome outcome = world.load("top");
    EXPECT_EQ(outcome.error, -ENODEV);
    EXPECT_EQ(outcome.message, "could not insert 'dep': No such device (see dmesg)");
    EXPECT_EQ(world.kernel->state("top"), ModuleState::Absent);
}

TEST_F(LoaderTest, RequestMatchingADeniedPatternFailsWithoutLoading) {
    Policy policy;
    policy.denyRequests = {{"net-pf-10-proto-*", "test:1"}};
    world_.loader->setPolicy(policy);
    const Outcome outcome = world_.load("net-pf-10-proto-132", Origin::Kernel);
    EXPECT_EQ(outcome.error, -EACCES);
    EXPECT_EQ(outcome.message, "denied by policy (Requests=net-pf-10-proto-* at test:1)");
    EXPECT_EQ(world_.kernel->state("sctp"), ModuleState::Absent);
    ASSERT_FALSE(world_.requests.records().empty());
    EXPECT_STREQ(world_.requests.records().back().result(), "denied");
}

TEST_F(LoaderTest, DeniedModuleIsRefusedByNameByAliasAndAsDependency) {
    Policy policy;
    policy.denyModules = {{"sctp", "test:2"}};
    world_.loader->setPolicy(policy);
    EXPECT_EQ(world_.load("sctp").error, -EACCES);
    EXPECT_EQ(world_.load("net-pf-10-proto-132").error, -EACCES);
    const Outcome dependency = world_.load("user_of_sctp");
    EXPECT_EQ(dependency.error, -EACCES);
    EXPECT_NE(dependency.message.find("Modules=sctp"), std::string::npos) << dependency.message;
    EXPECT_EQ(world_.kernel->state("sctp"), ModuleState::Absent);
    EXPECT_EQ(world_.kernel->state("user_of_sctp"), ModuleState::Absent);
}

TEST_F(LoaderTest, ADeniedSoftDependencyIsLeftOutNotTheLoad) {
    Policy policy;
    policy.denyModules = {{"crc32c_generic", "test:3"}};
    world_.loader->setPolicy(policy);
    const Outcome outcome = world_.load("fs-ext4");
    EXPECT_EQ(outcome.error, 0) << outcome.message;
    EXPECT_EQ(world_.kernel->state("ext4"), ModuleState::Live);
    EXPECT_EQ(world_.kernel->state("crc32c_generic"), ModuleState::Absent);
}

TEST_F(LoaderTest, HistoryRecordsEveryRequestWithItsResult) {
    world_.load("fs-vfat", Origin::Kernel);
    world_.load("netdev-d0", Origin::Kernel);
    world_.load("fs-vfat", Origin::Kernel);
    const auto &history = world_.requests.records();
    ASSERT_EQ(history.size(), 3u);
    EXPECT_STREQ(history[0].result(), "loaded");
    EXPECT_EQ(history[0].inserted, (std::vector<std::string>{"fat", "vfat"}));
    EXPECT_STREQ(history[1].result(), "not-found");
    EXPECT_STREQ(history[2].result(), "present");
    EXPECT_EQ(history[1].origin, Origin::Kernel);
}

TEST_F(LoaderTest, HistoryIsBounded) {
    for (std::size_t i = 0; i < RequestLog::kCapacity + 10; ++i)
        world_.load("netdev-x" + std::to_string(i), Origin::Kernel);
    EXPECT_EQ(world_.requests.records().size(), RequestLog::kCapacity);
    EXPECT_EQ(world_.requests.records().back().request,
              "netdev-x" + std::to_string(RequestLog::kCapacity + 9));
}

TEST_F(LoaderTest, TheListenerHearsEachAnswerOnceTheModulesAreIn) {
    std::vector<std::string> heard;
    world_.requests.setListener([&](const RequestRecord &record) {
        heard.push_back(record.request + "/" + record.result());
        // By then the loads of the request have been announced.
        EXPECT_EQ(world_.recorded.loaded.size(), record.inserted.size());
    });
    world_.load("fs-vfat", Origin::Kernel);
    EXPECT_EQ(heard, (std::vector<std::string>{"fs-vfat/loaded"}));
}

TEST_F(LoaderTest, CountsByResultOutliveTheBoundedHistory) {
    for (std::size_t i = 0; i < RequestLog::kCapacity + 10; ++i)
        world_.load("netdev-x" + std::to_string(i), Origin::Kernel);
    world_.load("fs-vfat", Origin::Kernel);
    EXPECT_EQ(world_.requests.counts(),
              (std::map<std::string, std::uint64_t>{{"loaded", 1},
                                                    {"not-found", RequestLog::kCapacity + 10}}));
}

// SPDX-License-Identifier: LGPL-2.1-or-later
#include <cerrno>

#include <gtest/gtest.h>

#include "core_world.h"

using namespace lkmd;

namespace {

class UnloaderTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(
            world_.start("module fat\n"
                         "module vfat deps=fat aliases=fs-vfat\n"
                         "module dummy aliases=rtnl-link-dummy\n"
                         "module busy refcnt=1\n"
                         "module e1000 device=pci:e1000:0000:00:03.0\n"
                         "builtin unix\n"));
    }

    CoreWorld world_;
};

}  // namespace

TEST_F(UnloaderTest, NeverUnloadsModuleWithBoundDevice) {
    ASSERT_EQ(world_.load("e1000").error, 0);
    const Outcome outcome = world_.unload("e1000");
    EXPECT_EQ(outcome.error, -EBUSY);
    EXPECT_EQ(outcome.message, "module is in use: its driver is bound to 0000:00:03.0");
    EXPECT_EQ(world_.kernel->state("e1000"), ModuleState::Live);
}

TEST_F(UnloaderTest, NeverUnloadsModuleHeldByAnotherOrInUse) {
    ASSERT_EQ(world_.load("vfat").error, 0);
    EXPECT_EQ(world_.unload("fat").message, "module is in use by vfat");
    EXPECT_EQ(world_.kernel->state("fat"), ModuleState::Live);
    ASSERT_EQ(world_.load("busy").error, 0);
    EXPECT_EQ(world_.unload("busy").message, "module is in use (refcnt 1)");
}

TEST_F(UnloaderTest, NeverUnloadsAProviderOfLiveLinks) {
    ASSERT_EQ(world_.load("rtnl-link-dummy").error, 0);
    world_.links = {"dummy"};
    const Outcome outcome = world_.unload("dummy");
    EXPECT_EQ(outcome.error, -EBUSY);
    EXPECT_EQ(outcome.message, "module is in use: provides live dummy links");
    world_.links.clear();
    EXPECT_EQ(world_.unload("dummy").error, 0);
}

TEST_F(UnloaderTest, UnloadForgetsTheRecordAndTellsTheListeners) {
    ASSERT_EQ(world_.load("vfat").error, 0);
    EXPECT_EQ(world_.unload("vfat").error, 0);
    EXPECT_EQ(world_.registry.find("vfat"), nullptr);
    EXPECT_EQ(world_.recorded.unloaded, std::vector<std::string>{"vfat/request"});
}

TEST_F(UnloaderTest, BuiltinAbsentAndUnknownModulesHaveDistinctErrors) {
    EXPECT_EQ(world_.unload("unix").error, -EOPNOTSUPP);
    EXPECT_EQ(world_.unload("vfat").error, -ESRCH);
    EXPECT_EQ(world_.unload("nothing_like_it").error, -ENOENT);
}

// libkmod cuts names at '.': "e1000.x" would reach delete_module() as e1000 while the checks
// looked at a /sys/module/e1000.x that does not exist.
TEST_F(UnloaderTest, NamesLibkmodWouldMangleAreRefused) {
    ASSERT_EQ(world_.load("e1000").error, 0);
    for (const std::string name : {"e1000.x", ".", "..", "e1000.ko", ""}) {
        const Outcome outcome = world_.unload(name);
        EXPECT_EQ(outcome.error, -EINVAL) << name;
    }
    EXPECT_EQ(world_.kernel->state("e1000"), ModuleState::Live);
    EXPECT_EQ(world_.unload("nls-cp437").error, -ENOENT) << "dashes are normalized";
}

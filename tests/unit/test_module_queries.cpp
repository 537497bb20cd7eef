// SPDX-License-Identifier: LGPL-2.1-or-later
#include <cerrno>

#include <gtest/gtest.h>

#include "core_world.h"

using namespace lkmd;

namespace {

class ModuleQueriesTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(
            world_.start("module fat\n"
                         "module vfat deps=fat aliases=fs-vfat\n"
                         "module nls_cp437 aliases=nls-cp437\n"
                         "module usb_storage aliases=usb:v*ic08isc06ip50*\n"
                         "module uas aliases=usb:v*ic08isc06ip50*,usb:v*ic08isc06ip62*\n"
                         "module e1000 aliases=e1000e_compat\n"
                         "module e1000e aliases=e1000e_compat\n"
                         "builtin unix aliases=net-pf-1\n"));
    }

    // The module name resolves to, or the errno.
    std::string resolve(const std::string &name) {
        std::string module;
        candidates_.clear();
        const int r = world_.queries->resolve(name, &module, &candidates_);
        return r < 0 ? "errno " + std::to_string(-r) : module;
    }

    CoreWorld world_;
    std::vector<std::string> candidates_;
};

}  // namespace

TEST_F(ModuleQueriesTest, AnAliasResolvesToItsModuleLoadedOrNot) {
    EXPECT_EQ(resolve("fs-vfat"), "vfat");
    ASSERT_EQ(world_.load("vfat").error, 0);
    EXPECT_EQ(resolve("fs-vfat"), "vfat");
    EXPECT_EQ(resolve("net-pf-1"), "unix");
}

TEST_F(ModuleQueriesTest, NamesAreTakenAsTheKernelSpellsThem) {
    EXPECT_EQ(resolve("vfat"), "vfat");
    EXPECT_EQ(resolve("nls-cp437"), "nls_cp437");
    EXPECT_EQ(resolve("unix"), "unix");
}

TEST_F(ModuleQueriesTest, AModaliasOfOneModuleResolvesToIt) {
    EXPECT_EQ(resolve("usb:v1ic08isc06ip62in00"), "uas");
}

TEST_F(ModuleQueriesTest, AnAliasOfSeveralModulesIsRefusedNamingThem) {
    EXPECT_EQ(resolve("usb:v1ic08isc06ip50in00"), "errno " + std::to_string(ENOTUNIQ));
    EXPECT_EQ(candidates_, (std::vector<std::string>{"uas", "usb_storage"}));
}

TEST_F(ModuleQueriesTest, AModuleNamedLikeASharedAliasIsItself) {
    EXPECT_EQ(resolve("e1000"), "e1000");
}

TEST_F(ModuleQueriesTest, UnknownNamesAreNoSuchModule) {
    EXPECT_EQ(resolve("fs-nothing"), "errno " + std::to_string(ENOENT));
}

// libkmod cuts a name at its first '.': "e1000.x" must never come to mean e1000.
TEST_F(ModuleQueriesTest, NamesWithADotAreRefusedNotCut) {
    ASSERT_EQ(world_.load("e1000").error, 0);
    for (const std::string name : {"e1000.x", ".", "..", "e1000.ko", "", "a/b"})
        EXPECT_EQ(resolve(name), "errno " + std::to_string(EINVAL)) << name;
}

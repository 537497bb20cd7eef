// SPDX-License-Identifier: LGPL-2.1-or-later
#include <fstream>

#include <gtest/gtest.h>

#include "fake_kernel.h"
#include "temp_dir.h"

using namespace lkmd;

TEST(FakeKernel, ReportsSyntaxErrorsWithFileAndLine) {
    TempDir dir;
    std::ofstream(dir.path() / "world") << "module a\nmodule b init_ms=soon\n";
    int error = 0;
    std::string detail;
    auto kernel = FakeKernel::load(dir.path() / "world", dir.path() / "proc", dir.path() / "sys",
                                   &error, &detail);
    EXPECT_FALSE(kernel);
    EXPECT_EQ(error, -EINVAL);
    EXPECT_NE(detail.find("world:2: bad option 'init_ms=soon'"), std::string::npos) << detail;
}

TEST(FakeKernel, PublishesLoadedModulesLikeProcModules) {
    TempDir dir;
    std::ofstream(dir.path() / "world") << "module fat\nmodule vfat deps=fat\n";
    int error = 0;
    std::string detail;
    auto kernel = FakeKernel::load(dir.path() / "world", dir.path() / "proc", dir.path() / "sys",
                                   &error, &detail);
    ASSERT_TRUE(kernel) << detail;
    std::vector<PlanStep> plan;
    ASSERT_EQ(kernel->plan("vfat", &plan), 0);
    ASSERT_EQ(plan.size(), 2u);
    for (const PlanStep &step : plan)
        ASSERT_EQ(kernel->insert(step), 0);
    std::ifstream modules(dir.path() / "proc/modules");
    std::string first;
    std::getline(modules, first);
    EXPECT_EQ(first, "vfat 16384 0 - Live 0x0000000000000000");
    EXPECT_EQ(kernel->remove("fat"), -EAGAIN);
}

TEST(FakeKernel, PlansSoftDependenciesAsOptional) {
    TempDir dir;
    std::ofstream(dir.path() / "world")
        << "module accel\nmodule jbd2\nmodule ext4 deps=jbd2 softdeps=accel\n";
    int error = 0;
    std::string detail;
    auto kernel = FakeKernel::load(dir.path() / "world", dir.path() / "proc", dir.path() / "sys",
                                   &error, &detail);
    ASSERT_TRUE(kernel) << detail;
    std::vector<PlanStep> plan;
    ASSERT_EQ(kernel->plan("ext4", &plan), 0);
    ASSERT_EQ(plan.size(), 3u);
    EXPECT_EQ(plan[0].module, "accel");
    EXPECT_FALSE(plan[0].required);
    EXPECT_EQ(plan[1].module, "jbd2");
    EXPECT_TRUE(plan[1].required);
    EXPECT_EQ(plan[2].module, "ext4");
    EXPECT_TRUE(plan[2].required);
}

// SPDX-License-Identifier: LGPL-2.1-or-later
#include <fstream>

#include <gtest/gtest.h>

#include "fake_backend.h"
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
    std::vector<std::string> inserted;
    std::string refused;
    ASSERT_EQ(kernel->insert("vfat", {}, &inserted, &refused), 0);
    std::ifstream modules(dir.path() / "proc/modules");
    std::string first;
    std::getline(modules, first);
    EXPECT_EQ(first, "vfat 16384 0 - Live 0x0000000000000000");
    EXPECT_EQ(kernel->remove("fat"), -EAGAIN);
}

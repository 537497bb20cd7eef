// SPDX-License-Identifier: LGPL-2.1-or-later
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "kernel_state.h"
#include "temp_dir.h"

using namespace lkmd;

TEST(ProcModules, ParsesNameSizeRefcntHoldersAndState) {
    const auto modules = parseProcModules(
        "vfat 24576 1 - Live 0xffffffffc0a2d000\n"
        "fat 86016 1 vfat, Live 0xffffffffc0a0a000\n"
        "e1000 163840 0 - Loading 0x0000000000000000 (OE)\n"
        "nvme_core 200704 2 nvme,nvme_fabrics, Unloading 0xffffffffc09d0000\n");
    ASSERT_EQ(modules.size(), 4u);
    EXPECT_EQ(modules[0].name, "vfat");
    EXPECT_EQ(modules[0].size, 24576u);
    EXPECT_EQ(modules[0].refcnt, 1);
    EXPECT_TRUE(modules[0].holders.empty());
    EXPECT_EQ(modules[1].holders, std::vector<std::string>{"vfat"});
    EXPECT_EQ(modules[2].state, LoadState::Coming);
    EXPECT_EQ(modules[3].holders, (std::vector<std::string>{"nvme", "nvme_fabrics"}));
    EXPECT_EQ(modules[3].state, LoadState::Going);
}

TEST(ProcModules, RefcntDashMeansCannotUnload) {
    const auto modules = parseProcModules("static_mod 4096 - - Live 0x0\n");
    ASSERT_EQ(modules.size(), 1u);
    EXPECT_EQ(modules[0].refcnt, -1);
}

TEST(ProcModules, SkipsMalformedLinesAndKeepsTheRest) {
    const auto modules = parseProcModules(
        "garbage\n"
        "bad_size x 0 - Live 0x0\n"
        "bad_state 10 0 - Sleeping 0x0\n"
        "\n"
        "good 10 0 - Live 0x0");
    ASSERT_EQ(modules.size(), 1u);
    EXPECT_EQ(modules[0].name, "good");
}

TEST(ModuleName, NormalizesDashesToUnderscores) {
    EXPECT_EQ(normalizeModuleName("nls-cp437"), "nls_cp437");
}

TEST(KernelState, ReadsDriversAndBoundDevicesFromSysfs) {
    TempDir root;
    namespace fs = std::filesystem;
    const fs::path driver = root.path() / "sys/bus/pci/drivers/e1000";
    fs::create_directories(driver);
    std::ofstream(driver / "bind");
    fs::create_directory_symlink(root.path() / "sys/module/e1000", driver / "module");
    fs::create_directories(root.path() / "sys/devices/pci0000:00/0000:00:03.0");
    fs::create_directory_symlink("../../../../devices/pci0000:00/0000:00:03.0",
                                 driver / "0000:00:03.0");
    fs::create_directories(root.path() / "sys/module/e1000/drivers");
    fs::create_directory_symlink(driver, root.path() / "sys/module/e1000/drivers/pci:e1000");

    KernelState state(root.path() / "proc", root.path() / "sys");
    const ModuleBindings bindings = state.readBindings("e1000");
    EXPECT_EQ(bindings.drivers, std::vector<std::string>{"pci:e1000"});
    EXPECT_EQ(bindings.devices, std::vector<std::string>{"0000:00:03.0"});
}

TEST(KernelState, ModuleWithoutDriversHasNoBindings) {
    TempDir root;
    KernelState state(root.path() / "proc", root.path() / "sys");
    const ModuleBindings bindings = state.readBindings("dummy");
    EXPECT_TRUE(bindings.drivers.empty());
    EXPECT_TRUE(bindings.devices.empty());
}

TEST(KernelState, MissingProcModulesIsAnError) {
    TempDir root;
    KernelState state(root.path() / "proc", root.path() / "sys");
    std::vector<LoadedModule> modules;
    EXPECT_EQ(state.readLoaded(&modules), -ENOENT);
}

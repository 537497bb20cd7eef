// SPDX-License-Identifier: LGPL-2.1-or-later
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "kernel_state.h"
#include "request_name.h"
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
        "../sys 10 0 - Live 0x0\n"
        "negative 10 -5 - Live 0x0\n"
        "\n"
        "good 10 0 /,..,x.y,holder, Live 0x0");
    ASSERT_EQ(modules.size(), 1u);
    EXPECT_EQ(modules[0].name, "good");
    EXPECT_EQ(modules[0].holders, std::vector<std::string>{"holder"});
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

// GetModule takes request names, and "usb:../../x" is one (modaliases may carry '/').
TEST(KernelState, ANameThatIsNoModulesNeverBecomesASysfsPath) {
    TempDir root;
    namespace fs = std::filesystem;
    fs::create_directories(root.path() / "sys/module/usb:");
    fs::create_directories(root.path() / "elsewhere/drivers/pci:e1000");

    KernelState state(root.path() / "proc", root.path() / "sys");
    EXPECT_TRUE(state.readBindings("usb:/../../../elsewhere").drivers.empty());
    EXPECT_EQ(state.moduleIdentity("usb:/../../../elsewhere"), 0u);
}

// pnp_register_driver() sets no owner: parport_pc's pnp driver has no "module" link and is not
// listed under /sys/module/parport_pc/drivers, yet unloading the module unbinds the port.
TEST(KernelState, OwnerlessDriverOfTheModulesNameCountsAsItsBinding) {
    TempDir root;
    namespace fs = std::filesystem;
    const fs::path pnpDriver = root.path() / "sys/bus/pnp/drivers/parport_pc";
    fs::create_directories(pnpDriver);
    std::ofstream(pnpDriver / "bind");
    fs::create_directories(root.path() / "sys/devices/pnp0/00:03");
    fs::create_directory_symlink("../../../../devices/pnp0/00:03", pnpDriver / "00:03");
    // The platform driver has an owner and no device; another module's driver of a different
    // name on the same bus is not parport_pc's.
    const fs::path platformDriver = root.path() / "sys/bus/platform/drivers/parport_pc";
    fs::create_directories(platformDriver);
    fs::create_directory_symlink(root.path() / "sys/module/parport_pc", platformDriver / "module");
    fs::create_directories(root.path() / "sys/module/parport_pc/drivers");
    fs::create_directory_symlink(platformDriver,
                                 root.path() / "sys/module/parport_pc/drivers/platform:parport_pc");
    fs::create_directories(root.path() / "sys/bus/pnp/drivers/serial");
    fs::create_directory_symlink("../../../../devices/pnp0/00:03",
                                 root.path() / "sys/bus/pnp/drivers/serial/00:04");

    KernelState state(root.path() / "proc", root.path() / "sys");
    const ModuleBindings bindings = state.readBindings("parport_pc");
    EXPECT_EQ(bindings.drivers,
              (std::vector<std::string>{"platform:parport_pc", "pnp:parport_pc"}));
    EXPECT_EQ(bindings.devices, std::vector<std::string>{"00:03"});
}

// A driver of the same name that belongs to another module (its "module" link says so) is not
// this module's binding.
TEST(KernelState, DriverOwnedByAnotherModuleIsNotABinding) {
    TempDir root;
    namespace fs = std::filesystem;
    const fs::path driver = root.path() / "sys/bus/usb/drivers/usb-storage";
    fs::create_directories(driver);
    fs::create_directories(root.path() / "sys/module/usb_storage");
    fs::create_directory_symlink(root.path() / "sys/module/usb_storage", driver / "module");
    fs::create_directories(root.path() / "sys/devices/usb1/1-1:1.0");
    fs::create_directory_symlink("../../../../devices/usb1/1-1:1.0", driver / "1-1:1.0");

    KernelState state(root.path() / "proc", root.path() / "sys");
    EXPECT_TRUE(state.readBindings("usb_storage_other").devices.empty());
    // Its own module finds it through the dashed spelling only via /sys/module/M/drivers, which
    // this fixture leaves out: an owned driver is never guessed by name.
    EXPECT_TRUE(state.readBindings("usb_storage").devices.empty());
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

TEST(KernelState, ReadsKernelModprobeWithoutItsNewline) {
    TempDir root;
    std::filesystem::create_directories(root.path() / "proc" / "sys" / "kernel");
    std::ofstream(root.path() / "proc" / "sys" / "kernel" / "modprobe")
        << "/usr/sbin/lkmd-modprobe\n";
    KernelState state(root.path() / "proc", root.path() / "sys");
    EXPECT_EQ(state.readModprobePath(), "/usr/sbin/lkmd-modprobe");
    EXPECT_EQ(KernelState(root.path() / "none", root.path() / "sys").readModprobePath(), "");
}

TEST(KernelConfig, StaticUsermodeHelperIsItsPathOnlyWhenTheOptionIsSet) {
    EXPECT_EQ(parseStaticUsermodeHelper("CONFIG_STATIC_USERMODEHELPER=y\n"
                                        "CONFIG_STATIC_USERMODEHELPER_PATH=\"/sbin/umh\"\n"),
              "/sbin/umh");
    EXPECT_EQ(parseStaticUsermodeHelper("CONFIG_STATIC_USERMODEHELPER=y\n"
                                        "CONFIG_STATIC_USERMODEHELPER_PATH=\"\"\n"),
              "");
    EXPECT_EQ(parseStaticUsermodeHelper("# CONFIG_STATIC_USERMODEHELPER is not set\n"
                                        "CONFIG_MODULES=y\n"),
              std::nullopt);
    EXPECT_EQ(parseStaticUsermodeHelper(""), std::nullopt);
}

// SPDX-License-Identifier: LGPL-2.1-or-later
#include <chrono>
#include <fstream>

#include <gtest/gtest.h>

#include "core_world.h"
#include "hotplug.h"

using namespace lkmd;
namespace fs = std::filesystem;

namespace {

// A sysfs with PCI devices: SYSFS/devices/pci0000:00/<slot> linked from SYSFS/bus/pci/devices.
void addDevice(const fs::path &sysfs, const std::string &slot, const std::string &modalias,
               bool bound = false) {
    const fs::path device = sysfs / "devices/pci0000:00" / slot;
    fs::create_directories(device);
    std::ofstream(device / "modalias") << modalias << "\n";
    fs::create_directories(sysfs / "bus/pci/devices");
    fs::create_directory_symlink(device, sysfs / "bus/pci/devices" / slot);
    if (bound) {
        fs::create_directories(sysfs / "bus/pci/drivers/some");
        fs::create_directory_symlink(sysfs / "bus/pci/drivers/some", device / "driver");
    }
}

class HotplugTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(
            world_.start("module e1000 aliases=pci:v00008086d0000100Esv*sd*bc*sc*i*\n"
                         "module virtio_net aliases=virtio:d00000001v*\n"
                         "module evil aliases=pci:v0000DEADd*\n"
                         "blacklist evil\n"));
    }

    fs::path sysfs() const { return world_.dir.path() / "sys"; }
    Hotplug make(HotplugMode mode, std::size_t parallel = 4) {
        return Hotplug(*world_.loader, *world_.runner, sysfs(), mode, parallel);
    }

    CoreWorld world_;
};

}  // namespace

TEST(Modalias, RefusesJunkFromTheSocket) {
    EXPECT_EQ(whyInvalidModalias("pci:v00008086d0000100E"), nullptr);
    EXPECT_EQ(whyInvalidModalias("dmi:bvnSeaBIOS:bd04/01/2014:"), nullptr);
    EXPECT_NE(whyInvalidModalias(""), nullptr);
    EXPECT_NE(whyInvalidModalias("pci:" + std::string(4096, 'a')), nullptr);
    EXPECT_NE(whyInvalidModalias("pci:a b"), nullptr);
    EXPECT_NE(whyInvalidModalias("pci:\xff\xfe"), nullptr);
    EXPECT_NE(whyInvalidModalias("no-bus-prefix"), nullptr);
}

TEST_F(HotplugTest, FindsOnlyDevicesWithoutADriver) {
    addDevice(sysfs(), "0000:00:03.0", "pci:v00008086d0000100Esv0sd0bc02sc00i00");
    addDevice(sysfs(), "0000:00:04.0", "pci:v00008086d0000100Esv0sd0bc02sc00i00", true);
    const auto devices = findUnboundDevices(sysfs());
    ASSERT_EQ(devices.size(), 1u);
    EXPECT_EQ(devices[0].devpath, "/devices/pci0000:00/0000:00:03.0");
}

TEST_F(HotplugTest, AddEventLoadsTheDriverAndRecordsTheDevice) {
    addDevice(sysfs(), "0000:00:03.0", "pci:v00008086d0000100Esv0sd0bc02sc00i00");
    Hotplug hotplug = make(HotplugMode::Load);
    hotplug.handle({"add", "/devices/pci0000:00/0000:00:03.0", "pci",
                    "pci:v00008086d0000100Esv0sd0bc02sc00i00"});
    world_.runner->runAll();
    EXPECT_EQ(world_.kernel->state("e1000"), ModuleState::Live);
    const ModuleRecord *record = world_.registry.find("e1000");
    ASSERT_NE(record, nullptr);
    EXPECT_EQ(record->origin, Origin::Hotplug);
    EXPECT_EQ(record->device, "/devices/pci0000:00/0000:00:03.0");
}

TEST_F(HotplugTest, IgnoresBoundDevicesOtherActionsAndJunk) {
    addDevice(sysfs(), "0000:00:04.0", "pci:v00008086d0000100Esv0sd0bc02sc00i00", true);
    Hotplug hotplug = make(HotplugMode::Load);
    hotplug.handle({"add", "/devices/pci0000:00/0000:00:04.0", "pci",
                    "pci:v00008086d0000100Esv0sd0bc02sc00i00"});
    hotplug.handle({"change", "/devices/pci0000:00/0000:00:05.0", "pci",
                    "pci:v00008086d0000100Esv0sd0bc02sc00i00"});
    hotplug.handle({"add", "/devices/../../etc", "pci", "pci:v00008086d0000100E"});
    hotplug.handle({"add", "/devices/x", "pci", "pci:" + std::string(5000, 'v')});
    // Made only of slashes: nothing of it names a device (once a crash, substr(npos)).
    hotplug.handle({"add", "/", "pci", "pci:v00008086d0000100Esv0sd0bc02sc00i00"});
    hotplug.handle({"add", "//", "pci", "pci:v00008086d0000100Esv0sd0bc02sc00i00"});
    world_.runner->runAll();
    EXPECT_EQ(world_.kernel->state("e1000"), ModuleState::Absent);
    EXPECT_TRUE(world_.requests.records().empty());
}

TEST_F(HotplugTest, RemoveAndUnbindTellThatADeviceWent) {
    Hotplug hotplug = make(HotplugMode::Observe);
    int gone = 0;
    hotplug.setDeviceGoneHandler([&gone] { ++gone; });
    hotplug.handle({"add", "/devices/pci0000:00/0000:00:04.0", "pci", ""});
    hotplug.handle({"bind", "/devices/pci0000:00/0000:00:04.0", "pci", ""});
    EXPECT_EQ(gone, 0);
    hotplug.handle({"unbind", "/devices/pci0000:00/0000:00:04.0", "pci", ""});
    hotplug.handle({"remove", "/devices/pci0000:00/0000:00:04.0", "pci", ""});
    EXPECT_EQ(gone, 2);
}

TEST_F(HotplugTest, ObserveModeLoadsNothing) {
    Hotplug hotplug = make(HotplugMode::Observe);
    hotplug.handle({"add", "/devices/pci0000:00/0000:00:03.0", "pci",
                    "pci:v00008086d0000100Esv0sd0bc02sc00i00"});
    world_.runner->runAll();
    EXPECT_EQ(world_.kernel->state("e1000"), ModuleState::Absent);
}

TEST_F(HotplugTest, BlacklistedAliasIsNotLoaded) {
    Hotplug hotplug = make(HotplugMode::Load);
    hotplug.handle({"add", "/devices/pci0000:00/0000:00:06.0", "pci", "pci:v0000DEADd00000001"});
    world_.runner->runAll();
    EXPECT_EQ(world_.kernel->state("evil"), ModuleState::Absent);
}

TEST_F(HotplugTest, ColdplugLoadsEveryUnboundDeviceOnceWithinTheBound) {
    for (int i = 0; i < 12; ++i)
        addDevice(sysfs(), "0000:00:1" + std::to_string(i / 10) + "." + std::to_string(i % 10),
                  "pci:v00008086d0000100Esv0sd0bc02sc00i00");
    addDevice(sysfs(), "0000:00:09.0", "pci:v0000FFFFd0000FFFFsv0sd0bc02sc00i00");
    Hotplug hotplug = make(HotplugMode::Load, 2);
    std::optional<std::size_t> inserted;
    hotplug.coldplug([&](std::size_t count) { inserted = count; });
    world_.runner->runAll();
    ASSERT_TRUE(inserted.has_value());
    EXPECT_EQ(*inserted, 1u);
    EXPECT_EQ(world_.registry.find("e1000")->origin, Origin::Coldplug);
    EXPECT_EQ(world_.requests.records().size(), 13u);
}

// A reload that leaves load mode stops a coldplug that is under way: what is still queued is not
// loaded (the loads already started finish).
TEST_F(HotplugTest, LeavingLoadModeDropsTheColdplugQueue) {
    addDevice(sysfs(), "0000:00:03.0", "pci:v00008086d0000100Esv0sd0bc02sc00i00");
    addDevice(sysfs(), "0000:00:04.0", "virtio:d00000001v00001AF4");
    Hotplug hotplug = make(HotplugMode::Load, 1);
    std::optional<std::size_t> inserted;
    hotplug.coldplug([&](std::size_t count) { inserted = count; });
    ASSERT_TRUE(world_.runner->runNext());  // the walk of /sys/devices; the first load starts
    hotplug.setMode(HotplugMode::Observe);
    world_.runner->runAll();
    ASSERT_TRUE(inserted.has_value());
    EXPECT_EQ(*inserted, 1u);
    EXPECT_EQ(world_.requests.records().size(), 1u);
}

TEST_F(HotplugTest, AModuleGoingAwayIsTold) {
    Hotplug hotplug = make(HotplugMode::Load);
    int modules = 0;
    int devices = 0;
    hotplug.setModuleGoneHandler([&] { ++modules; });
    hotplug.setDeviceGoneHandler([&] { ++devices; });
    hotplug.handle({"remove", "/module/dummy", "module", ""});
    hotplug.handle({"add", "/module/dummy", "module", ""});
    EXPECT_EQ(modules, 1);
    EXPECT_EQ(devices, 0);
}

namespace {

std::vector<std::string> devicesInAnswerOrder(const CoreWorld &world) {
    std::vector<std::string> devices;
    for (const RequestRecord &record : world.requests.records())
        devices.push_back(record.device);
    return devices;
}

}  // namespace

// Issue 14: PCI devices are host controllers and bridges whose drivers reveal more devices; the
// firmware nodes sysfs lists first (LNXSYSTM, mostly without a module) must not delay them.
TEST_F(HotplugTest, ColdplugLoadsPciDevicesFirst) {
    const fs::path acpi = sysfs() / "devices/LNXSYSTM:00/LNXSYBUS:00/PNP0A03:00";
    fs::create_directories(acpi);
    std::ofstream(acpi / "modalias") << "virtio:d00000001v00001AF4\n";
    addDevice(sysfs(), "0000:00:03.0", "pci:v00008086d0000100Esv0sd0bc02sc00i00");
    fs::create_directories(sysfs() / "bus/pci");
    fs::create_directory_symlink(sysfs() / "bus/pci",
                                 sysfs() / "devices/pci0000:00/0000:00:03.0/subsystem");
    Hotplug hotplug = make(HotplugMode::Load, 1);
    hotplug.coldplug();
    world_.runner->runAll();
    EXPECT_EQ(devicesInAnswerOrder(world_),
              (std::vector<std::string>{"/devices/pci0000:00/0000:00:03.0",
                                        "/devices/LNXSYSTM:00/LNXSYBUS:00/PNP0A03:00"}));
}

// A device that appears while coldplug works through its queue waits for a free slot like every
// device load (udevd's coldplug trigger replays hundreds at once), but goes before the devices
// coldplug has still queued: it is often the child of a driver just loaded.
TEST_F(HotplugTest, ArrivalsWaitForASlotAndGoBeforeTheColdplugQueue) {
    addDevice(sysfs(), "0000:00:03.0", "pci:v00008086d0000100Esv0sd0bc02sc00i00");
    addDevice(sysfs(), "0000:00:04.0", "virtio:d00000001v00001AF4");
    addDevice(sysfs(), "0000:00:05.0", "pci:v0000FFFFd0000FFFFsv0sd0bc02sc00i00");
    Hotplug hotplug = make(HotplugMode::Load, 1);
    hotplug.coldplug();
    ASSERT_TRUE(world_.runner->runNext());  // the walk: the load for 03.0 starts
    // 05.0 appeared after the walk (as far as the order goes): its uevent comes now.
    hotplug.handle({"add", "/devices/pci0000:00/0000:00:05.0", "pci",
                    "pci:v0000FFFFd0000FFFFsv0sd0bc02sc00i00"});
    EXPECT_EQ(world_.requests.records().size(), 0u) << "no slot free: the arrival waits";
    world_.runner->runAll();
    const std::vector<std::string> order = devicesInAnswerOrder(world_);
    ASSERT_EQ(order.size(), 4u);
    EXPECT_EQ(order[0], "/devices/pci0000:00/0000:00:03.0");
    EXPECT_EQ(order[1], "/devices/pci0000:00/0000:00:05.0");
    EXPECT_EQ(world_.requests.records()[1].origin, Origin::Hotplug);
    EXPECT_EQ(order[2], "/devices/pci0000:00/0000:00:04.0");
}

// SPDX-License-Identifier: LGPL-2.1-or-later
#include <fstream>

#include <gtest/gtest.h>

#include "autoclean.h"
#include "fake_backend.h"
#include "fake_world.h"
#include "temp_dir.h"

using namespace lkmd;

namespace {

ModuleRecord onDemand(const std::string &trigger = "fs-vfat") {
    ModuleRecord record;
    record.origin = Origin::Kernel;
    record.trigger = trigger;
    record.autoclean = true;
    return record;
}

LoadedModule live(const std::string &name, int refcnt = 0) {
    LoadedModule module;
    module.name = name;
    module.refcnt = refcnt;
    return module;
}

// A simulated kernel, a real event loop and worker pool, and a clock the test moves.
class AutocleanTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(
            world_.start("module fat\n"
                         "module vfat deps=fat aliases=fs-vfat\n"
                         "module dummy aliases=rtnl-link-dummy\n"
                         "module e1000 device=pci:e1000:0000:00:03.0\n"
                         "module busy refcnt=1\n"
                         "module other\nloaded other\n",
                         4));
        manager_ = std::make_unique<Manager>(
            *loopBackend_, *pool_, *state_, [this] { return now_ + 1'000'000'000; },
            [this] { return now_; });
        settings_.idleTimeoutUsec = 10'000'000;
    }

    void makeAutoclean() {
        autoclean_ = std::make_unique<Autoclean>(
            event_.get(), *manager_, *state_, settings_, [this] { return now_; },
            [this] { return now_ + 1'000'000'000; }, [this] { return links_; },
            [this](const std::string &kind) {
                std::vector<std::string> modules;
                loopBackend_->resolve("rtnl-link-" + kind, &modules);
                return modules;
            });
    }

    void load(const std::string &name, Origin origin = Origin::Kernel, bool autoclean = false,
              const std::string &device = {}) {
        bool done = false;
        manager_->load(
            name, origin, [&](Outcome) { done = true; }, LoadOptions{device, autoclean});
        while (!done)
            sd_event_run(event_.get(), 10000);
    }

    // Sweeps at the given second and lets any unload it started finish.
    void sweepAt(std::uint64_t seconds) {
        now_ = seconds * 1'000'000;
        autoclean_->sweep();
        for (int i = 0; i < 20; ++i)
            sd_event_run(event_.get(), 5000);
    }

    FakeWorld world_;
    TempDir &dir_ = world_.dir;
    std::shared_ptr<FakeKernel> &kernel_ = world_.kernel;
    EventPtr &event_ = world_.event;
    std::unique_ptr<ModuleBackend> &loopBackend_ = world_.loopBackend;
    std::unique_ptr<WorkerPool> &pool_ = world_.pool;
    std::unique_ptr<KernelState> &state_ = world_.state;
    std::unique_ptr<Manager> manager_;
    std::unique_ptr<Autoclean> autoclean_;
    AutocleanSettings settings_;
    std::set<std::string> links_;
    std::uint64_t now_ = 0;
};

}  // namespace

TEST(WhyKept, OnlyWhatLkmdLoadedOnDemandIsEverACandidate) {
    AutocleanSettings settings;
    const LoadedModule module = live("vfat");
    const ModuleBindings none;
    IdleFacts facts{nullptr, &module, &none, {}};
    EXPECT_EQ(whyKept(settings, "vfat", facts), "loaded by someone else");
    ModuleRecord bus = onDemand();
    bus.origin = Origin::Bus;
    bus.autoclean = false;
    facts.record = &bus;
    EXPECT_EQ(whyKept(settings, "vfat", facts), "loaded over D-Bus without autoclean");
    ModuleRecord pinned = onDemand();
    pinned.pinned = true;
    facts.record = &pinned;
    EXPECT_EQ(whyKept(settings, "vfat", facts), "pinned");
    const ModuleRecord record = onDemand();
    facts.record = &record;
    settings.keep = {"vfat"};
    EXPECT_EQ(whyKept(settings, "vfat", facts), "listed in Keep=");
    settings.keep.clear();
    settings.requestTimeouts = {{"fs-*", kNever}};
    EXPECT_EQ(whyKept(settings, "vfat", facts), "its timeout is never");
    settings.requestTimeouts.clear();
    EXPECT_EQ(whyKept(settings, "vfat", facts), "");
}

TEST(WhyKept, RefcntZeroIsNotEnough) {
    AutocleanSettings settings;
    const ModuleRecord record = onDemand();
    ModuleBindings bound;
    bound.devices = {"0000:00:03.0"};
    const LoadedModule module = live("e1000");
    EXPECT_EQ(whyKept(settings, "e1000", {&record, &module, &bound, {}}), "bound to 0000:00:03.0");
    const ModuleBindings none;
    EXPECT_EQ(whyKept(settings, "dummy", {&record, &module, &none, "dummy"}),
              "provides live dummy links");
    LoadedModule held = live("fat");
    held.holders = {"vfat"};
    EXPECT_EQ(whyKept(settings, "fat", {&record, &held, &none, {}}), "held by vfat");
    const LoadedModule used = live("vfat", 1);
    EXPECT_EQ(whyKept(settings, "vfat", {&record, &used, &none, {}}), "in use (refcnt 1)");
}

TEST(AutocleanSettings, ModuleTimeoutBeatsRequestClassBeatsDefault) {
    AutocleanSettings settings;
    settings.idleTimeoutUsec = 60;
    settings.requestTimeouts = {{"fs-*", 600}};
    settings.moduleTimeouts = {{"vfat", 5}};
    EXPECT_EQ(settings.timeoutFor("vfat", "fs-vfat"), 5u);
    EXPECT_EQ(settings.timeoutFor("fat", "fs-vfat"), 600u);
    EXPECT_EQ(settings.timeoutFor("dummy", "rtnl-link-dummy"), 60u);
}

TEST_F(AutocleanTest, NoCandidateMeansNoTimer) {
    makeAutoclean();
    EXPECT_FALSE(autoclean_->armed());
    load("other");  // loaded by someone else before: not ours
    load("vfat", Origin::Bus);
    EXPECT_FALSE(autoclean_->armed());
    load("dummy", Origin::Kernel);
    EXPECT_TRUE(autoclean_->armed());
}

TEST_F(AutocleanTest, UnloadsAfterTwoLooksAndTheWholeTimeoutNotBefore) {
    makeAutoclean();
    load("fs-vfat");
    sweepAt(1);  // first idle look
    sweepAt(9);
    EXPECT_EQ(kernel_->state("vfat"), ModuleState::Live);
    sweepAt(11);
    EXPECT_EQ(kernel_->state("vfat"), ModuleState::Absent);
    // Its dependency falls idle only now, and gets its own full timeout.
    EXPECT_EQ(kernel_->state("fat"), ModuleState::Live);
    sweepAt(12);
    sweepAt(21);
    EXPECT_EQ(kernel_->state("fat"), ModuleState::Live);
    sweepAt(23);
    EXPECT_EQ(kernel_->state("fat"), ModuleState::Absent);
    EXPECT_FALSE(autoclean_->armed());
}

TEST_F(AutocleanTest, NeverUnloadsModuleWithBoundDevice) {
    makeAutoclean();
    load("e1000", Origin::Hotplug);
    for (std::uint64_t t = 1; t < 100; t += 5)
        sweepAt(t);
    EXPECT_EQ(kernel_->state("e1000"), ModuleState::Live);
    EXPECT_EQ(autoclean_->status("e1000").keptBecause, "bound to 0000:00:03.0");
}

// kvm_amd binds no device, yet it was loaded for the CPU's modalias: it stays while the device
// it was loaded for exists, and is reclaimed once that device is gone.
TEST_F(AutocleanTest, KeepsAModuleWhileTheDeviceItWasLoadedForExists) {
    const std::string devpath = "/devices/system/cpu/cpu0";
    const std::filesystem::path device = dir_.path() / "sys" / devpath.substr(1);
    std::filesystem::create_directories(device);
    makeAutoclean();
    load("dummy", Origin::Coldplug, false, devpath);
    for (std::uint64_t t = 1; t < 60; t += 5)
        sweepAt(t);
    EXPECT_EQ(kernel_->state("dummy"), ModuleState::Live);
    EXPECT_EQ(autoclean_->status("dummy").keptBecause,
              "loaded for /devices/system/cpu/cpu0, still present");
    std::filesystem::remove(device);
    sweepAt(60);
    sweepAt(71);
    EXPECT_EQ(kernel_->state("dummy"), ModuleState::Absent);
}

// With a uevent monitor, a candidate that only devices keep needs no sweeps: lkmd sleeps until a
// device goes (remove or unbind), then looks again. Without one, it keeps polling.
TEST_F(AutocleanTest, ModulesKeptByDevicesAloneWaitForADeviceToGo) {
    const std::string devpath = "/devices/system/cpu/cpu0";
    const std::filesystem::path device = dir_.path() / "sys" / devpath.substr(1);
    std::filesystem::create_directories(device);
    makeAutoclean();
    load("dummy", Origin::Coldplug, false, devpath);
    ASSERT_TRUE(autoclean_->armed());
    sweepAt(1);
    EXPECT_EQ(autoclean_->periodUsec(), 5'000'000u) << "no monitor: polling goes on";
    autoclean_->setDeviceEvents(true);
    EXPECT_EQ(autoclean_->periodUsec(), 600'000'000u)
        << "kept by its device alone: only the slow backstop is left";

    std::filesystem::remove(device);
    autoclean_->deviceGone();
    EXPECT_EQ(autoclean_->periodUsec(), 5'000'000u) << "the backstop is cut short";
    sweepAt(10);
    sweepAt(21);
    EXPECT_EQ(kernel_->state("dummy"), ModuleState::Absent);
}

// A dependency held by a module lkmd keeps needs no polling: only an unload can free it.
TEST_F(AutocleanTest, ADependencyHeldByAKeptModuleWaitsForAnUnload) {
    makeAutoclean();
    load("fs-vfat");
    ASSERT_EQ(manager_->setPinned("vfat", true), 0);
    sweepAt(1);
    EXPECT_EQ(autoclean_->status("fat").keptBecause, "held by vfat");
    EXPECT_EQ(autoclean_->periodUsec(), 600'000'000u);
    ASSERT_EQ(manager_->setPinned("vfat", false), 0);
    autoclean_->refresh();
    sweepAt(2);
    sweepAt(13);
    EXPECT_EQ(kernel_->state("vfat"), ModuleState::Absent);
    EXPECT_EQ(autoclean_->periodUsec(), 5'000'000u) << "vfat's unload wakes fat's track";
}

TEST_F(AutocleanTest, NeverUnloadsModuleWhoseLinksExist) {
    makeAutoclean();
    load("rtnl-link-dummy");
    links_ = {"dummy"};
    for (std::uint64_t t = 1; t < 50; t += 5)
        sweepAt(t);
    EXPECT_EQ(kernel_->state("dummy"), ModuleState::Live);
    links_.clear();
    sweepAt(60);
    sweepAt(71);
    EXPECT_EQ(kernel_->state("dummy"), ModuleState::Absent);
}

TEST_F(AutocleanTest, UseInBetweenStartsTheIdleClockOver) {
    makeAutoclean();
    load("busy", Origin::Kernel);
    sweepAt(1);
    EXPECT_EQ(autoclean_->status("busy").keptBecause, "in use (refcnt 1)");
    EXPECT_EQ(autoclean_->status("busy").unloadAtUsec, 0u);
}

TEST_F(AutocleanTest, BusLoadsStayUnlessAskedAndPinsHold) {
    makeAutoclean();
    load("vfat", Origin::Bus);
    load("dummy", Origin::Bus, true);
    ASSERT_EQ(manager_->setPinned("dummy", true), 0);
    for (std::uint64_t t = 1; t < 60; t += 5)
        sweepAt(t);
    EXPECT_EQ(kernel_->state("vfat"), ModuleState::Live);
    EXPECT_EQ(kernel_->state("dummy"), ModuleState::Live);
    ASSERT_EQ(manager_->setPinned("dummy", false), 0);
    sweepAt(70);
    sweepAt(81);
    EXPECT_EQ(kernel_->state("dummy"), ModuleState::Absent);
    EXPECT_EQ(manager_->setPinned("other", true), -ESRCH);
}

TEST_F(AutocleanTest, RequestDuringUnloadWaitsAndLoadsAgain) {
    makeAutoclean();
    load("rtnl-link-dummy");
    sweepAt(1);
    now_ = 12'000'000;
    autoclean_->sweep();  // starts the unload on a worker
    ASSERT_TRUE(manager_->isUnloading("dummy"));
    std::optional<Outcome> again;
    manager_->load("rtnl-link-dummy", Origin::Kernel, [&](Outcome o) { again = std::move(o); });
    while (!again)
        sd_event_run(event_.get(), 10000);
    EXPECT_EQ(again->error, 0);
    EXPECT_EQ(again->inserted, std::vector<std::string>{"dummy"});
    EXPECT_EQ(kernel_->state("dummy"), ModuleState::Live);
}

TEST_F(AutocleanTest, RecordsSurviveARestartOfTheDaemon) {
    manager_->setStateFile(dir_.path() / "modules.state");
    load("fs-vfat");
    ASSERT_EQ(kernel_->remove("vfat"), 0);  // someone else unloads vfat while lkmd is down

    Manager restarted(
        *loopBackend_, *pool_, *state_, [] { return std::uint64_t{0}; },
        [] { return std::uint64_t{0}; });
    restarted.setStateFile(dir_.path() / "modules.state");
    EXPECT_EQ(restarted.restore(), 1);
    ASSERT_NE(restarted.registry().find("fat"), nullptr);
    EXPECT_EQ(restarted.registry().find("fat")->trigger, "fs-vfat");
    EXPECT_TRUE(restarted.registry().find("fat")->autoclean);
    EXPECT_EQ(restarted.registry().find("vfat"), nullptr);
}

TEST(ModuleRegistry, SerializesAndParsesBack) {
    ModuleRegistry registry;
    ModuleRecord record = onDemand("fs-vfat");
    record.device = "/devices/pci0000:00/0000:00:03.0";
    record.pinned = true;
    record.identity = 1234;
    record.loadedAtUsec = 99;
    registry.record("vfat", record);
    ModuleRegistry parsed;
    ASSERT_EQ(ModuleRegistry::parse(registry.serialize(), &parsed), 0);
    const ModuleRecord *back = parsed.find("vfat");
    ASSERT_NE(back, nullptr);
    EXPECT_EQ(back->device, record.device);
    EXPECT_TRUE(back->pinned);
    EXPECT_EQ(back->identity, 1234u);
    EXPECT_EQ(ModuleRegistry::parse("something else\n", &parsed), -EINVAL);
}

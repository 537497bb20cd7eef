// SPDX-License-Identifier: LGPL-2.1-or-later
#include <filesystem>

#include <gtest/gtest.h>

#include "autoclean.h"
#include "core_world.h"

using namespace lkmd;

namespace {

ModuleRecord onDemand(const std::string &trigger = "fs-vfat") {
    ModuleRecord record;
    record.origin = Origin::Kernel;
    record.trigger = trigger;
    record.autoclean = true;
    return record;
}

UseFacts live(int refcnt = 0) {
    UseFacts facts;
    facts.loaded = true;
    facts.row.refcnt = refcnt;
    return facts;
}

// The core over a simulated kernel, a clock the test moves, and jobs the test runs.
class AutocleanTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(
            world_.start("module fat\n"
                         "module vfat deps=fat aliases=fs-vfat\n"
                         "module dummy aliases=rtnl-link-dummy\n"
                         "module e1000 device=pci:e1000:0000:00:03.0\n"
                         "module busy refcnt=1\n"
                         "module scsi_core refcnt=2\n"
                         "module sd deps=scsi_core device=scsi:sd:0:0:0:0\n"
                         "module other\nloaded other\n"));
        settings_.idleTimeoutUsec = 10'000'000;
    }

    void makeAutoclean() { world_.makeAutoclean(settings_); }

    void load(const std::string &name, Origin origin = Origin::Kernel, bool autoclean = false,
              const std::string &device = {}) {
        const Outcome outcome = world_.load(name, origin, LoadOptions{device, autoclean});
        ASSERT_EQ(outcome.error, 0) << outcome.message;
    }

    // Sweeps at the given second and lets the unloads it started finish.
    void sweepAt(std::uint64_t seconds) {
        world_.scheduler.now = seconds * 1'000'000;
        world_.autoclean->sweep();
        world_.runner->runAll();
    }

    Autoclean &autoclean() { return *world_.autoclean; }
    FakeKernel &kernel() { return *world_.kernel; }
    std::string keptBecause(const std::string &module) {
        return autoclean().status(module).keptBecause.text();
    }

    CoreWorld world_;
    AutocleanSettings settings_;
};

}  // namespace

TEST(WhyKept, OnlyWhatLkmdLoadedOnDemandIsEverACandidate) {
    AutocleanSettings settings;
    const UseFacts facts = live();
    EXPECT_EQ(whyKept(settings, "vfat", nullptr, facts).text(), "loaded by someone else");
    ModuleRecord bus = onDemand();
    bus.origin = Origin::Bus;
    bus.autoclean = false;
    EXPECT_EQ(whyKept(settings, "vfat", &bus, facts).text(), "loaded over D-Bus without autoclean");
    ModuleRecord pinned = onDemand();
    pinned.pinned = true;
    EXPECT_EQ(whyKept(settings, "vfat", &pinned, facts).kind, Keep::Pinned);
    const ModuleRecord record = onDemand();
    settings.keep = {"vfat"};
    EXPECT_EQ(whyKept(settings, "vfat", &record, facts).text(), "listed in Keep=");
    settings.keep.clear();
    settings.requestTimeouts = {{"fs-*", kNever}};
    EXPECT_EQ(whyKept(settings, "vfat", &record, facts).text(), "its timeout is never");
    settings.requestTimeouts.clear();
    EXPECT_FALSE(whyKept(settings, "vfat", &record, facts).keeps());
    ModuleRecord inserting = onDemand();
    inserting.inserting = true;
    EXPECT_EQ(whyKept(settings, "vfat", &inserting, facts).kind, Keep::BeingLoaded);
}

TEST(WhyKept, RefcntZeroIsNotEnough) {
    AutocleanSettings settings;
    const ModuleRecord record = onDemand();
    UseFacts bound = live();
    bound.boundDevices = {"0000:00:03.0"};
    EXPECT_EQ(whyKept(settings, "e1000", &record, bound).text(), "bound to 0000:00:03.0");
    UseFacts links = live();
    links.liveLinkKind = "dummy";
    EXPECT_EQ(whyKept(settings, "dummy", &record, links).text(), "provides live dummy links");
    UseFacts held = live(1);
    held.row.holders = {"vfat"};
    EXPECT_EQ(whyKept(settings, "fat", &record, held).text(), "held by vfat");
    EXPECT_EQ(whyKept(settings, "vfat", &record, live(1)).text(), "in use (refcnt 1)");
    EXPECT_EQ(whyKept(settings, "x", &record, live(-1)).kind, Keep::Permanent);
}

// The unload check asks the same question without the ownership part, and answers in the words
// of a refusal.
TEST(WhyInUse, TheUnloadCheckGivesTheSameReasons) {
    UseFacts held = live(1);
    held.row.holders = {"vfat"};
    EXPECT_EQ(whyInUse(held).refusal(), "module is in use by vfat");
    UseFacts bound = live();
    bound.boundDevices = {"0000:00:03.0"};
    EXPECT_EQ(whyInUse(bound).refusal(), "module is in use: its driver is bound to 0000:00:03.0");
    UseFacts present = live();
    present.presentDevice = "/devices/system/cpu/cpu0";
    EXPECT_FALSE(whyInUse(present).keeps()) << "a caller may unload what only a device needed";
    UseFacts unlisted = live();
    unlisted.liveLinkKind = kUnlistedLinks;
    EXPECT_EQ(whyInUse(unlisted).text(), "network links could not be listed");
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
    EXPECT_FALSE(autoclean().armed());
    load("other");  // loaded by someone else before: not ours
    load("vfat", Origin::Bus);
    EXPECT_FALSE(autoclean().armed());
    load("dummy", Origin::Kernel);
    EXPECT_TRUE(autoclean().armed());
}

TEST_F(AutocleanTest, UnloadsAfterTwoLooksAndTheWholeTimeoutNotBefore) {
    makeAutoclean();
    load("fs-vfat");
    sweepAt(1);  // first idle look
    sweepAt(9);
    EXPECT_EQ(kernel().state("vfat"), ModuleState::Live);
    sweepAt(11);
    EXPECT_EQ(kernel().state("vfat"), ModuleState::Absent);
    // Its dependency falls idle only now, and gets its own full timeout.
    EXPECT_EQ(kernel().state("fat"), ModuleState::Live);
    sweepAt(12);
    sweepAt(21);
    EXPECT_EQ(kernel().state("fat"), ModuleState::Live);
    sweepAt(23);
    EXPECT_EQ(kernel().state("fat"), ModuleState::Absent);
    EXPECT_FALSE(autoclean().armed());
    EXPECT_EQ(world_.recorded.unloaded, (std::vector<std::string>{"vfat/idle", "fat/idle"}));
}

TEST_F(AutocleanTest, TheTimerDrivesTheSweeps) {
    makeAutoclean();
    load("fs-vfat");
    ASSERT_TRUE(autoclean().armed());
    EXPECT_EQ(autoclean().periodUsec(), 5'000'000u);
    for (int second = 1; second <= 40; ++second) {
        world_.scheduler.advanceTo(second * 1'000'000ull);
        world_.runner->runAll();
    }
    EXPECT_EQ(kernel().state("vfat"), ModuleState::Absent);
    EXPECT_EQ(kernel().state("fat"), ModuleState::Absent);
    EXPECT_FALSE(autoclean().armed());
}

TEST_F(AutocleanTest, NeverUnloadsModuleWithBoundDevice) {
    makeAutoclean();
    load("e1000", Origin::Hotplug);
    for (std::uint64_t t = 1; t < 100; t += 5)
        sweepAt(t);
    EXPECT_EQ(kernel().state("e1000"), ModuleState::Live);
    EXPECT_EQ(keptBecause("e1000"), "bound to 0000:00:03.0");
}

// kvm_amd binds no device, yet it was loaded for the CPU's modalias: it stays while the device
// it was loaded for exists, and is reclaimed once that device is gone.
TEST_F(AutocleanTest, KeepsAModuleWhileTheDeviceItWasLoadedForExists) {
    const std::string devpath = "/devices/system/cpu/cpu0";
    const std::filesystem::path device = world_.dir.path() / "sys" / devpath.substr(1);
    std::filesystem::create_directories(device);
    makeAutoclean();
    load("dummy", Origin::Coldplug, false, devpath);
    for (std::uint64_t t = 1; t < 60; t += 5)
        sweepAt(t);
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Live);
    EXPECT_EQ(keptBecause("dummy"), "loaded for /devices/system/cpu/cpu0, still present");
    std::filesystem::remove(device);
    sweepAt(60);
    sweepAt(71);
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Absent);
}

// With a uevent monitor, a candidate that only devices keep needs no sweeps: lkmd sleeps until a
// device goes (remove or unbind), then looks again. Without one, it keeps polling.
TEST_F(AutocleanTest, ModulesKeptByDevicesAloneWaitForADeviceToGo) {
    const std::string devpath = "/devices/system/cpu/cpu0";
    const std::filesystem::path device = world_.dir.path() / "sys" / devpath.substr(1);
    std::filesystem::create_directories(device);
    makeAutoclean();
    load("dummy", Origin::Coldplug, false, devpath);
    ASSERT_TRUE(autoclean().armed());
    sweepAt(1);
    EXPECT_EQ(autoclean().periodUsec(), 5'000'000u) << "no monitor: polling goes on";
    autoclean().setDeviceEvents(true);
    world_.scheduler.advanceBy(10'000'000);  // the pending sweep
    world_.runner->runAll();
    EXPECT_FALSE(autoclean().armed()) << "kept by its device alone: no timer at all";

    std::filesystem::remove(device);
    autoclean().deviceGone();
    EXPECT_EQ(autoclean().periodUsec(), 5'000'000u) << "the device's going wakes the sweep";
    sweepAt(20);
    sweepAt(31);
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Absent);
}

// Item 2 of the correctness issue: while the only other candidate sleeps, a new on-demand load
// must still be looked at within its own period.
TEST_F(AutocleanTest, ANewCandidateIsLookedAtSoonWhileOthersSleep) {
    makeAutoclean();
    autoclean().setDeviceEvents(true);
    load("e1000", Origin::Hotplug);
    world_.scheduler.advanceBy(10'000'000);
    world_.runner->runAll();
    ASSERT_FALSE(autoclean().armed()) << keptBecause("e1000");
    load("fs-vfat");
    EXPECT_LE(world_.autoclean->periodUsec(), 5'000'000u);
    for (int second = 11; second <= 60; ++second) {
        world_.scheduler.advanceTo(second * 1'000'000ull);
        world_.runner->runAll();
    }
    EXPECT_EQ(kernel().state("vfat"), ModuleState::Absent);
    EXPECT_EQ(kernel().state("fat"), ModuleState::Absent);
    EXPECT_EQ(kernel().state("e1000"), ModuleState::Live);
    EXPECT_FALSE(autoclean().armed());
}

// A dependency held by a module lkmd keeps needs no polling: only an unload can free it.
TEST_F(AutocleanTest, ADependencyHeldByAKeptModuleWaitsForAModuleToGo) {
    makeAutoclean();
    autoclean().setDeviceEvents(true);
    load("fs-vfat");
    ASSERT_EQ(world_.registry.setPinned("vfat", true), 0);
    autoclean().refresh();
    sweepAt(1);
    EXPECT_EQ(keptBecause("fat"), "held by vfat");
    world_.scheduler.advanceBy(5'000'000);
    world_.runner->runAll();
    EXPECT_FALSE(autoclean().armed());
    ASSERT_EQ(world_.registry.setPinned("vfat", false), 0);
    autoclean().refresh();
    EXPECT_EQ(autoclean().periodUsec(), 5'000'000u);
    sweepAt(12);
    sweepAt(23);
    EXPECT_EQ(kernel().state("vfat"), ModuleState::Absent);
    EXPECT_EQ(autoclean().periodUsec(), 5'000'000u) << "vfat's unload wakes fat's track";
}

// Issue 14: scsi_mod counts its SCSI devices, drm its open files; such references end with no
// event, but the module cannot go before its holders anyway. lkmd sleeps until a module goes.
TEST_F(AutocleanTest, AHeldModuleWithMoreReferencesThanHoldersIsNotPolled) {
    makeAutoclean();
    autoclean().setDeviceEvents(true);
    load("sd", Origin::Hotplug);
    sweepAt(1);
    EXPECT_EQ(keptBecause("scsi_core"), "held by sd");
    world_.scheduler.advanceBy(5'000'000);
    world_.runner->runAll();
    EXPECT_FALSE(autoclean().armed()) << keptBecause("scsi_core") << "; " << keptBecause("sd");
    // Without a monitor an admin's rmmod of the holder would go unheard: polled then.
    autoclean().setDeviceEvents(false);
    EXPECT_TRUE(autoclean().armed());
}

TEST_F(AutocleanTest, NeverUnloadsModuleWhoseLinksExist) {
    makeAutoclean();
    load("rtnl-link-dummy");
    world_.links = {"dummy"};
    for (std::uint64_t t = 1; t < 50; t += 5)
        sweepAt(t);
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Live);
    world_.links.clear();
    sweepAt(60);
    sweepAt(71);
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Absent);
}

// Item 4: the facts are read again right before delete_module(): a link made after the sweep
// decided keeps the module.
TEST_F(AutocleanTest, AUserThatCameAfterTheSweepStillCounts) {
    makeAutoclean();
    load("rtnl-link-dummy");
    sweepAt(1);
    world_.scheduler.now = 12'000'000;
    autoclean().sweep();
    ASSERT_TRUE(world_.runner->runNext());  // the sweep's look: idle, so the unload is queued
    ASSERT_TRUE(world_.coordinator->removing("dummy"));
    world_.links = {"dummy"};  // ip link add d0 type dummy, just now
    world_.runner->runAll();
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Live);
    EXPECT_FALSE(world_.coordinator->removing("dummy"));
}

TEST_F(AutocleanTest, UseInBetweenStartsTheIdleClockOver) {
    makeAutoclean();
    load("busy", Origin::Kernel);
    sweepAt(1);
    EXPECT_EQ(keptBecause("busy"), "in use (refcnt 1)");
    EXPECT_EQ(autoclean().status("busy").unloadAtUsec, 0u);
}

TEST_F(AutocleanTest, BusLoadsStayUnlessAskedAndPinsHold) {
    makeAutoclean();
    load("vfat", Origin::Bus);
    load("dummy", Origin::Bus, true);
    ASSERT_EQ(world_.registry.setPinned("dummy", true), 0);
    for (std::uint64_t t = 1; t < 60; t += 5)
        sweepAt(t);
    EXPECT_EQ(kernel().state("vfat"), ModuleState::Live);
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Live);
    ASSERT_EQ(world_.registry.setPinned("dummy", false), 0);
    autoclean().refresh();
    sweepAt(70);
    sweepAt(81);
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Absent);
    EXPECT_EQ(world_.registry.setPinned("other", true), -ESRCH);
}

TEST_F(AutocleanTest, RequestDuringUnloadWaitsAndLoadsAgain) {
    makeAutoclean();
    load("rtnl-link-dummy");
    sweepAt(1);
    world_.scheduler.now = 12'000'000;
    autoclean().sweep();
    ASSERT_TRUE(world_.runner->runNext());  // the look; the removal is queued
    ASSERT_TRUE(world_.coordinator->removing("dummy"));
    std::optional<Outcome> again;
    world_.loader->load("rtnl-link-dummy", Origin::Kernel,
                        [&](Outcome o) { again = std::move(o); });
    world_.runner->runAll();
    ASSERT_TRUE(again);
    EXPECT_EQ(again->error, 0);
    EXPECT_EQ(again->inserted, std::vector<std::string>{"dummy"});
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Live);
    ASSERT_NE(world_.registry.find("dummy"), nullptr);
    EXPECT_EQ(world_.registry.find("dummy")->origin, Origin::Kernel);
}

// Item 3 of the correctness issue: lkmd loads dummy, someone removes it (rmmod) and loads it again
// (modprobe). That instance is not lkmd's: never unloaded by autoclean.
TEST_F(AutocleanTest, AModuleLoadedAgainBySomeoneElseIsNotLkmdsAnyMore) {
    makeAutoclean();
    load("rtnl-link-dummy");
    ASSERT_EQ(kernel().remove("dummy"), 0);
    ASSERT_EQ(kernel().insert({"dummy", {}, false, true}), 0);
    for (std::uint64_t t = 1; t < 60; t += 5)
        sweepAt(t);
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Live);
    EXPECT_EQ(world_.registry.find("dummy"), nullptr) << "the stale record is forgotten";
    EXPECT_FALSE(world_.queries->loadedByLkmd("dummy"));
}

TEST_F(AutocleanTest, TheFinalLookRefusesAModuleLoadedAgainMeanwhile) {
    makeAutoclean();
    load("rtnl-link-dummy");
    sweepAt(1);
    world_.scheduler.now = 12'000'000;
    autoclean().sweep();
    ASSERT_TRUE(world_.runner->runNext());   // the look: idle, the removal is queued
    ASSERT_EQ(kernel().remove("dummy"), 0);  // rmmod; modprobe dummy
    ASSERT_EQ(kernel().insert({"dummy", {}, false, true}), 0);
    world_.runner->runAll();
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Live);
    EXPECT_EQ(world_.registry.find("dummy"), nullptr);
}

// Pinned while idle: nothing but the unpin can end that, and the unpin must be heard at once,
// also when lkmd otherwise sleeps on device events.
TEST_F(AutocleanTest, AnUnpinnedModuleGoesAfterItsTimeoutWithDeviceEventsOn) {
    makeAutoclean();
    autoclean().setDeviceEvents(true);
    load("dummy", Origin::Bus, true);
    ASSERT_EQ(world_.registry.setPinned("dummy", true), 0);
    autoclean().refresh();
    sweepAt(1);
    EXPECT_EQ(keptBecause("dummy"), "pinned");
    ASSERT_EQ(world_.registry.setPinned("dummy", false), 0);
    autoclean().refresh();
    EXPECT_LE(autoclean().periodUsec(), 5'000'000u);
    for (int second = 2; second <= 30; ++second) {
        world_.scheduler.advanceTo(second * 1'000'000ull);
        world_.runner->runAll();
    }
    EXPECT_EQ(kernel().state("dummy"), ModuleState::Absent);
}

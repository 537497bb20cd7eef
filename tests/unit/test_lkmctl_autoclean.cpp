// SPDX-License-Identifier: LGPL-2.1-or-later
// lkmctl's side of autoclean (issue 5): load --autoclean, pin and unpin, the AUTOCLEAN column of
// list, the autoclean lines of info and their JSON keys.
#include <stdlib.h>
#include <time.h>

#include <cerrno>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bus_failure.h"
#include "cli_args.h"
#include "module_info.h"
#include "output.h"
#include "text.h"
#include "time_zone_utc.h"

namespace lkmd::client {
namespace {

using ::testing::HasSubstr;

constexpr std::uint64_t kUsecPerSec = 1000000;
// 2024-05-01 12:00:00.25 UTC.
constexpr std::uint64_t kNoonUsec = 1714564800ULL * kUsecPerSec + 250000;

class AutocleanList : public TimeZonePinnedToUtc {};
class AutocleanInfo : public TimeZonePinnedToUtc {};

ModuleInfo module(std::string name, std::string origin = "kernel") {
    ModuleInfo info;
    info.name = std::move(name);
    info.origin = std::move(origin);
    info.state = "live";
    info.refCount = 0;
    info.size = 16384;
    return info;
}

// A candidate that has been idle since noon and goes 42 s after now.
ModuleInfo goingIn42s(std::string name) {
    ModuleInfo info = module(std::move(name));
    info.autoclean = true;
    info.idleSinceUsec = kNoonUsec;
    info.unloadAtUsec = kNoonUsec + 60 * kUsecPerSec;
    return info;
}
constexpr std::uint64_t kNowUsec = kNoonUsec + 18 * kUsecPerSec;

ParseResult parse(std::vector<std::string_view> args) {
    return parseArguments(args);
}

// Command line

TEST(AutocleanArgs, LoadTakesAutocleanBeforeOrAfterTheCommand) {
    for (const auto &args : {std::vector<std::string_view>{"load", "--autoclean", "vfat"},
                             std::vector<std::string_view>{"--autoclean", "load", "vfat"},
                             std::vector<std::string_view>{"load", "vfat", "--autoclean"}}) {
        const ParseResult result = parse(args);
        EXPECT_EQ(result.error, "");
        EXPECT_EQ(result.args.command, Command::Load);
        EXPECT_EQ(result.args.module, "vfat");
        EXPECT_TRUE(result.args.autoclean);
    }
}

TEST(AutocleanArgs, PlainLoadDoesNotAskForAutoclean) {
    EXPECT_FALSE(parse({"load", "vfat"}).args.autoclean);
}

TEST(AutocleanArgs, RefusesAutocleanWithOtherCommands) {
    EXPECT_EQ(parse({"--autoclean", "info", "vfat"}).error, "--autoclean only applies to load");
    EXPECT_EQ(parse({"pin", "vfat", "--autoclean"}).error, "--autoclean only applies to load");
}

TEST(AutocleanArgs, AutocleanAfterDoubleDashIsAModuleName) {
    const ParseResult result = parse({"load", "--", "--autoclean"});
    EXPECT_EQ(result.error, "");
    EXPECT_EQ(result.args.module, "--autoclean");
    EXPECT_FALSE(result.args.autoclean);
}

TEST(AutocleanArgs, PinAndUnpinTakeOneModule) {
    EXPECT_EQ(parse({"pin", "vfat"}).args.command, Command::Pin);
    EXPECT_EQ(parse({"unpin", "vfat"}).args.command, Command::Unpin);
    EXPECT_EQ(parse({"unpin", "vfat"}).args.module, "vfat");
    EXPECT_TRUE(takesModule(Command::Pin));
    EXPECT_TRUE(takesModule(Command::Unpin));
    EXPECT_EQ(parse({"pin"}).error, "missing module name after 'pin'");
    EXPECT_EQ(parse({"unpin", "a", "b"}).error, "unexpected argument 'b'");
}

TEST(AutocleanArgs, HelpMentionsTheNewCommandsAndOption) {
    EXPECT_THAT(helpText(), HasSubstr("  pin MODULE "));
    EXPECT_THAT(helpText(), HasSubstr("  unpin MODULE "));
    EXPECT_THAT(helpText(), HasSubstr("--autoclean"));
}

// a{sv} to ModuleInfo

TEST(AutocleanProperties, ReadsTheAutocleanKeys) {
    const ModuleInfo info = moduleInfoFromProperties({
        {"Name", std::string("vfat")},
        {"Autoclean", true},
        {"Pinned", true},
        {"IdleSince", std::uint64_t{kNoonUsec}},
        {"UnloadAt", std::uint64_t{kNoonUsec + 60 * kUsecPerSec}},
        {"KeptBecause", std::string("pinned")},
    });
    EXPECT_TRUE(info.autoclean);
    EXPECT_TRUE(info.pinned);
    EXPECT_EQ(info.idleSinceUsec, kNoonUsec);
    EXPECT_EQ(info.unloadAtUsec, kNoonUsec + 60 * kUsecPerSec);
    EXPECT_EQ(info.keptBecause, "pinned");
}

TEST(AutocleanProperties, ADaemonWithoutAutocleanLeavesTheDefaults) {
    const ModuleInfo info = moduleInfoFromProperties({{"Name", std::string("vfat")}});
    EXPECT_FALSE(info.autoclean);
    EXPECT_FALSE(info.pinned);
    EXPECT_EQ(info.idleSinceUsec, 0u);
    EXPECT_EQ(info.unloadAtUsec, 0u);
    EXPECT_EQ(info.keptBecause, "");
}

TEST(AutocleanProperties, TreatsMistypedValuesAsMissing) {
    const ModuleInfo info = moduleInfoFromProperties({
        {"Autoclean", std::string("yes")},
        {"Pinned", std::uint64_t{1}},
        {"IdleSince", std::int64_t{-5}},
        {"KeptBecause", false},
    });
    EXPECT_FALSE(info.autoclean);
    EXPECT_FALSE(info.pinned);
    EXPECT_EQ(info.idleSinceUsec, 0u);
    EXPECT_EQ(info.keptBecause, "");
}

// Durations

TEST(Duration, UsesTheTwoLargestUnits) {
    EXPECT_EQ(formatDuration(42 * kUsecPerSec), "42s");
    EXPECT_EQ(formatDuration(60 * kUsecPerSec), "1min");
    EXPECT_EQ(formatDuration(250 * kUsecPerSec), "4min 10s");
    EXPECT_EQ(formatDuration(3900 * kUsecPerSec), "1h 5min");
    EXPECT_EQ(formatDuration(3 * 3600 * kUsecPerSec + 59), "3h");
    EXPECT_EQ(formatDuration((2 * 86400 + 3 * 3600 + 7) * kUsecPerSec), "2d 3h");
}

TEST(Duration, RoundsUpSoThatAFutureDeadlineNeverReadsZero) {
    EXPECT_EQ(formatDuration(1), "1s");
    EXPECT_EQ(formatDuration(41 * kUsecPerSec + 1), "42s");
    EXPECT_EQ(formatDuration(0), "0s");
}

// The AUTOCLEAN column

TEST(AutocleanSummary, IsADashForModulesLkmdDidNotLoad) {
    ModuleInfo ext4 = module("ext4", "external");
    ext4.keptBecause = "loaded by someone else";
    EXPECT_EQ(autocleanSummary(ext4, kNowUsec), "-");
}

TEST(AutocleanSummary, SaysWhenAnIdleModuleGoes) {
    EXPECT_EQ(autocleanSummary(goingIn42s("vfat"), kNowUsec), "idle, goes in 42s");
}

TEST(AutocleanSummary, SaysNowOnceTheDeadlineHasPassed) {
    ModuleInfo vfat = goingIn42s("vfat");
    EXPECT_EQ(autocleanSummary(vfat, vfat.unloadAtUsec), "idle, goes now");
    EXPECT_EQ(autocleanSummary(vfat, vfat.unloadAtUsec + kUsecPerSec), "idle, goes now");
}

TEST(AutocleanSummary, SaysIdleWithoutATimeWhenLkmdGaveNone) {
    ModuleInfo vfat = goingIn42s("vfat");
    vfat.unloadAtUsec = 0;
    EXPECT_EQ(autocleanSummary(vfat, kNowUsec), "idle");
}

TEST(AutocleanSummary, PinnedWinsOverEverythingElse) {
    ModuleInfo vfat = goingIn42s("vfat");
    vfat.pinned = true;
    vfat.keptBecause = "pinned";
    EXPECT_EQ(autocleanSummary(vfat, kNowUsec), "pinned");
}

TEST(AutocleanSummary, SaysKeptForModulesThatWillNotGoNow) {
    ModuleInfo inUse = module("vfat");
    inUse.autoclean = true;
    inUse.keptBecause = "in use (refcnt 1)";
    EXPECT_EQ(autocleanSummary(inUse, kNowUsec), "kept");

    ModuleInfo never = module("e1000", "hotplug");
    never.autoclean = true;
    never.idleSinceUsec = kNoonUsec;
    never.keptBecause = "IdleTimeout=never";
    EXPECT_EQ(autocleanSummary(never, kNowUsec), "kept");

    ModuleInfo byBus = module("dummy", "bus");
    byBus.keptBecause = "loaded over D-Bus without autoclean";
    EXPECT_EQ(autocleanSummary(byBus, kNowUsec), "kept");
}

TEST(AutocleanSummary, SaysKeptWhenTheDaemonKnowsNothingOfAutoclean) {
    EXPECT_EQ(autocleanSummary(module("vfat"), kNowUsec), "kept");
}

TEST_F(AutocleanList, ShowsTheColumnLastSoThatTheOthersStayOneFieldEach) {
    ModuleInfo pinned = module("dummy", "bus");
    pinned.autoclean = true;
    pinned.pinned = true;
    ModuleInfo loop = module("loop", "external");
    EXPECT_EQ(formatModuleList({goingIn42s("vfat"), pinned, loop}, true, kNowUsec),
              "MODULE  ORIGIN    TRIGGER  REFCNT  LOADED  AUTOCLEAN\n"
              "dummy   bus       -             0  -       pinned\n"
              "loop    external  -             0  -       -\n"
              "vfat    kernel    -             0  -       idle, goes in 42s\n"
              "\n"
              "3 modules listed.\n");
}

// info

TEST_F(AutocleanInfo, ShowsIdleTimeAndWhenItGoes) {
    const std::string text = formatModuleDetails(goingIn42s("vfat"), kNowUsec);
    EXPECT_THAT(text, HasSubstr("\n   Autoclean: yes\n"));
    EXPECT_THAT(text, HasSubstr("\n      Pinned: no\n"));
    EXPECT_THAT(text, HasSubstr("\n  Idle since: Wed 2024-05-01 12:00:00 UTC; 18s ago\n"));
    EXPECT_THAT(text, HasSubstr("\n  Unloads at: Wed 2024-05-01 12:01:00 UTC; in 42s\n"));
    EXPECT_THAT(text, HasSubstr("\nKept because: -\n"));
}

TEST_F(AutocleanInfo, SaysDueNowOnceTheDeadlineHasPassed) {
    ModuleInfo vfat = goingIn42s("vfat");
    EXPECT_THAT(formatModuleDetails(vfat, vfat.unloadAtUsec + 1),
                HasSubstr("\n  Unloads at: Wed 2024-05-01 12:01:00 UTC; due now\n"));
}

TEST_F(AutocleanInfo, ShowsWhyAModuleIsKept) {
    ModuleInfo fat = module("fat");
    fat.autoclean = true;
    fat.keptBecause = "held by vfat";
    const std::string text = formatModuleDetails(fat, kNowUsec);
    EXPECT_THAT(text, HasSubstr("\n  Idle since: -\n"));
    EXPECT_THAT(text, HasSubstr("\n  Unloads at: -\n"));
    EXPECT_THAT(text, HasSubstr("\nKept because: held by vfat\n"));
}

TEST_F(AutocleanInfo, EscapesTheReasonFromTheBus) {
    ModuleInfo fat = module("fat");
    fat.keptBecause = "held by \x1b[2J";
    EXPECT_THAT(formatModuleDetails(fat, kNowUsec), HasSubstr("Kept because: held by \\x1b[2J\n"));
}

TEST(AutocleanJson, HasTheKeysInListAndInfo) {
    ModuleInfo vfat = goingIn42s("vfat");
    vfat.keptBecause = "";
    for (const auto &json : {moduleListJson({vfat})[0], moduleDetailsJson(vfat)}) {
        EXPECT_EQ(json["autoclean"], true);
        EXPECT_EQ(json["pinned"], false);
        EXPECT_EQ(json["idle_since"], "2024-05-01T12:00:00Z");
        EXPECT_EQ(json["idle_since_usec"], kNoonUsec);
        EXPECT_EQ(json["unload_at"], "2024-05-01T12:01:00Z");
        EXPECT_EQ(json["unload_at_usec"], kNoonUsec + 60 * kUsecPerSec);
        EXPECT_EQ(json["kept_because"], "");
    }
}

TEST(AutocleanJson, GivesNullForTimesThatAreNotSet) {
    const auto json = moduleDetailsJson(module("fat"));
    EXPECT_TRUE(json["idle_since"].is_null());
    EXPECT_TRUE(json["unload_at"].is_null());
    EXPECT_EQ(json["unload_at_usec"], 0u);
}

// pin and unpin

TEST(Pin, SaysWhatWasPinnedOrUnpinned) {
    EXPECT_EQ(formatPinResult("vfat", true), "Pinned vfat.\n");
    EXPECT_EQ(formatPinResult("vfat", false), "Unpinned vfat.\n");
    EXPECT_EQ(formatPinResult("a\nb", true), "Pinned a\\x0ab.\n");
}

TEST(Pin, JsonHasModuleAndState) {
    EXPECT_EQ(pinResultJson("vfat", "vfat", true).dump(),
              R"({"request":"vfat","module":"vfat","pinned":true})");
    EXPECT_EQ(pinResultJson("vfat", "vfat", false).dump(),
              R"({"request":"vfat","module":"vfat","pinned":false})");
}

TEST(PinFailure, SaysLkmdDidNotLoadItWhenTheDaemonGaveNoMessage) {
    const BusFailure failure{"org.lkmd1.Error.External", "", EREMOTE};
    EXPECT_EQ(describeCallFailure(Command::Pin, "loop", failure),
              "lkmctl: cannot pin 'loop': lkmd did not load this module");
}

TEST(PinFailure, PrefersTheDaemonsMessage) {
    const BusFailure failure{"org.lkmd1.Error.External", "'loop' was not loaded by lkmd", EREMOTE};
    EXPECT_EQ(describeCallFailure(Command::Pin, "loop", failure),
              "lkmctl: cannot pin 'loop': 'loop' was not loaded by lkmd");
}

TEST(PinFailure, NamesTheCapabilityWhenAccessIsDenied) {
    const BusFailure failure{"org.freedesktop.DBus.Error.AccessDenied", "", EACCES};
    EXPECT_EQ(describeCallFailure(Command::Unpin, "vfat", failure),
              "lkmctl: cannot unpin 'vfat': permission denied (needs CAP_SYS_MODULE or root)");
}

TEST(PinFailure, SaysAnOlderLkmdDoesNotSupportIt) {
    const BusFailure failure{"org.freedesktop.DBus.Error.UnknownMethod",
                             "Unknown method LoadModuleEx or interface org.lkmd1.Manager.", EBADR};
    EXPECT_EQ(describeCallFailure(Command::Load, "vfat", failure),
              "lkmctl: cannot load 'vfat': this version of lkmd does not support it");
    EXPECT_EQ(describeCallFailure(Command::Pin, "vfat", failure),
              "lkmctl: cannot pin 'vfat': this version of lkmd does not support it");
}

}  // namespace
}  // namespace lkmd::client

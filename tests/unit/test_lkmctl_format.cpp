// SPDX-License-Identifier: LGPL-2.1-or-later
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
#include "table.h"
#include "text.h"
#include "time_format.h"
#include "time_zone_utc.h"

namespace lkmd::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// 2024-05-01 12:00:00 UTC.
constexpr std::uint64_t kNoonUsec = 1714564800ULL * 1000000 + 250000;

class LocalTime : public TimeZonePinnedToUtc {};
class List : public TimeZonePinnedToUtc {};
class Info : public TimeZonePinnedToUtc {};

ModuleInfo module(std::string name, std::string origin = "bus") {
    ModuleInfo info;
    info.name = std::move(name);
    info.origin = std::move(origin);
    info.state = "live";
    info.refCount = 0;
    info.size = 16384;
    return info;
}

ParseResult parse(std::vector<std::string_view> args) {
    return parseArguments(args);
}

// escapeForTerminal, displayWidth

TEST(Escape, KeepsPrintableAsciiAsIs) {
    EXPECT_EQ(escapeForTerminal("fs-vfat crypto-cbc(aes)-all"), "fs-vfat crypto-cbc(aes)-all");
}

TEST(Escape, TurnsControlCharactersIntoHexEscapes) {
    EXPECT_EQ(escapeForTerminal("a\x1b[2Jb\n\t\x7f"), "a\\x1b[2Jb\\x0a\\x09\\x7f");
}

TEST(Escape, DoublesBackslashesSoEscapesStayUnambiguous) {
    EXPECT_EQ(escapeForTerminal("a\\x41"), "a\\\\x41");
}

TEST(Escape, KeepsValidMultibyteUtf8) {
    EXPECT_EQ(escapeForTerminal("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
              "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(Escape, EscapesC1ControlsThatSomeTerminalsObey) {
    EXPECT_EQ(escapeForTerminal("a\xc2\x9b"
                                "31m"),
              "a\\xc2\\x9b31m");
}

TEST(Escape, EscapesEachByteOfInvalidUtf8) {
    EXPECT_EQ(escapeForTerminal("\xff\xc3"), "\\xff\\xc3");
    EXPECT_EQ(escapeForTerminal("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
    EXPECT_EQ(escapeForTerminal("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
}

TEST(Escape, QuotesEscapedTextInSingleQuotes) {
    EXPECT_EQ(quoteEscaped("a\nb"), "'a\\x0ab'");
}

TEST(DisplayWidth, CountsCodePointsNotBytes) {
    EXPECT_EQ(displayWidth("abc"), 3u);
    EXPECT_EQ(displayWidth("caf\xc3\xa9"), 4u);
}

// Time

TEST_F(LocalTime, FormatsTimestampsWithDayAndZoneAsSystemctlDoes) {
    EXPECT_EQ(formatTimestamp(kNoonUsec), "Wed 2024-05-01 12:00:00 UTC");
    EXPECT_EQ(formatTimestampAndRelative(kNoonUsec, kNoonUsec + 480 * 1000000ULL),
              "Wed 2024-05-01 12:00:00 UTC; 8min ago");
}

TEST_F(LocalTime, FormatsUnknownTimesAsDash) {
    EXPECT_EQ(formatTimestamp(0), "-");
    EXPECT_EQ(formatTimestampAndRelative(0, kNoonUsec), "-");
}

TEST(Iso8601, FormatsUtcWithZuluSuffix) {
    EXPECT_EQ(formatIso8601Utc(kNoonUsec), "2024-05-01T12:00:00Z");
}

TEST(Iso8601, IsEmptyForUnknownTime) {
    EXPECT_EQ(formatIso8601Utc(0), "");
}

// Table

TEST(Table, AlignsColumnsToWidestCell) {
    Table table({{"A"}, {"B"}});
    table.addRow({"long-name", "x"});
    table.addRow({"s", "y"});
    EXPECT_EQ(table.format(true),
              "A          B\n"
              "long-name  x\n"
              "s          y\n");
}

TEST(Table, RightAlignsNumericColumns) {
    Table table({{"NAME"}, {"N", Table::Align::Right}});
    table.addRow({"a", "7"});
    table.addRow({"b", "-1"});
    EXPECT_EQ(table.format(true),
              "NAME   N\n"
              "a      7\n"
              "b     -1\n");
}

TEST(Table, LeavesNoTrailingSpaces) {
    Table table({{"NAME"}, {"LAST"}});
    table.addRow({"a", ""});
    for (const char *line : {"NAME  LAST", "a"})
        EXPECT_THAT(table.format(true), HasSubstr(std::string(line) + "\n"));
    EXPECT_THAT(table.format(true), Not(HasSubstr(" \n")));
}

TEST(Table, OmitsHeaderWhenAskedTo) {
    Table table({{"NAME"}});
    table.addRow({"dummy"});
    EXPECT_EQ(table.format(false), "dummy\n");
}

TEST(Table, EscapesCellsAndMeasuresTheEscapedText) {
    Table table({{"A"}, {"B"}});
    table.addRow({"a\x1b", "x"});
    EXPECT_EQ(table.format(false), "a\\x1b  x\n");
}

TEST(Table, FillsMissingCells) {
    Table table({{"A"}, {"B"}, {"C"}});
    table.addRow({"a"});
    EXPECT_EQ(table.format(true), "A  B  C\na\n");
}

TEST(KeyValueLines, RightAlignsKeysOnTheColon) {
    EXPECT_EQ(formatKeyValueLines({{"Module", "dummy"}, {"RefCount", "0"}}),
              "  Module: dummy\n"
              "RefCount: 0\n");
}

// Argument parsing

TEST(CliArgs, ParsesCommandAndModule) {
    const ParseResult result = parse({"load", "dummy"});
    EXPECT_EQ(result.error, "");
    EXPECT_EQ(result.args.command, Command::Load);
    EXPECT_EQ(result.args.module, "dummy");
    EXPECT_EQ(result.args.json, JsonMode::Off);
    EXPECT_TRUE(result.args.legend);
}

TEST(CliArgs, AcceptsOptionsBeforeAndAfterTheCommand) {
    const ParseResult result = parse({"--json", "list", "--no-legend"});
    EXPECT_EQ(result.error, "");
    EXPECT_EQ(result.args.command, Command::List);
    EXPECT_EQ(result.args.json, JsonMode::Pretty);
    EXPECT_FALSE(result.args.legend);
}

TEST(CliArgs, TreatsEverythingAfterDoubleDashAsArguments) {
    const ParseResult result = parse({"info", "--", "--json"});
    EXPECT_EQ(result.error, "");
    EXPECT_EQ(result.args.module, "--json");
    EXPECT_EQ(result.args.json, JsonMode::Off);
}

TEST(CliArgs, HelpWinsOverLaterMistakes) {
    EXPECT_EQ(parse({"bogus", "-h"}).args.command, Command::Help);
    EXPECT_EQ(parse({"--help", "--bogus"}).args.command, Command::Help);
    EXPECT_EQ(parse({"--version", "x", "y"}).args.command, Command::Version);
}

TEST(CliArgs, RejectsUnknownOptions) {
    EXPECT_EQ(parse({"--frob", "list"}).error, "unknown option '--frob'");
    EXPECT_EQ(parse({"-x", "list"}).error, "unknown option '-x'");
    EXPECT_EQ(parse({"--no-pager=yes", "list"}).error, "option '--no-pager' takes no value");
    EXPECT_EQ(parse({"list", "-H"}).error, "option '-H' needs an argument");
    EXPECT_EQ(parse({"list", "--host"}).error, "option '--host' needs an argument");
}

TEST(CliArgs, RejectsMissingCommand) {
    EXPECT_EQ(parse({}).error, "missing command");
    EXPECT_EQ(parse({"--json"}).error, "missing command");
}

TEST(CliArgs, RejectsUnknownCommand) {
    EXPECT_EQ(parse({"insmod", "x"}).error, "unknown command 'insmod'");
}

TEST(CliArgs, RejectsMissingModule) {
    EXPECT_EQ(parse({"unload"}).error, "missing module name after 'unload'");
}

TEST(CliArgs, RejectsExtraArguments) {
    EXPECT_EQ(parse({"list", "x"}).error, "unexpected argument 'x'");
    EXPECT_EQ(parse({"load", "a", "b"}).error, "unexpected argument 'b'");
}

TEST(CliArgs, EscapesUserTextInErrors) {
    EXPECT_EQ(parse({"\x1b[31m"}).error, "unknown command '\\x1b[31m'");
}

TEST(CliArgs, TakesASingleDashAsAnArgument) {
    EXPECT_EQ(parse({"load", "-"}).args.module, "-");
}

// a{sv} to ModuleInfo

TEST(ModuleInfoFromProperties, ReadsEveryDocumentedKey) {
    const PropertyMap properties = {
        {"Name", std::string("vfat")},
        {"Origin", std::string("kernel")},
        {"Trigger", std::string("fs-vfat")},
        {"LoadedAt", std::uint64_t{kNoonUsec}},
        {"RefCount", std::int64_t{2}},
        {"Size", std::uint64_t{24576}},
        {"State", std::string("live")},
        {"Holders", std::vector<std::string>{"a", "b"}},
        {"Drivers", std::vector<std::string>{"pci:e1000"}},
        {"Devices", std::vector<std::string>{"0000:00:03.0"}},
    };
    const ModuleInfo info = moduleInfoFromProperties(properties);
    EXPECT_EQ(info.name, "vfat");
    EXPECT_EQ(info.origin, "kernel");
    EXPECT_EQ(info.trigger, "fs-vfat");
    EXPECT_EQ(info.loadedAtUsec, kNoonUsec);
    EXPECT_EQ(info.refCount, 2);
    EXPECT_EQ(info.size, 24576u);
    EXPECT_EQ(info.state, "live");
    EXPECT_EQ(info.holders, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(info.drivers, std::vector<std::string>{"pci:e1000"});
    EXPECT_EQ(info.devices, std::vector<std::string>{"0000:00:03.0"});
}

TEST(ModuleInfoFromProperties, IgnoresUnknownKeys) {
    const ModuleInfo info = moduleInfoFromProperties({
        {"Name", std::string("dummy")},
        {"FutureField", std::vector<std::string>{"x"}},
        {"Taints", std::uint64_t{1}},
    });
    EXPECT_EQ(info.name, "dummy");
}

TEST(ModuleInfoFromProperties, GivesMissingKeysTheirDefaults) {
    const ModuleInfo info = moduleInfoFromProperties({{"Name", std::string("dummy")}});
    EXPECT_EQ(info.origin, "");
    EXPECT_EQ(info.trigger, "");
    EXPECT_EQ(info.loadedAtUsec, 0u);
    EXPECT_EQ(info.refCount, -1);
    EXPECT_EQ(info.size, 0u);
    EXPECT_TRUE(info.holders.empty());
}

TEST(ModuleInfoFromProperties, AcceptsIntegersOfAnotherWidthOrSignedness) {
    const ModuleInfo info = moduleInfoFromProperties({
        {"RefCount", std::uint64_t{3}},
        {"Size", std::int64_t{4096}},
    });
    EXPECT_EQ(info.refCount, 3);
    EXPECT_EQ(info.size, 4096u);
}

TEST(ModuleInfoFromProperties, TreatsMistypedOrOutOfRangeValuesAsMissing) {
    const ModuleInfo info = moduleInfoFromProperties({
        {"Name", std::int64_t{1}},
        {"RefCount", std::int64_t{1} << 40},
        {"Size", std::int64_t{-1}},
        {"Holders", std::string("a")},
    });
    EXPECT_EQ(info.name, "");
    EXPECT_EQ(info.refCount, -1);
    EXPECT_EQ(info.size, 0u);
    EXPECT_TRUE(info.holders.empty());
}

TEST(LoadedByLkmd, CountsEveryOriginButExternal) {
    EXPECT_TRUE(isLoadedByLkmd(module("a", "bus")));
    EXPECT_TRUE(isLoadedByLkmd(module("a", "coldplug")));
    EXPECT_FALSE(isLoadedByLkmd(module("a", "external")));
    EXPECT_FALSE(isLoadedByLkmd(module("a", "")));
}

// Command output

TEST_F(List, IsSortedWithDashesForUnknownValues) {
    ModuleInfo vfat = module("vfat", "kernel");
    vfat.trigger = "fs-vfat";
    vfat.loadedAtUsec = kNoonUsec;
    ModuleInfo ext4 = module("ext4", "external");
    ext4.refCount = -1;
    EXPECT_EQ(formatModuleList({vfat, ext4}, true, kNoonUsec),
              "MODULE  ORIGIN    TRIGGER  REFCNT  LOADED  AUTOCLEAN\n"
              "ext4    external  -             -  -       -\n"
              "vfat    kernel    fs-vfat       0  now     kept\n"
              "\n"
              "2 modules listed.\n");
}

TEST_F(List, WithoutLegendPrintsOnlyRows) {
    EXPECT_EQ(formatModuleList({module("b"), module("a")}, false, kNoonUsec),
              "a  bus  -  0  -  kept\n"
              "b  bus  -  0  -  kept\n");
}

TEST_F(List, SaysModuleInTheSingular) {
    EXPECT_THAT(formatModuleList({module("a")}, true, kNoonUsec),
                HasSubstr("\n1 module listed.\n"));
}

TEST_F(List, PrintsOnlyTheFooterWhenEmpty) {
    EXPECT_EQ(formatModuleList({}, true, kNoonUsec), "0 modules listed.\n");
    EXPECT_EQ(formatModuleList({}, false, kNoonUsec), "");
}

TEST_F(List, JsonIsASortedArrayWithNullForUnknownLoadTime) {
    ModuleInfo vfat = module("vfat");
    vfat.loadedAtUsec = kNoonUsec;
    vfat.holders = {"x"};
    const auto json = moduleListJson({vfat, module("ext4", "external")});
    ASSERT_EQ(json.size(), 2u);
    EXPECT_EQ(json[0].dump(),
              R"({"name":"ext4","origin":"external","trigger":"","device":"","refcnt":0,)"
              R"("size":16384,"state":"live","holders":[],"loaded_at":null,"loaded_at_usec":0,)"
              R"("autoclean":false,"pinned":false,"idle_since":null,"idle_since_usec":0,)"
              R"("unload_at":null,"unload_at_usec":0,"kept_because":""})");
    EXPECT_EQ(json[1]["loaded_at"], "2024-05-01T12:00:00Z");
    EXPECT_EQ(json[1]["loaded_at_usec"], kNoonUsec);
    EXPECT_EQ(json[1]["holders"].dump(), R"(["x"])");
}

TEST_F(List, JsonOfNoModulesIsAnEmptyArray) {
    EXPECT_EQ(dumpJson(moduleListJson({})), "[]\n");
}

TEST_F(Info, ListsEveryFieldWithCommasAndDashes) {
    ModuleInfo e1000 = module("e1000", "hotplug");
    e1000.trigger = "pci:v00008086d0000100E";
    e1000.device = "/devices/pci0000:00/0000:00:03.0";
    e1000.loadedAtUsec = kNoonUsec;
    e1000.drivers = {"pci:e1000"};
    e1000.devices = {"0000:00:03.0", "0000:00:04.0"};
    e1000.autoclean = true;
    e1000.keptBecause = "bound to 0000:00:03.0";
    EXPECT_EQ(formatModuleDetails(e1000, kNoonUsec),
              "      Module: e1000\n"
              "      Origin: hotplug\n"
              "     Trigger: pci:v00008086d0000100E\n"
              "      Device: /devices/pci0000:00/0000:00:03.0\n"
              "       State: live\n"
              "    RefCount: 0\n"
              "        Size: 16.0K\n"
              "      Loaded: Wed 2024-05-01 12:00:00 UTC; now\n"
              "     Holders: -\n"
              "     Drivers: pci:e1000\n"
              "     Devices: 0000:00:03.0, 0000:00:04.0\n"
              "   Autoclean: yes\n"
              "      Pinned: no\n"
              "  Idle since: -\n"
              "  Unloads at: -\n"
              "Kept because: bound to 0000:00:03.0\n");
}

TEST_F(Info, JsonAddsDriversAndDevicesToTheListKeys) {
    ModuleInfo e1000 = module("e1000");
    e1000.drivers = {"pci:e1000"};
    const auto json = moduleDetailsJson(e1000);
    EXPECT_EQ(json["name"], "e1000");
    EXPECT_EQ(json["drivers"].dump(), R"(["pci:e1000"])");
    EXPECT_EQ(json["devices"].dump(), "[]");
    EXPECT_TRUE(json["loaded_at"].is_null());
}

TEST(Load, SaysEachInsertedModuleInOrder) {
    EXPECT_EQ(formatLoadResult("vfat", {"fat", "vfat"}), "Inserted fat.\nInserted vfat.\n");
}

TEST(Load, SaysNothingWasInsertedForLoadedOrBuiltinModules) {
    EXPECT_EQ(formatLoadResult("unix", {}),
              "Nothing inserted: 'unix' is already loaded or built in.\n");
}

TEST(Load, JsonHasRequestAndInsertedModules) {
    EXPECT_EQ(loadResultJson("vfat", {"fat", "vfat"}).dump(),
              R"({"request":"vfat","inserted":["fat","vfat"]})");
    EXPECT_EQ(loadResultJson("unix", {}).dump(), R"({"request":"unix","inserted":[]})");
}

TEST(Unload, SaysWhatWasUnloaded) {
    EXPECT_EQ(formatUnloadResult("dummy"), "Unloaded dummy.\n");
    EXPECT_EQ(unloadResultJson("rtnl-link-dummy", "dummy").dump(),
              R"({"request":"rtnl-link-dummy","unloaded":"dummy"})");
}

TEST(Meaning, SaysWhichModuleAnAliasStandsFor) {
    EXPECT_EQ(formatMeaning("fs-vfat", "vfat"), "fs-vfat is vfat.\n");
    EXPECT_EQ(formatMeaning("pci:v00008086d0000100E", "e1000"),
              "pci:v00008086d0000100E is e1000.\n");
}

TEST(Meaning, SaysNothingForTheModulesOwnNameInEitherSpelling) {
    EXPECT_EQ(formatMeaning("vfat", "vfat"), "");
    EXPECT_EQ(formatMeaning("nls-cp437", "nls_cp437"), "");
}

TEST(Pin, JsonNamesTheRequestAndTheModule) {
    EXPECT_EQ(pinResultJson("fs-vfat", "vfat", true).dump(),
              R"({"request":"fs-vfat","module":"vfat","pinned":true})");
}

TEST(Json, ReplacesInvalidUtf8InsteadOfThrowing) {
    EXPECT_EQ(dumpJson(unloadResultJson("a\xff", "a")),
              "{\n  \"request\": \"a\xef\xbf\xbd\",\n  \"unloaded\": \"a\"\n}\n");
}

TEST(Json, ShortIsOneLineAndPrettyIsIndented) {
    const auto value = loadResultJson("vfat", {"fat", "vfat"});
    EXPECT_EQ(dumpJson(value, JsonMode::Short),
              "{\"request\":\"vfat\",\"inserted\":[\"fat\",\"vfat\"]}\n");
    EXPECT_EQ(
        dumpJson(value, JsonMode::Pretty),
        "{\n  \"request\": \"vfat\",\n  \"inserted\": [\n    \"fat\",\n    \"vfat\"\n  ]\n}\n");
}

TEST(Output, EscapesNamesFromTheBus) {
    EXPECT_EQ(formatUnloadResult("a\nb"), "Unloaded a\\x0ab.\n");
    EXPECT_EQ(formatLoadResult("x", {"\x1b"}), "Inserted \\x1b.\n");
}

// Failure sentences

TEST(CallFailure, QuotesTheDaemonsMessage) {
    const BusFailure failure{"org.lkmd1.Error.InUse", "module is in use (refcnt 1)", EBUSY};
    EXPECT_EQ(describeCallFailure(Command::Unload, "dummy", failure),
              "lkmctl: cannot unload 'dummy': module is in use (refcnt 1)");
}

TEST(CallFailure, FallsBackToTheSharedReasonWhenTheMessageIsEmpty) {
    const BusFailure failure{"org.lkmd1.Error.NoSuchModule", "", ENOENT};
    EXPECT_EQ(describeCallFailure(Command::Load, "nosuch", failure),
              "lkmctl: cannot load 'nosuch': no such module");
}

TEST(CallFailure, FallsBackToStrerrorForUnknownNamesWithoutMessage) {
    const BusFailure failure{"System.Error.ENOMEM", "", ENOMEM};
    EXPECT_EQ(describeCallFailure(Command::Info, "x", failure),
              "lkmctl: cannot show 'x': Cannot allocate memory");
}

TEST(CallFailure, NamesTheCapabilityWhenAccessIsDenied) {
    const BusFailure failure{"org.freedesktop.DBus.Error.AccessDenied",
                             "Access to org.lkmd1.Manager.LoadModule() not permitted.", EACCES};
    EXPECT_EQ(describeCallFailure(Command::Load, "dummy", failure),
              "lkmctl: cannot load 'dummy': permission denied (needs CAP_SYS_MODULE or root)");
    EXPECT_EQ(describeCallFailure(Command::List, "", failure),
              "lkmctl: cannot list modules: permission denied");
}

TEST(CallFailure, PassesOnWhatLkmdSaysTheCallerLacks) {
    const BusFailure denied{"org.freedesktop.DBus.Error.AccessDenied",
                            "needs CAP_SYS_MODULE (root) or polkit's authorization for "
                            "org.lkmd1.manage; polkit is not running",
                            EACCES};
    EXPECT_EQ(describeCallFailure(Command::Unload, "vfat", denied),
              "lkmctl: cannot unload 'vfat': permission denied: needs CAP_SYS_MODULE (root) or "
              "polkit's authorization for org.lkmd1.manage; polkit is not running");
    const BusFailure challenge{"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
                               "needs CAP_SYS_MODULE (root) or polkit's authorization for "
                               "org.lkmd1.manage; polkit wants authentication",
                               EACCES};
    EXPECT_EQ(describeCallFailure(Command::Pin, "vfat", challenge),
              "lkmctl: cannot pin 'vfat': permission denied: needs CAP_SYS_MODULE (root) or "
              "polkit's authorization for org.lkmd1.manage; polkit wants authentication");
}

TEST(CallFailure, SaysPlainlyThatLkmdIsNotRunningWhenNobodyOwnsTheName) {
    for (const char *name : {"org.freedesktop.DBus.Error.ServiceUnknown",
                             "org.freedesktop.DBus.Error.NameHasNoOwner"}) {
        const BusFailure failure{name, "The name org.lkmd1 was not provided", ENOENT};
        EXPECT_EQ(describeCallFailure(Command::Load, "dummy", failure),
                  "lkmctl: lkmd is not running");
        EXPECT_EQ(describeCallFailure(Command::List, "", failure, "on root@web"),
                  "lkmctl: lkmd is not running on root@web");
        EXPECT_EQ(exitStatusFor(Command::Load, failure), kExitNotRunning);
        EXPECT_EQ(exitStatusFor(Command::Status, failure), kExitNotLoaded);
    }
}

TEST(CallFailure, SaysWhenLkmdCouldNotBeStarted) {
    const BusFailure failure{"org.freedesktop.DBus.Error.Spawn.ChildExited",
                             "Process org.lkmd1 exited with status 1", ECHILD};
    EXPECT_EQ(describeCallFailure(Command::List, "", failure),
              "lkmctl: lkmd could not be started: Process org.lkmd1 exited with status 1");
    EXPECT_EQ(exitStatusFor(Command::List, failure), kExitNotRunning);
}

TEST(CallFailure, SaysTheBusIsUnreachableWhenTheConnectionBreaks) {
    const BusFailure refused{"System.Error.ECONNREFUSED", "", ECONNREFUSED};
    EXPECT_EQ(describeCallFailure(Command::List, "", refused),
              "lkmctl: cannot reach the system bus: Connection refused");
    const BusFailure reset{"org.freedesktop.DBus.Error.Disconnected", "Disconnected", ECONNRESET};
    EXPECT_EQ(describeCallFailure(Command::Load, "x", reset),
              "lkmctl: cannot reach the system bus: Disconnected");
}

TEST(ExitStatus, TellsNotLoadedAndNoSuchModuleFromOtherFailures) {
    EXPECT_EQ(exitStatusFor(Command::Unload, {"org.lkmd1.Error.NotLoaded", "", ESRCH}),
              kExitNotLoaded);
    EXPECT_EQ(exitStatusFor(Command::Info, {"org.lkmd1.Error.NoSuchModule", "", ENOENT}),
              kExitNoSuchModule);
    EXPECT_EQ(exitStatusFor(Command::Pin, {"org.lkmd1.Error.External", "", EREMOTE}), kExitFailure);
    EXPECT_EQ(exitStatusFor(Command::Unload, {"org.lkmd1.Error.InUse", "", EBUSY}), kExitFailure);
    EXPECT_EQ(std::vector<int>({kExitSuccess, kExitFailure, kExitUsage, kExitNotLoaded,
                                kExitNoSuchModule, kExitNotRunning}),
              std::vector<int>({0, 1, 2, 3, 4, 7}))
        << "documented in lkmctl(1)";
}

TEST(CallFailure, SaysTheDaemonDidNotReplyInTime) {
    const BusFailure failure{"org.freedesktop.DBus.Error.Timeout", "Connection timed out",
                             ETIMEDOUT};
    EXPECT_EQ(describeCallFailure(Command::Load, "slow", failure),
              "lkmctl: cannot load 'slow': lkmd did not reply in time");
}

TEST(CallFailure, SaysWhatCouldNotBeDone) {
    const BusFailure failure{"System.Error.EIO", "Input/output error", EIO};
    EXPECT_EQ(describeCallFailure(Command::List, "", failure),
              "lkmctl: cannot list modules: Input/output error");
    EXPECT_EQ(describeCallFailure(Command::Status, "", failure),
              "lkmctl: cannot show lkmd's status: Input/output error");
}

TEST(CallFailure, EscapesModuleAndMessage) {
    const BusFailure failure{"org.lkmd1.Error.LoadFailed", "bad\x1b[0m", EIO};
    EXPECT_EQ(describeCallFailure(Command::Load, "a\tb", failure),
              "lkmctl: cannot load 'a\\x09b': bad\\x1b[0m");
}

TEST(ConnectFailure, SaysTheBusIsUnreachableWithTheErrno) {
    EXPECT_EQ(describeConnectFailure(-ENOENT),
              "lkmctl: cannot reach the system bus: No such file or directory");
    EXPECT_EQ(describeConnectFailure(-ENOENT, "in container web"),
              "lkmctl: cannot reach the system bus in container web: No such file or directory");
}

}  // namespace
}  // namespace lkmd::client

// SPDX-License-Identifier: LGPL-2.1-or-later
// lkmctl's requests command and the Device key of module records.
#include <stdlib.h>
#include <time.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bus_failure.h"
#include "cli_args.h"
#include "module_info.h"
#include "output.h"
#include "request_info.h"
#include "time_zone_utc.h"

namespace lkmd::client {
namespace {

using ::testing::HasSubstr;

// 2024-05-01 12:00:00.25 UTC.
constexpr std::uint64_t kNoonUsec = 1714564800ULL * 1000000 + 250000;
constexpr std::uint64_t kUsecPerSec = 1000000;

class Requests : public TimeZonePinnedToUtc {};
class ModuleDevice : public TimeZonePinnedToUtc {};

RequestInfo request(std::string name, std::string result, std::vector<std::string> modules = {},
                    std::uint64_t timeUsec = kNoonUsec) {
    RequestInfo info;
    info.request = std::move(name);
    info.origin = "bus";
    info.timeUsec = timeUsec;
    info.durationUsec = 1500;
    info.result = std::move(result);
    info.modules = std::move(modules);
    return info;
}

// Command line

TEST(CliArgs, ParsesRequestsAsACommandWithoutArgument) {
    const ParseResult result = parseArguments({"--json", "requests", "--no-legend"});
    ASSERT_EQ(result.error, "");
    EXPECT_EQ(result.args.command, Command::Requests);
    EXPECT_EQ(result.args.json, JsonMode::Pretty);
    EXPECT_FALSE(result.args.legend);
    EXPECT_FALSE(takesModule(Command::Requests));
}

TEST(CliArgs, RejectsAnArgumentAfterRequests) {
    EXPECT_EQ(parseArguments({"requests", "vfat"}).error, "unexpected argument 'vfat'");
}

TEST(CliArgs, HelpListsTheRequestsCommand) {
    EXPECT_THAT(helpText(), HasSubstr("  requests "));
}

// a{sv} to RequestInfo

TEST(RequestInfoFromProperties, ReadsEveryDocumentedKey) {
    const RequestInfo info = requestInfoFromProperties({
        {"Request", std::string("pci:v00008086d0000100E")},
        {"Origin", std::string("hotplug")},
        {"Device", std::string("/devices/pci0000:00/0000:00:03.0")},
        {"Time", std::uint64_t{kNoonUsec}},
        {"DurationUsec", std::uint64_t{2500}},
        {"Result", std::string("loaded")},
        {"Message", std::string("")},
        {"Modules", std::vector<std::string>{"e1000"}},
        {"Requester", std::string("pid 9 'udevadm' uid 0")},
        {"RequesterUid", std::int64_t{0}},
        {"RequesterUnit", std::string("systemd-udevd.service")},
    });
    EXPECT_EQ(info.requester.description, "pid 9 'udevadm' uid 0");
    EXPECT_EQ(info.requester.uid, 0);
    EXPECT_EQ(info.requester.unit, "systemd-udevd.service");
    EXPECT_EQ(info.request, "pci:v00008086d0000100E");
    EXPECT_EQ(info.origin, "hotplug");
    EXPECT_EQ(info.device, "/devices/pci0000:00/0000:00:03.0");
    EXPECT_EQ(info.timeUsec, kNoonUsec);
    EXPECT_EQ(info.durationUsec, 2500u);
    EXPECT_EQ(info.result, "loaded");
    EXPECT_EQ(info.message, "");
    EXPECT_EQ(info.modules, std::vector<std::string>{"e1000"});
}

TEST(RequestInfoFromProperties, IgnoresUnknownKeysAndMistypedValues) {
    const RequestInfo info = requestInfoFromProperties({
        {"Request", std::string("fs-vfat")},
        {"Time", std::int64_t{-5}},
        {"Modules", std::string("fat")},
        {"Pid", std::uint64_t{42}},
    });
    EXPECT_EQ(info.request, "fs-vfat");
    EXPECT_EQ(info.timeUsec, 0u);
    EXPECT_TRUE(info.modules.empty());
}

// Text

TEST_F(Requests, KeepTheDaemonsOrderWithModulesSeparatedByCommas) {
    RequestInfo denied = request("fs-cramfs", "denied", {}, kNoonUsec + 2 * kUsecPerSec);
    denied.origin = "kernel";
    denied.message = "denied by Requests=fs-cram*";
    denied.requester.description = "pid 7 'mount' uid 0";
    EXPECT_EQ(formatRequestList({request("fs-vfat", "loaded", {"fat", "vfat"}),
                                 request("no_such_module", "not-found", {}, 0), denied},
                                true),
              "TIME                         REQUEST         ORIGIN  RESULT     MODULES   CAUSE\n"
              "Wed 2024-05-01 12:00:00 UTC  fs-vfat         bus     loaded     fat,vfat  -\n"
              "-                            no_such_module  bus     not-found  -         -\n"
              "Wed 2024-05-01 12:00:02 UTC  fs-cramfs       kernel  denied     -         pid 7 "
              "'mount' uid 0\n"
              "\n"
              "3 requests listed.\n");
}

TEST_F(Requests, WithoutLegendPrintOnlyRows) {
    EXPECT_EQ(formatRequestList({request("loop", "present")}, false),
              "Wed 2024-05-01 12:00:00 UTC  loop  bus  present  -  -\n");
}

TEST_F(Requests, SayRequestInTheSingular) {
    EXPECT_THAT(formatRequestList({request("loop", "loaded", {"loop"})}, true),
                HasSubstr("\n\n1 request listed.\n"));
}

TEST_F(Requests, PrintOnlyTheFooterWhenNoneWereAnswered) {
    EXPECT_EQ(formatRequestList({}, true), "0 requests listed.\n");
    EXPECT_EQ(formatRequestList({}, false), "");
}

TEST_F(Requests, EscapeNamesFromTheBus) {
    EXPECT_THAT(formatRequestList({request("fs-\x1b[2J", "invalid")}, false),
                HasSubstr("fs-\\x1b[2J"));
}

// JSON

TEST_F(Requests, JsonHasTheDocumentedKeysInOrder) {
    RequestInfo failed = request("broken", "failed");
    failed.message = "could not insert 'broken': No such device";
    const auto json = requestListJson({failed});
    ASSERT_EQ(json.size(), 1u);
    EXPECT_EQ(json[0].dump(),
              R"({"request":"broken","origin":"bus","device":"","time":"2024-05-01T12:00:00Z",)"
              R"("time_usec":1714564800250000,"duration_usec":1500,"result":"failed",)"
              R"("message":"could not insert 'broken': No such device","modules":[],)"
              R"("requester":"","requester_uid":-1,"requester_unit":""})");
}

TEST_F(Requests, JsonKeepsTheOrderAndSaysNullForAnUnknownTime) {
    const auto json =
        requestListJson({request("fs-vfat", "loaded", {"fat", "vfat"}), request("b", "x", {}, 0)});
    ASSERT_EQ(json.size(), 2u);
    EXPECT_EQ(json[0]["request"], "fs-vfat");
    EXPECT_EQ(json[0]["modules"].dump(), R"(["fat","vfat"])");
    EXPECT_TRUE(json[1]["time"].is_null());
    EXPECT_EQ(json[1]["time_usec"], 0u);
}

TEST(RequestsJson, OfNoRequestsIsAnEmptyArray) {
    EXPECT_EQ(dumpJson(requestListJson({})), "[]\n");
}

// Failures

TEST(CallFailure, RequestsSaysItCannotListRequests) {
    const BusFailure failure{"org.freedesktop.DBus.Error.UnknownMethod",
                             "Unknown method ListRequests", 0};
    EXPECT_EQ(describeCallFailure(Command::Requests, "", failure),
              "lkmctl: cannot list requests: Unknown method ListRequests");
}

// The Device key of module records

TEST(ModuleInfoFromProperties, ReadsTheDevice) {
    const ModuleInfo info = moduleInfoFromProperties({
        {"Name", std::string("e1000")},
        {"Device", std::string("/devices/pci0000:00/0000:00:03.0")},
    });
    EXPECT_EQ(info.device, "/devices/pci0000:00/0000:00:03.0");
    EXPECT_EQ(moduleInfoFromProperties({}).device, "");
}

TEST_F(ModuleDevice, InfoPrintsADashWhenThereIsNone) {
    ModuleInfo vfat;
    vfat.name = "vfat";
    EXPECT_THAT(formatModuleDetails(vfat, kNoonUsec), HasSubstr("\n      Device: -\n"));
}

TEST_F(ModuleDevice, IsInTheJsonOfListAndInfoAfterTrigger) {
    ModuleInfo e1000;
    e1000.name = "e1000";
    e1000.trigger = "pci:v00008086d0000100E";
    e1000.device = "/devices/pci0000:00/0000:00:03.0";
    const auto details = moduleDetailsJson(e1000);
    EXPECT_EQ(details["device"], "/devices/pci0000:00/0000:00:03.0");
    EXPECT_THAT(details.dump(), HasSubstr(R"("trigger":"pci:v00008086d0000100E","device":)"));
    EXPECT_EQ(moduleListJson({e1000})[0]["device"], "/devices/pci0000:00/0000:00:03.0");
}

TEST_F(ModuleDevice, DoesNotChangeTheListTable) {
    ModuleInfo e1000;
    e1000.name = "e1000";
    e1000.device = "/devices/pci0000:00/0000:00:03.0";
    EXPECT_THAT(formatModuleList({e1000}, true, kNoonUsec), ::testing::Not(HasSubstr("devices")));
}

}  // namespace
}  // namespace lkmd::client

// SPDX-License-Identifier: LGPL-2.1-or-later
// lkmctl status, monitor, requests' filters, times, and the flags that select them.
#include <cerrno>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_args.h"
#include "monitor_output.h"
#include "output.h"
#include "request_info.h"
#include "status_output.h"
#include "terminal.h"
#include "text.h"
#include "time_format.h"
#include "time_zone_utc.h"

namespace lkmd::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// 2024-05-01 12:00:00 UTC.
constexpr std::uint64_t kNoonUsec = 1714564800ULL * 1000000;
constexpr std::uint64_t kSecond = 1000000;

class Status : public TimeZonePinnedToUtc {};
class Monitor : public TimeZonePinnedToUtc {};
class TimeSpec : public TimeZonePinnedToUtc {};

DaemonStatus runningStatus() {
    DaemonStatus status;
    status.version = "0.1.0";
    status.startedAtUsec = kNoonUsec;
    status.hotplugMode = "load";
    status.idleTimeoutKnown = true;
    status.idleTimeoutUsec = 60 * kSecond;
    status.configFiles = {"/etc/lkmd/lkmd.conf", "/etc/lkmd/lkmd.conf.d/50-test.conf"};
    status.kernelModprobe = "/usr/sbin/lkmd-modprobe";
    status.kernelModprobeIsLkmd = true;
    status.modprobeHelper = "/usr/sbin/lkmd-modprobe";
    status.requestCounts = {{"loaded", 12}, {"not-found", 2}};
    return status;
}

ModuleInfo module(std::string name, std::string origin) {
    ModuleInfo info;
    info.name = std::move(name);
    info.origin = std::move(origin);
    return info;
}

TEST_F(Status, ShowsWhatSystemctlStatusWouldOfAService) {
    ModuleInfo pinned = module("vfat", "kernel");
    pinned.pinned = true;
    EXPECT_EQ(formatStatus(runningStatus(), {pinned, module("ext4", "external")},
                           kNoonUsec + 480 * kSecond),
              "● lkmd 0.1.0 on org.lkmd1\n"
              "         Active: running since Wed 2024-05-01 12:00:00 UTC; 8min ago\n"
              "        Hotplug: load\n"
              "   Idle timeout: 1min\n"
              "kernel.modprobe: /usr/sbin/lkmd-modprobe (lkmd's helper: the kernel's requests "
              "reach lkmd)\n"
              "         Config: /etc/lkmd/lkmd.conf\n"
              "                 /etc/lkmd/lkmd.conf.d/50-test.conf\n"
              "        Modules: 2 loaded, 1 of them by lkmd (1 pinned)\n"
              "       Requests: 14 answered: 12 loaded, 2 not-found\n");
}

TEST_F(Status, ShowsConfigErrorsInRed) {
    DaemonStatus status = runningStatus();
    status.configErrors = {"/etc/lkmd/lkmd.conf:3: expected Key=Value, ignoring the file"};
    const std::string text = formatStatus(status, {}, kNoonUsec, true);
    EXPECT_THAT(text, HasSubstr("  Config errors: " + std::string(colorOn(Color::Red, true)) +
                                "/etc/lkmd/lkmd.conf:3: expected Key=Value"));
}

TEST(KernelHelper, SaysWhenTheKernelsRequestsBypassLkmd) {
    DaemonStatus status = runningStatus();
    status.kernelModprobe = "/sbin/modprobe";
    status.kernelModprobeIsLkmd = false;
    EXPECT_EQ(helperVerdict(status), HelperVerdict::Bypassed);
    EXPECT_EQ(describeKernelHelper(status),
              "/sbin/modprobe (not /usr/sbin/lkmd-modprobe: the kernel's requests bypass lkmd)");
}

TEST(KernelHelper, SaysWhenTheKernelIgnoresKernelModprobe) {
    DaemonStatus status = runningStatus();
    status.staticUsermodeHelper = {"/sbin/usermode-helper"};
    EXPECT_EQ(helperVerdict(status), HelperVerdict::Overridden);
    EXPECT_EQ(describeKernelHelper(status),
              "ignored: the kernel runs /sbin/usermode-helper for every helper "
              "(CONFIG_STATIC_USERMODEHELPER)");
    status.staticUsermodeHelper = {""};
    EXPECT_THAT(describeKernelHelper(status), HasSubstr("runs no helper at all"));
}

TEST(KernelHelper, SaysWhenKernelModprobeCannotBeRead) {
    DaemonStatus status = runningStatus();
    status.kernelModprobe = "";
    status.kernelModprobeIsLkmd = false;
    EXPECT_EQ(helperVerdict(status), HelperVerdict::Unknown);
}

TEST(StatusProperties, ReadEveryDocumentedKey) {
    const PropertyMap properties = {
        {"Version", std::string("0.2")},
        {"StartedAt", std::uint64_t{kNoonUsec}},
        {"HotplugMode", std::string("observe")},
        {"IdleTimeoutUsec", std::uint64_t{UINT64_MAX}},
        {"ConfigFiles", std::vector<std::string>{"/etc/lkmd/lkmd.conf"}},
        {"ConfigErrors", std::vector<std::string>{"bad"}},
        {"KernelModprobe", std::string("/sbin/modprobe")},
        {"KernelModprobeIsLkmd", false},
        {"ModprobeHelper", std::string("/usr/sbin/lkmd-modprobe")},
        {"StaticUsermodeHelper", std::vector<std::string>{}},
        {"RequestCounts", Counts{{"denied", 3}}},
    };
    const DaemonStatus status = daemonStatusFromProperties(properties);
    EXPECT_EQ(status.hotplugMode, "observe");
    EXPECT_TRUE(status.idleTimeoutKnown);
    EXPECT_EQ(status.requestCounts.at("denied"), 3u);
    EXPECT_EQ(status.configErrors, std::vector<std::string>{"bad"});
    const std::string text = formatStatus(status, {}, kNoonUsec);
    EXPECT_THAT(text, HasSubstr("Idle timeout: never\n"));
    EXPECT_THAT(text, HasSubstr("Requests: 3 answered: 3 denied\n"));
}

TEST(StatusJson, KeepsTheOldKeysFirstAndSaysItIsRunning) {
    const auto json = statusJson(runningStatus(), {module("vfat", "kernel")});
    std::vector<std::string> keys;
    for (const auto &[key, value] : json.items())
        keys.push_back(key);
    EXPECT_THAT(keys, ::testing::ElementsAre(
                          "version", "modules", "loaded_by_lkmd", "running", "started_at",
                          "started_at_usec", "hotplug_mode", "idle_timeout_usec", "kernel_modprobe",
                          "kernel_modprobe_is_lkmd", "modprobe_helper", "static_usermode_helper",
                          "config_files", "config_errors", "requests"));
    EXPECT_EQ(json["requests"].dump(), R"({"loaded":12,"not-found":2})");
    EXPECT_EQ(notRunningJson().dump(), R"({"running":false})");
}

RequestInfo answered(std::string name, std::string result, std::uint64_t durationUsec) {
    RequestInfo request;
    request.request = std::move(name);
    request.origin = "kernel";
    request.result = std::move(result);
    request.durationUsec = durationUsec;
    request.timeUsec = kNoonUsec;
    return request;
}

TEST_F(Monitor, SaysEachEventOnOneLineAsJournalctlDoes) {
    MonitorEvent loaded{MonitorEvent::Kind::Loaded, kNoonUsec, {}, "fat", "kernel", {}};
    EXPECT_EQ(formatMonitorLine(loaded, false), "May 01 12:00:00 loaded fat (kernel)\n");
    MonitorEvent request{MonitorEvent::Kind::Request,
                         kNoonUsec + kSecond,
                         answered("fs-vfat", "loaded", 12000),
                         {},
                         {},
                         {}};
    request.request.modules = {"fat", "vfat"};
    EXPECT_EQ(formatMonitorLine(request, false),
              "May 01 12:00:01 request fs-vfat from kernel: loaded fat, vfat in 12ms\n");
    MonitorEvent unloaded{MonitorEvent::Kind::Unloaded, kNoonUsec, {}, "vfat", {}, "idle"};
    EXPECT_EQ(formatMonitorLine(unloaded, false), "May 01 12:00:00 unloaded vfat (idle)\n");
}

TEST_F(Monitor, ColoursRefusalsAndSaysWhy) {
    MonitorEvent denied{
        MonitorEvent::Kind::Request, kNoonUsec, answered("fs-cramfs", "denied", 40), {}, {}, {}};
    denied.request.message = "denied by policy (Requests=fs-cramfs)";
    EXPECT_EQ(formatMonitorLine(denied, true),
              "May 01 12:00:00 " + std::string(colorOn(Color::Yellow, true)) +
                  "request fs-cramfs from kernel: denied in 40us: denied by policy "
                  "(Requests=fs-cramfs)\x1b[0m\n");
}

TEST_F(Monitor, JsonIsOneObjectPerEventWithTheRequestsKeys) {
    MonitorEvent request{MonitorEvent::Kind::Request,
                         kNoonUsec + kSecond,
                         answered("fs-vfat", "loaded", 12000),
                         {},
                         {},
                         {}};
    EXPECT_EQ(dumpJson(monitorEventJson(request), JsonMode::Short),
              R"({"event":"request","time":"2024-05-01T12:00:01Z","time_usec":1714564801000000,)"
              R"("request":"fs-vfat","origin":"kernel","device":"",)"
              R"("arrived_at":"2024-05-01T12:00:00Z","arrived_at_usec":1714564800000000,)"
              R"("duration_usec":12000,"result":"loaded","message":"","modules":[],"requester":"",)"
              R"("requester_uid":-1,"requester_unit":""})"
              "\n");
    MonitorEvent unloaded{MonitorEvent::Kind::Unloaded, kNoonUsec, {}, "vfat", {}, "idle"};
    EXPECT_EQ(monitorEventJson(unloaded).dump(),
              R"({"event":"unloaded","time":"2024-05-01T12:00:00Z","time_usec":1714564800000000,)"
              R"("module":"vfat","reason":"idle"})");
}

TEST(SelectRequests, ListsInArrivalOrderNotInTheOrderOfAnswers) {
    RequestInfo slow = answered("slow", "loaded", 1500000);
    RequestInfo fast = answered("fast", "loaded", 10);
    fast.timeUsec = kNoonUsec + kSecond;
    const auto selected = selectRequests({fast, slow}, {}, 0);
    ASSERT_EQ(selected.size(), 2u);
    EXPECT_EQ(selected[0].request, "slow");
}

TEST(SelectRequests, FiltersByOriginResultAndTime) {
    RequestInfo bus = answered("dummy", "loaded", 1);
    bus.origin = "bus";
    RequestInfo old = answered("fs-cramfs", "denied", 1);
    old.timeUsec = kNoonUsec - 3600 * kSecond;
    const std::vector<RequestInfo> all = {bus, old, answered("netdev-x", "not-found", 1)};
    RequestFilter filter;
    filter.origins = {"kernel"};
    EXPECT_EQ(selectRequests(all, filter, 0).size(), 2u);
    filter.results = {"denied", "failed"};
    EXPECT_EQ(selectRequests(all, filter, 0).size(), 1u);
    EXPECT_TRUE(selectRequests(all, filter, kNoonUsec).empty());
}

TEST(SelectRequests, FiltersByRequesterUidAndUnit) {
    RequestInfo root = answered("fs-vfat", "loaded", 1);
    root.requester.uid = 0;
    root.requester.unit = "session-3.scope";
    RequestInfo user = answered("net-pf-38", "loaded", 1);
    user.requester.uid = 1000;
    user.requester.unit = "user@1000.service";
    RequestInfo unknown = answered("fs-hfs", "not-found", 1);  // uid -1: no requester known
    const std::vector<RequestInfo> all = {root, user, unknown};
    RequestFilter filter;
    filter.uids = {1000};
    ASSERT_EQ(selectRequests(all, filter, 0).size(), 1u);
    EXPECT_EQ(selectRequests(all, filter, 0)[0].request, "net-pf-38");
    filter.uids = {0, 1000};
    EXPECT_EQ(selectRequests(all, filter, 0).size(), 2u);
    filter.units = {"session-3.scope"};
    ASSERT_EQ(selectRequests(all, filter, 0).size(), 1u);
    EXPECT_EQ(selectRequests(all, filter, 0)[0].request, "fs-vfat");
    filter.uids = {65534};
    EXPECT_TRUE(selectRequests(all, filter, 0).empty());
}

TEST(CliArgs, ReadsUidsAsNumbersOrUserNames) {
    const ParseResult parsed =
        parseArguments({"requests", "--uid=0,root,1000", "--unit=a.service"});
    ASSERT_EQ(parsed.error, "");
    EXPECT_EQ(parsed.args.filter.uids, (std::vector<std::int64_t>{0, 0, 1000}));
    EXPECT_EQ(parsed.args.filter.units, std::vector<std::string>{"a.service"});
    EXPECT_EQ(parseArguments({"requests", "--uid=-1"}).error,
              "unknown user '-1' (a uid or a user name)");
    EXPECT_EQ(parseArguments({"requests", "--uid=1,"}).error,
              "unknown user '(empty)' (a uid or a user name)");
    EXPECT_EQ(parseArguments({"list", "--unit=a.service"}).error,
              "--origin, --result, --since, --uid and --unit only apply to requests");
}

TEST_F(TimeSpec, UnderstandsJournalctlsSinceForms) {
    const std::uint64_t now = kNoonUsec + 30 * 60 * kSecond;  // 12:30
    std::uint64_t usec = 0;
    ASSERT_TRUE(parseTimeSpec("5min ago", now, &usec));
    EXPECT_EQ(usec, now - 300 * kSecond);
    ASSERT_TRUE(parseTimeSpec("-1h 30min", now, &usec));
    EXPECT_EQ(usec, now - 5400 * kSecond);
    ASSERT_TRUE(parseTimeSpec("today", now, &usec));
    EXPECT_EQ(usec, kNoonUsec - 12 * 3600 * kSecond);
    ASSERT_TRUE(parseTimeSpec("yesterday", now, &usec));
    EXPECT_EQ(usec, kNoonUsec - 36 * 3600 * kSecond);
    ASSERT_TRUE(parseTimeSpec("2024-05-01 12:00", now, &usec));
    EXPECT_EQ(usec, kNoonUsec);
    ASSERT_TRUE(parseTimeSpec("2024-05-01 12:00:07", now, &usec));
    EXPECT_EQ(usec, kNoonUsec + 7 * kSecond);
    ASSERT_TRUE(parseTimeSpec("12:00", now, &usec));
    EXPECT_EQ(usec, kNoonUsec);
    ASSERT_TRUE(parseTimeSpec("@1714564800", now, &usec));
    EXPECT_EQ(usec, kNoonUsec);
}

TEST_F(TimeSpec, RefusesWhatItDoesNotUnderstand) {
    std::uint64_t usec = 0;
    for (const char *text : {"", "soon", "5 parsecs ago", "2024-05-01x", "12:00pm", "@x"})
        EXPECT_FALSE(parseTimeSpec(text, kNoonUsec, &usec)) << text;
}

TEST(Relative, SaysHowLongAgoAsSystemdDoes) {
    const std::uint64_t now = kNoonUsec;
    EXPECT_EQ(formatRelative(now, now), "now");
    EXPECT_EQ(formatRelative(now - 42 * kSecond, now), "42s ago");
    EXPECT_EQ(formatRelative(now - 185 * kSecond, now), "3min 5s ago");
    EXPECT_EQ(formatRelative(now - 480 * kSecond, now), "8min ago");
    EXPECT_EQ(formatRelative(now - 3900 * kSecond, now), "1h 5min ago");
    EXPECT_EQ(formatRelative(now - 7 * 3600 * kSecond, now), "7h ago");
    EXPECT_EQ(formatRelative(now - 27 * 3600 * kSecond, now), "1 day 3h ago");
    EXPECT_EQ(formatRelative(now - 3 * 86400 * kSecond, now), "3 days ago");
    EXPECT_EQ(formatRelative(now - 8 * 86400 * kSecond, now), "1 week 1 day ago");
    EXPECT_EQ(formatRelative(now + 42 * kSecond, now), "in 42s");
}

TEST(Sizes, AreHumanReadableInPowersOf1024) {
    EXPECT_EQ(formatBytes(512), "512B");
    EXPECT_EQ(formatBytes(163840), "160.0K");
    EXPECT_EQ(formatBytes(1572864), "1.5M");
}

TEST(Elapsed, ShowsTheUnitThatFits) {
    EXPECT_EQ(formatElapsed(40), "40us");
    EXPECT_EQ(formatElapsed(12345), "12ms");
    EXPECT_EQ(formatElapsed(1500000), "1.5s");
}

TEST(Flags, JsonTakesPrettyShortOrOffAndJIsAuto) {
    EXPECT_EQ(parseArguments({"--json=short", "list"}).args.json, JsonMode::Short);
    EXPECT_EQ(parseArguments({"--json=off", "list"}).args.json, JsonMode::Off);
    EXPECT_EQ(parseArguments({"-j", "list"}).args.json, JsonMode::Auto);
    EXPECT_EQ(parseArguments({"--json=yaml", "list"}).error,
              "unknown JSON mode 'yaml' (pretty, short or off)");
}

TEST(Flags, HostMachineAndTheSystemctlOnes) {
    const CliArgs args = parseArguments({"-H", "root@web", "-l", "--no-pager", "-q", "list"}).args;
    EXPECT_EQ(args.host, "root@web");
    EXPECT_TRUE(args.full);
    EXPECT_FALSE(args.pager);
    EXPECT_TRUE(args.quiet);
    EXPECT_EQ(parseArguments({"--machine=web", "status"}).args.machine, "web");
    EXPECT_EQ(parseArguments({"-H", "a", "-M", "b", "list"}).error,
              "--host and --machine cannot be used together");
}

TEST(Flags, LongOptionsMayBeAbbreviated) {
    EXPECT_FALSE(parseArguments({"--no-pa", "list"}).args.pager);
}

TEST(Flags, HelpIsAlsoACommand) {
    EXPECT_EQ(parseArguments({"help"}).args.command, Command::Help);
}

TEST(Flags, FiltersOnlyApplyToRequestsAndAreChecked) {
    const CliArgs args =
        parseArguments({"requests", "--origin=kernel,bus", "--result=failed", "--since=today"})
            .args;
    EXPECT_EQ(args.filter.origins, (std::vector<std::string>{"kernel", "bus"}));
    EXPECT_EQ(args.filter.results, std::vector<std::string>{"failed"});
    EXPECT_EQ(args.filter.since, "today");
    EXPECT_EQ(parseArguments({"list", "--origin=kernel"}).error,
              "--origin, --result, --since, --uid and --unit only apply to requests");
    EXPECT_EQ(parseArguments({"requests", "--origin=udev"}).error,
              "unknown origin 'udev' (kernel, bus, hotplug or coldplug)");
    EXPECT_EQ(parseArguments({"requests", "--result=ok"}).error,
              "unknown result 'ok' (loaded, present, denied, not-found, invalid or failed)");
}

TEST(Flags, MonitorAndReloadAreCommandsWithoutArgument) {
    EXPECT_EQ(parseArguments({"monitor"}).args.command, Command::Monitor);
    EXPECT_EQ(parseArguments({"reload"}).args.command, Command::Reload);
    EXPECT_EQ(parseArguments({"monitor", "x"}).error, "unexpected argument 'x'");
}

}  // namespace
}  // namespace lkmd::client

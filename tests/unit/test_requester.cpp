// SPDX-License-Identifier: LGPL-2.1-or-later
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core_world.h"
#include "module_request_trace.h"
#include "requester.h"
#include "requester_matcher.h"
#include "temp_dir.h"

using namespace lkmd;
namespace fs = std::filesystem;

TEST(ModuleRequestTrace, ReadsTheRecordOfAMount) {
    const auto record = parseModuleRequestTrace(
        "           mount-812     [000] .....  1234.567890: module_request: fs-vfat wait=1 "
        "call_site=get_fs_type+0x2c/0xb0\n");
    ASSERT_TRUE(record);
    EXPECT_EQ(record->pid, 812);
    EXPECT_EQ(record->comm, "mount");
    EXPECT_EQ(record->name, "fs-vfat");
    EXPECT_TRUE(record->wait);
    EXPECT_EQ(record->callSite, "get_fs_type");
    EXPECT_EQ(record->timestampUsec, 1234567890u);
}

// comm and name are user text: a comm with spaces, dashes and brackets, a mount type with
// spaces and the event's own words in it.
TEST(ModuleRequestTrace, UserTextCannotConfuseTheParser) {
    const auto record = parseModuleRequestTrace(
        "  a-b [9] c-d-77 (   77) [001] d..1.    12.5: module_request: fs-x wait=0 "
        "call_site=y: module_request: z wait=1 call_site=af_alg_bind+0x1/0x2");
    ASSERT_TRUE(record);
    EXPECT_EQ(record->pid, 77);
    EXPECT_EQ(record->comm, "a-b [9] c-d");
    EXPECT_EQ(record->name, "fs-x wait=0 call_site=y: module_request: z");
    EXPECT_TRUE(record->wait);
    EXPECT_EQ(record->callSite, "af_alg_bind");
    EXPECT_EQ(record->timestampUsec, 12'500'000u);
}

TEST(ModuleRequestTrace, KeepsTheModuleOfTheCallSite) {
    const auto record = parseModuleRequestTrace(
        " lkmd-vmtools-298 [000] ..... 88.1: module_request: algif-aead wait=1 "
        "call_site=alg_bind+0x5c/0x1a0 [af_alg]");
    ASSERT_TRUE(record);
    EXPECT_EQ(record->callSite, "alg_bind [af_alg]");
    EXPECT_EQ(record->comm, "lkmd-vmtools");
}

TEST(ModuleRequestTrace, RefusesOtherEventsAndJunk) {
    for (const char *line : {"", "# tracer: nop", "   sh-1 [000] ..... 1.0: sched_switch: prev=x",
                             "   sh-1 [000] ..... 1.0: module_request: wait=1 call_site=x",
                             "   sh-1 [000] ..... 1.0: module_request: fs-a wait=2 call_site=x",
                             "   sh-x [000] ..... 1.0: module_request: fs-a wait=1 call_site=x",
                             "   sh-0 [000] ..... 1.0: module_request: fs-a wait=1 call_site=x",
                             "   sh-1 ..... 1.0: module_request: fs-a wait=1 call_site=x",
                             "   sh-1 [000] ..... one: module_request: fs-a wait=1 call_site=x"})
        EXPECT_FALSE(parseModuleRequestTrace(line)) << line;
}

TEST(Requester, TheUnitIsTheLastServiceOrScopeOfTheCgroup) {
    EXPECT_EQ(unitOfCgroup("/user.slice/user-1000.slice/session-3.scope"), "session-3.scope");
    EXPECT_EQ(unitOfCgroup("/system.slice/nginx.service"), "nginx.service");
    EXPECT_EQ(unitOfCgroup("/machine.slice/machine-c1.scope/payload/system.slice/cron.service"),
              "cron.service");
    EXPECT_EQ(unitOfCgroup("/"), "");
    EXPECT_EQ(unitOfCgroup("/init.scope"), "init.scope");
}

// A fake /proc for one process, as the kernel lays it out.
class FakeProc {
public:
    explicit FakeProc(const fs::path &root) : root_(root) {}
    void process(int pid, const std::string &comm, std::uint64_t startTicks, int uid,
                 const std::string &cgroup, const std::string &nspid) {
        const fs::path dir = root_ / std::to_string(pid);
        fs::create_directories(dir);
        std::ofstream(dir / "stat") << pid << " (" << comm << ") S 1 1 1 0 -1 4194560 0 0 0 0 "
                                    << "0 0 0 0 20 0 1 0 " << startTicks << " 0 0\n";
        std::ofstream(dir / "comm") << comm << "\n";
        std::ofstream(dir / "status")
            << "Name:\t" << comm << "\nUid:\t" << uid << "\t" << uid << "\t" << uid << "\t" << uid
            << "\nGid:\t" << uid + 1 << "\t0\t0\t0\nNSpid:\t" << nspid << "\n";
        std::ofstream(dir / "cgroup") << "0::" << cgroup << "\n";
        std::ofstream(dir / "uid_map") << "         0          0 4294967295\n";
    }
    fs::path root_;
};

TEST(Requester, ReadsWhoAskedFromProc) {
    TempDir dir;
    FakeProc proc(dir.path());
    proc.process(812, "mo) unt", 100, 1000, "/user.slice/user-1000.slice/session-3.scope",
                 "812\t1");
    const Requester r = readRequester(dir.path(), 812, std::nullopt);
    ASSERT_TRUE(r.known) << r.unknownBecause;
    EXPECT_EQ(r.comm, "mo) unt");
    EXPECT_EQ(r.uid, 1000);
    EXPECT_EQ(r.gid, 1001);
    EXPECT_EQ(r.unit, "session-3.scope");
    EXPECT_EQ(r.pidns, Namespace::Other);
    EXPECT_EQ(r.userns, Namespace::Initial) << "whole uid_map";
    EXPECT_EQ(r.describe(), "pid 812 'mo) unt' uid 1000 (session-3.scope)");
}

// pids are reused: a process that started after the trace record is not the requester.
TEST(Requester, NeverNamesAProcessThatStartedAfterTheRequest) {
    TempDir dir;
    FakeProc proc(dir.path());
    const std::uint64_t ticks = static_cast<std::uint64_t>(sysconf(_SC_CLK_TCK));
    proc.process(900, "late", 50 * ticks, 0, "/", "900");
    EXPECT_FALSE(readRequester(dir.path(), 900, 49'000'000).known);
    EXPECT_TRUE(readRequester(dir.path(), 900, 51'000'000).known);
    const Requester gone = readRequester(dir.path(), 901, 1);
    EXPECT_FALSE(gone.known);
    EXPECT_EQ(gone.unknownBecause, "pid 901 exited before lkmd looked");
}

namespace {

TraceRecord traceOf(const std::string &name, int pid) {
    TraceRecord record;
    record.name = name;
    record.pid = pid;
    record.comm = "p" + std::to_string(pid);
    return record;
}

class MatcherTest : public ::testing::Test {
protected:
    MatcherTest()
        : matcher_(scheduler_, [](const TraceRecord &record) {
              Requester requester;
              requester.known = true;
              requester.pid = record.pid;
              requester.comm = record.comm;
              return requester;
          }) {
        matcher_.setAvailable();
    }

    ManualScheduler scheduler_;
    RequesterMatcher matcher_;
};

}  // namespace

TEST_F(MatcherTest, ARequestFindsTheRecordThatCameFirst) {
    matcher_.traced(traceOf("fs-vfat", 10));
    std::optional<Requester> who;
    matcher_.identify("fs-vfat", [&](Requester r) { who = r; });
    ASSERT_TRUE(who);
    EXPECT_EQ(who->pid, 10);
    EXPECT_EQ(matcher_.heldRecords(), 0u);
}

TEST_F(MatcherTest, ARequestWaitsABoundedTimeForItsRecord) {
    std::optional<Requester> early;
    std::optional<Requester> never;
    matcher_.identify("fs-vfat", [&](Requester r) { early = r; });
    matcher_.identify("fs-ntfs3", [&](Requester r) { never = r; });
    scheduler_.advanceBy(RequesterMatcher::kTraceWaitUsec / 2);
    matcher_.traced(traceOf("fs-vfat", 11));
    ASSERT_TRUE(early);
    EXPECT_EQ(early->pid, 11);
    EXPECT_FALSE(never);
    scheduler_.advanceBy(RequesterMatcher::kTraceWaitUsec);
    ASSERT_TRUE(never);
    EXPECT_FALSE(never->known);
    EXPECT_EQ(never->unknownBecause, "no trace record of the request came");
}

TEST_F(MatcherTest, ConcurrentRequestersOfOneNameAreEachRecorded) {
    matcher_.traced(traceOf("algif-skcipher", 20));
    matcher_.traced(traceOf("algif-skcipher", 21));
    std::vector<int> pids;
    for (int i = 0; i < 2; ++i)
        matcher_.identify("algif-skcipher", [&](Requester r) { pids.push_back(r.pid); });
    EXPECT_EQ(pids, (std::vector<int>{20, 21}));
}

TEST_F(MatcherTest, WithoutTracingEveryRequesterIsUnknownAndWhy) {
    matcher_.setUnavailable("tracefs unavailable: not mounted at /sys/kernel/tracing");
    matcher_.traced(traceOf("fs-vfat", 10));
    std::optional<Requester> who;
    matcher_.identify("fs-vfat", [&](Requester r) { who = r; });
    ASSERT_TRUE(who);
    EXPECT_FALSE(who->known);
    EXPECT_EQ(who->describe(), "unknown (tracefs unavailable: not mounted at /sys/kernel/tracing)");
}

// A flood of requests the helper never brings (kernel.modprobe points elsewhere) costs bounded
// memory.
TEST_F(MatcherTest, UnpairedRecordsAreBoundedAndExpire) {
    for (int i = 0; i < 5000; ++i)
        matcher_.traced(traceOf("net-pf-" + std::to_string(i % 40), i + 1));
    EXPECT_LE(matcher_.heldRecords(), RequesterMatcher::kMaxRecords);
    scheduler_.advanceBy(RequesterMatcher::kRecordLifetimeUsec + 1);
    matcher_.traced(traceOf("x", 1));
    EXPECT_EQ(matcher_.heldRecords(), 1u);
}

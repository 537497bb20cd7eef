// SPDX-License-Identifier: LGPL-2.1-or-later
#include <cerrno>

#include <gtest/gtest.h>

#include "module_registry.h"
#include "state_file.h"
#include "temp_dir.h"

using namespace lkmd;

namespace {

ModuleRecord onDemand(const std::string &trigger) {
    ModuleRecord record;
    record.origin = Origin::Kernel;
    record.trigger = trigger;
    record.autoclean = true;
    record.identity = 77;
    return record;
}

}  // namespace

TEST(ModuleRegistry, SerializesAndParsesBack) {
    ModuleRegistry registry;
    ModuleRecord record = onDemand("fs-vfat");
    record.device = "/devices/pci0000:00/0000:00:03.0";
    record.pinned = true;
    record.identity = 1234;
    record.loadedAtUsec = 99;
    registry.record("vfat", record);
    ModuleRegistry parsed;
    std::size_t skipped = 1;
    ASSERT_EQ(ModuleRegistry::parse(registry.serialize(), &parsed, &skipped), 0);
    EXPECT_EQ(skipped, 0u);
    const ModuleRecord *back = parsed.find("vfat");
    ASSERT_NE(back, nullptr);
    EXPECT_EQ(back->device, record.device);
    EXPECT_TRUE(back->pinned);
    EXPECT_EQ(back->identity, 1234u);
    EXPECT_EQ(back->loadedAtUsec, 99u);
    EXPECT_EQ(ModuleRegistry::parse("something else\n", &parsed, &skipped), -EINVAL);
}

// Once "-" stood for empty, so that a trigger of "-" came back empty; tabs and newlines were
// replaced. Every text comes back as it was now.
TEST(ModuleRegistry, EveryTextRoundTrips) {
    ModuleRegistry registry;
    for (const std::string trigger : {"", "-", "a\tb", "line\nbreak", "100%", "%41"})
        registry.record("m" + std::to_string(registry.size()), onDemand(trigger));
    ModuleRegistry parsed;
    std::size_t skipped = 0;
    ASSERT_EQ(ModuleRegistry::parse(registry.serialize(), &parsed, &skipped), 0);
    EXPECT_EQ(skipped, 0u);
    ASSERT_EQ(parsed.size(), registry.size());
    for (const auto &[name, record] : registry.records()) {
        ASSERT_NE(parsed.find(name), nullptr) << name;
        EXPECT_EQ(parsed.find(name)->trigger, record.trigger) << name;
    }
}

// The file is read back as root, and names become sysfs paths: what serialize() could not have
// written is skipped, not trusted.
TEST(ModuleRegistry, ParseSkipsWhatSerializeCouldNotHaveWritten) {
    ModuleRegistry one;
    one.record("vfat", onDemand("fs-vfat"));
    const std::string text = one.serialize();
    const std::string header = text.substr(0, text.find('\n') + 1);
    const std::string good = text.substr(header.size());  // "vfat\t...\n"
    const std::string fields = good.substr(4);            // "\t...\n", no name
    auto with = [&](const std::string &from, const std::string &to) {
        std::string line = good;
        line.replace(line.find(from), from.size(), to);
        return line;
    };
    const std::string bad[] = {
        "../../etc" + fields,
        fields,  // no name
        "e1000.x" + fields,
        "nls-cp437" + fields,  // not as the kernel spells it
        with("origin=kernel", "origin=nowhere"),
        with("loaded_at=0", "loaded_at=NaN"),
        with("autoclean=1", "autoclean=2"),
        with("trigger=fs-vfat", "trigger=%4"),
        with("\tpinned=0", ""),                      // a field missing
        with("\tpinned=0", "\tpinned=0\tpinned=1"),  // a field twice
        with("requester_userns=unknown", "requester_userns=maybe"),
        "short\torigin=kernel\n",
    };
    std::string all = header + good;
    for (const std::string &line : bad)
        all += line;
    all += with("\tpinned=0", "\tpinned=0\tfrom_a_newer_lkmd=1").replace(0, 4, "fat_");
    ModuleRegistry parsed;
    std::size_t skipped = 0;
    ASSERT_EQ(ModuleRegistry::parse(all, &parsed, &skipped), 0);
    EXPECT_EQ(skipped, std::size(bad));
    EXPECT_NE(parsed.find("vfat"), nullptr);
    EXPECT_NE(parsed.find("fat_"), nullptr) << "an unknown key costs nothing";
    EXPECT_EQ(parsed.size(), 2u);
}

TEST(ModuleRegistry, ProvenanceRoundTrips) {
    ModuleRegistry registry;
    ModuleRecord record = onDemand("fs-vfat");
    record.need = Need::Dependency;
    record.neededBy = "vfat";
    record.subsystem = "pci";
    record.requester.known = true;
    record.requester.pid = 812;
    record.requester.comm = "mo\tunt";
    record.requester.exe = "/usr/bin/mount";
    record.requester.uid = 1000;
    record.requester.gid = 100;
    record.requester.cgroup = "/user.slice/user-1000.slice/session-3.scope";
    record.requester.unit = "session-3.scope";
    record.requester.userns = Namespace::Other;
    record.requester.pidns = Namespace::Initial;
    record.requester.callSite = "get_fs_type";
    record.requester.fromInitOf = "crypto_user";
    registry.record("fat", record);
    ModuleRegistry parsed;
    std::size_t skipped = 0;
    ASSERT_EQ(ModuleRegistry::parse(registry.serialize(), &parsed, &skipped), 0);
    ASSERT_NE(parsed.find("fat"), nullptr);
    const ModuleRecord &back = *parsed.find("fat");
    EXPECT_EQ(back.need, Need::Dependency);
    EXPECT_EQ(back.neededBy, "vfat");
    EXPECT_EQ(back.subsystem, "pci");
    EXPECT_EQ(back.requester.describe(), record.requester.describe());
    EXPECT_EQ(back.requester.exe, record.requester.exe);
    EXPECT_EQ(back.requester.gid, 100);
    EXPECT_EQ(back.requester.cgroup, record.requester.cgroup);
    EXPECT_EQ(back.requester.pidns, Namespace::Initial);
    EXPECT_EQ(back.requester.netns, Namespace::Unknown);
}

TEST(ModuleRegistry, ReconcileForgetsWhatIsGoneOrLoadedAgain) {
    ModuleRegistry registry;
    registry.record("same", onDemand("a"));
    registry.record("gone", onDemand("b"));
    registry.record("again", onDemand("c"));
    ModuleRecord inserting = onDemand("d");
    inserting.identity = 0;
    inserting.inserting = true;
    registry.record("inserting", inserting);
    const auto forgotten = registry.reconcile([](const std::string &module) -> std::uint64_t {
        if (module == "same")
            return 77;
        return module == "again" ? 78 : 0;
    });
    EXPECT_EQ(forgotten, (std::vector<std::string>{"again", "gone"}));
    EXPECT_NE(registry.find("same"), nullptr);
    EXPECT_NE(registry.find("inserting"), nullptr);
}

TEST(ModuleRegistry, EveryChangeIsAnnounced) {
    ModuleRegistry registry;
    int changes = 0;
    registry.setChangeHandler([&] { ++changes; });
    registry.record("vfat", onDemand("fs-vfat"));
    registry.setPinned("vfat", true);
    registry.setPinned("vfat", true);  // no change
    registry.confirm("vfat", 5);
    registry.forget("vfat");
    registry.forget("vfat");  // nothing to forget
    EXPECT_EQ(changes, 4);
    EXPECT_EQ(registry.setPinned("nothing", true), -ESRCH);
}

// Item 5 of the correctness issue: an insertion lkmd's death interrupted is lkmd's when the
// module is there at the next start.
TEST(RestoreRegistry, KeepsTheSameLoadsAdoptsInterruptedOnesDropsTheRest) {
    ModuleRegistry before;
    before.record("kept", onDemand("a"));
    before.record("reloaded", onDemand("b"));
    before.record("gone", onDemand("c"));
    ModuleRecord interrupted = onDemand("d");
    interrupted.identity = 0;
    interrupted.inserting = true;
    before.record("interrupted", interrupted);
    before.record("never_came", interrupted);

    ModuleRegistry after;
    RestoreCounts counts;
    const int r = restoreRegistry(
        before.serialize(),
        [](const std::string &module) -> std::uint64_t {
            if (module == "kept")
                return 77;
            if (module == "reloaded")
                return 99;
            return module == "interrupted" ? 123 : 0;
        },
        &after, &counts);
    ASSERT_EQ(r, 0);
    EXPECT_EQ(counts.kept, 1u);
    EXPECT_EQ(counts.adopted, 1u);
    EXPECT_EQ(counts.dropped, 3u);
    ASSERT_NE(after.find("interrupted"), nullptr);
    EXPECT_FALSE(after.find("interrupted")->inserting);
    EXPECT_EQ(after.find("interrupted")->identity, 123u);
    EXPECT_EQ(after.find("interrupted")->trigger, "d");
    EXPECT_EQ(after.find("reloaded"), nullptr);
}

TEST(StateFile, WritesTheNewestStateAndNeverAnOlderOne) {
    TempDir dir;
    StateFile file(dir.path() / "modules.state");
    EXPECT_TRUE(file.stage("one"));
    EXPECT_FALSE(file.stage("two")) << "a write is queued already";
    ASSERT_EQ(file.flush(), 0);
    std::string text;
    ASSERT_EQ(file.read(&text), 0);
    EXPECT_EQ(text, "two");
    EXPECT_TRUE(file.stage("three"));
    ASSERT_EQ(file.flush(), 0);
    ASSERT_EQ(file.flush(), 0);  // nothing new: nothing written
    ASSERT_EQ(file.read(&text), 0);
    EXPECT_EQ(text, "three");
}

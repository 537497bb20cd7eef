// SPDX-License-Identifier: LGPL-2.1-or-later
#include <gtest/gtest.h>

#include "load_history.h"

using namespace lkmd;

namespace {

RequestRecord served(const std::string &request, Origin origin,
                     std::vector<std::string> inserted = {}) {
    RequestRecord record;
    record.request = request;
    record.origin = origin;
    record.inserted = std::move(inserted);
    record.timeUsec = 1'700'000'000'000'000;
    record.requester.known = true;
    record.requester.pid = 4242;
    record.requester.comm = "mount";
    record.requester.uid = 0;
    record.requester.unit = "backup.service";
    record.requester.callSite = "get_fs_type";
    return record;
}

}  // namespace

TEST(LoadHistory, KeepsNamesAPersonWouldAllow) {
    LoadHistory history;
    EXPECT_TRUE(history.note(served("fs-vfat", Origin::Kernel, {"fat", "vfat"})));
    RequestRecord device =
        served("pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", Origin::Hotplug, {"e1000"});
    device.device = "/devices/pci0000:00/0000:00:03.0";
    device.subsystem = "pci";
    EXPECT_TRUE(history.note(device));
    ASSERT_EQ(history.entries().size(), 2u);
    const HistoryEntry &vfat = history.entries().at("fs-vfat");
    EXPECT_EQ(vfat.modules, (std::vector<std::string>{"fat", "vfat"}));
    EXPECT_EQ(vfat.who, "'mount' uid 0 (backup.service) from get_fs_type");
    const HistoryEntry &e1000 = history.entries().at("e1000");
    EXPECT_EQ(e1000.origin, "hotplug");
    EXPECT_EQ(e1000.who, "device /devices/pci0000:00/0000:00:03.0 (pci)");
}

TEST(LoadHistory, OnlyWhatWasServed) {
    LoadHistory history;
    RequestRecord refused = served("algif-aead", Origin::Kernel);
    refused.error = -EACCES;
    EXPECT_FALSE(history.note(refused));
    RequestRecord missing = served("net-pf-40", Origin::Kernel);
    missing.error = -ENOENT;
    EXPECT_FALSE(history.note(missing));
    EXPECT_TRUE(history.entries().empty());
    // Found loaded already: needed all the same.
    EXPECT_TRUE(history.note(served("fs-ext4", Origin::Kernel)));
}

TEST(LoadHistory, AgainCountsAndIsNotNews) {
    LoadHistory history;
    EXPECT_TRUE(history.note(served("fs-vfat", Origin::Kernel, {"vfat"})));
    RequestRecord again = served("fs-vfat", Origin::Kernel);
    again.timeUsec += 5;
    EXPECT_FALSE(history.note(again));
    const HistoryEntry &entry = history.entries().at("fs-vfat");
    EXPECT_EQ(entry.count, 2u);
    EXPECT_EQ(entry.lastUsec, entry.firstUsec + 5);
    EXPECT_EQ(entry.modules, (std::vector<std::string>{"vfat"}));
}

TEST(LoadHistory, RoundTripsUserText) {
    LoadHistory history;
    RequestRecord odd = served("fs-vfat", Origin::Kernel, {"vfat"});
    odd.requester.comm = "a\tb\nc%d";
    history.note(odd);
    LoadHistory back;
    std::size_t skipped = 0;
    ASSERT_EQ(LoadHistory::parse(history.serialize(), &back, &skipped), 0);
    EXPECT_EQ(skipped, 0u);
    ASSERT_EQ(back.entries().size(), 1u);
    EXPECT_EQ(back.entries().at("fs-vfat").who, history.entries().at("fs-vfat").who);
    EXPECT_EQ(back.serialize(), history.serialize());
}

TEST(LoadHistory, ParseSkipsWhatSerializeCouldNotHaveWritten) {
    const std::string text =
        "lkmd-history 1\n"
        "fs-vfat\torigin=kernel\tmodules=vfat\twho=x\tcount=1\tfirst=1\tlast=2\n"
        "../x\torigin=kernel\tmodules=vfat\twho=x\tcount=1\tfirst=1\tlast=2\n"
        "fs-a\torigin=martian\tmodules=vfat\twho=x\tcount=1\tfirst=1\tlast=2\n"
        "fs-b\torigin=kernel\tmodules=a/b\twho=x\tcount=1\tfirst=1\tlast=2\n"
        "fs-c\torigin=kernel\tmodules=vfat\twho=x\tcount=-1\tfirst=1\tlast=2\n"
        "fs-d\torigin=kernel\tmodules=vfat\twho=%zz\tcount=1\tfirst=1\tlast=2\n"
        "fs-e\torigin=kernel\tmodules=vfat\n"
        "garbage\n";
    LoadHistory history;
    std::size_t skipped = 0;
    ASSERT_EQ(LoadHistory::parse(text, &history, &skipped), 0);
    EXPECT_EQ(skipped, 7u);
    EXPECT_EQ(history.entries().size(), 1u);
    EXPECT_EQ(LoadHistory::parse("lkmd-history 9\n", &history, &skipped), -EINVAL);
}

TEST(LoadHistory, Bounded) {
    LoadHistory history;
    for (std::size_t i = 0; i < LoadHistory::kMaxEntries + 10; ++i)
        history.note(served("fs-x" + std::to_string(i), Origin::Kernel));
    EXPECT_EQ(history.entries().size(), LoadHistory::kMaxEntries);
}

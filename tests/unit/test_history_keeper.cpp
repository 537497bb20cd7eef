// SPDX-License-Identifier: LGPL-2.1-or-later
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "core_world.h"
#include "history_keeper.h"

using namespace lkmd;

namespace {

RequestRecord served(const std::string &request, std::uint64_t timeUsec) {
    RequestRecord record;
    record.request = request;
    record.origin = Origin::Kernel;
    record.inserted = {request == "fs-vfat" ? "vfat" : request};
    record.timeUsec = timeUsec;
    return record;
}

std::string contents(const std::filesystem::path &path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

class HistoryKeeperTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_NO_FATAL_FAILURE(world_.start("module vfat\n")); }

    std::filesystem::path path() const { return world_.dir.path() / "history"; }
    std::unique_ptr<HistoryKeeper> keeper() {
        return std::make_unique<HistoryKeeper>(path(), *world_.runner, world_.scheduler);
    }

    CoreWorld world_;
};

}  // namespace

TEST_F(HistoryKeeperTest, WritesANewEntryAtOnceOffTheLoop) {
    auto history = keeper();
    history->note(served("fs-vfat", 1000));
    EXPECT_FALSE(std::filesystem::exists(path())) << "written on the loop";
    world_.runner->runAll();
    EXPECT_NE(contents(path()).find("fs-vfat\t"), std::string::npos) << contents(path());
}

TEST_F(HistoryKeeperTest, WritesCountsOfKnownEntriesAtMostOnceAMinute) {
    auto history = keeper();
    history->note(served("fs-vfat", 1000));
    world_.runner->runAll();
    history->note(served("fs-vfat", 2000));
    history->note(served("fs-vfat", 3000));
    EXPECT_EQ(world_.runner->pending(), 0u);
    EXPECT_NE(contents(path()).find("count=1"), std::string::npos);
    world_.scheduler.advanceBy(HistoryKeeper::kCoalesceUsec);
    world_.runner->runAll();
    EXPECT_NE(contents(path()).find("count=3"), std::string::npos) << contents(path());
}

TEST_F(HistoryKeeperTest, RefusedRequestsWakeNothing) {
    auto history = keeper();
    RequestRecord refused = served("fs-cramfs", 1000);
    refused.error = -EACCES;
    refused.inserted.clear();
    history->note(refused);
    world_.scheduler.advanceBy(HistoryKeeper::kCoalesceUsec);
    EXPECT_EQ(world_.runner->pending(), 0u);
    EXPECT_TRUE(history->history().entries().empty());
}

TEST_F(HistoryKeeperTest, FlushAtStopWritesWhatWaitsAndANewLkmdTakesItBack) {
    auto history = keeper();
    history->note(served("fs-vfat", 1000));
    world_.runner->runAll();
    history->note(served("fs-vfat", 2000));
    EXPECT_EQ(history->flush(), 0);

    auto next = keeper();
    EXPECT_EQ(next->restore(), "");
    ASSERT_EQ(next->history().entries().count("fs-vfat"), 1u);
    EXPECT_EQ(next->history().entries().at("fs-vfat").count, 2u);
    EXPECT_EQ(next->history().entries().at("fs-vfat").lastUsec, 2000u);
}

TEST_F(HistoryKeeperTest, AMissingFileIsAnEmptyHistoryWithoutAWord) {
    auto history = keeper();
    EXPECT_EQ(history->restore(), "");
    EXPECT_TRUE(history->history().entries().empty());
}

TEST_F(HistoryKeeperTest, ACorruptFileIsSaidAndStartsEmpty) {
    std::ofstream(path()) << "\x01garbage\nmore\n";
    auto history = keeper();
    EXPECT_NE(history->restore().find("not a load history"), std::string::npos);
    EXPECT_TRUE(history->history().entries().empty());
    history->note(served("fs-vfat", 1000));
    world_.runner->runAll();
    EXPECT_EQ(contents(path()).rfind("lkmd-history 1\n", 0), 0u) << "not replaced";
}

TEST_F(HistoryKeeperTest, BadLinesAreSkippedAndCounted) {
    std::ofstream(path()) << "lkmd-history 1\nnot a line\n";
    auto history = keeper();
    EXPECT_NE(history->restore().find("Skipped 1 invalid"), std::string::npos);
}

TEST_F(HistoryKeeperTest, AnUnwritableDirectoryCostsNothingButTheFile) {
    auto history = std::make_unique<HistoryKeeper>(world_.dir.path() / "missing" / "history",
                                                   *world_.runner, world_.scheduler);
    history->note(served("fs-vfat", 1000));
    world_.runner->runAll();
    EXPECT_EQ(history->history().entries().size(), 1u);
    EXPECT_LT(history->flush(), 0);
}

// SPDX-License-Identifier: LGPL-2.1-or-later
// lkmctl on a terminal: colour, width, cut columns, the pager.
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "output.h"
#include "pager.h"
#include "table.h"
#include "terminal.h"
#include "text.h"
#include "time_zone_utc.h"

namespace lkmd::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A CPU modalias in the kernel's format (print_cpu_modalias()), as long as an x86 guest's: 358
// characters.
const std::string kCpuModalias =
    "cpu:type:x86,ven0000fam0006mod003A:feature:,0000,0001,0002,0003,0004,0005,0006,0007,0008,"
    "0009,000B,000C,000D,000E,000F,0010,0011,0013,0015,0016,0017,0018,0019,001A,001B,001C,001D,"
    "001F,002B,0034,003A,003B,003D,0068,006F,0070,0072,0074,0075,0076,0078,0079,0080,0081,0089,"
    "008C,008D,0091,0093,0094,0095,0096,0097,0098,0099,009A,009B,009C,009D,009E,00C0,00C5,00E1";

Getenv environment(std::map<std::string, std::string> values) {
    return [values](std::string_view name) -> std::optional<std::string> {
        const auto it = values.find(std::string(name));
        return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
}

std::vector<std::string> linesOf(const std::string &text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

class Tables : public TimeZonePinnedToUtc {};

// 2024-05-01 12:00:00 UTC.
constexpr std::uint64_t kNoonUsec = 1714564800ULL * 1000000;

TEST(Colors, AreOnOnlyWhenStdoutAndStderrAreTerminals) {
    const Getenv term = environment({{"TERM", "xterm-256color"}});
    EXPECT_TRUE(colorsWanted(term, true, true));
    EXPECT_FALSE(colorsWanted(term, false, true));
    EXPECT_FALSE(colorsWanted(term, true, false));
}

TEST(Colors, HonourNoColorAndADumbTerminal) {
    EXPECT_FALSE(colorsWanted(environment({{"TERM", "xterm"}, {"NO_COLOR", "1"}}), true, true));
    EXPECT_FALSE(colorsWanted(environment({{"TERM", "xterm"}, {"NO_COLOR", ""}}), true, true));
    EXPECT_FALSE(colorsWanted(environment({{"TERM", "dumb"}}), true, true));
    EXPECT_FALSE(colorsWanted(environment({}), true, true));
}

TEST(Colors, SystemdColorsWinsEitherWay) {
    EXPECT_TRUE(
        colorsWanted(environment({{"SYSTEMD_COLORS", "1"}, {"NO_COLOR", "1"}}), false, false));
    EXPECT_TRUE(colorsWanted(environment({{"SYSTEMD_COLORS", "256"}}), false, false));
    EXPECT_FALSE(
        colorsWanted(environment({{"SYSTEMD_COLORS", "no"}, {"TERM", "xterm"}}), true, true));
}

TEST(Width, IsUnlimitedWhenPipedOrFull) {
    EXPECT_EQ(tableWidth(environment({{"COLUMNS", "80"}}), false, false, 80), 0u);
    EXPECT_EQ(tableWidth(environment({}), true, true, 80), 0u);
}

TEST(Width, TakesColumnsThenTheTerminalThen80) {
    EXPECT_EQ(tableWidth(environment({{"COLUMNS", "120"}}), false, true, 80), 120u);
    EXPECT_EQ(tableWidth(environment({{"COLUMNS", "wide"}}), false, true, 100), 100u);
    EXPECT_EQ(tableWidth(environment({}), false, true, 0), 80u);
}

TEST(Ellipsize, CutsWithOneEllipsisCharacter) {
    EXPECT_EQ(ellipsize("pci:v00008086d0000100E", 10, true), "pci:v0000…");
    EXPECT_EQ(displayWidth(ellipsize("pci:v00008086d0000100E", 10, true)), 10u);
    EXPECT_EQ(ellipsize("pci:v00008086d0000100E", 10, false), "pci:v00...");
    EXPECT_EQ(ellipsize("fs-vfat", 10, true), "fs-vfat");
}

TEST_F(Tables, ListFitsEightyColumnsByCuttingTheTrigger) {
    ModuleInfo kvm;
    kvm.name = "kvm_intel";
    kvm.origin = "coldplug";
    kvm.trigger = kCpuModalias;
    kvm.refCount = 0;
    kvm.loadedAtUsec = kNoonUsec;
    const std::string text =
        formatModuleList({kvm}, true, kNoonUsec + 3600000000ULL, {80, false, true});
    for (const std::string &line : linesOf(text))
        EXPECT_LE(displayWidth(line), 80u) << line;
    EXPECT_THAT(text, HasSubstr("cpu:type:x86,ven0000fam000"));
    EXPECT_THAT(text, HasSubstr("…"));
    EXPECT_THAT(text, HasSubstr("1h 0min ago"));
}

TEST_F(Tables, PipedListKeepsTheWholeTrigger) {
    ModuleInfo kvm;
    kvm.name = "kvm_intel";
    kvm.origin = "coldplug";
    kvm.trigger = kCpuModalias;
    EXPECT_THAT(formatModuleList({kvm}, true, kNoonUsec), HasSubstr(kCpuModalias));
}

TEST_F(Tables, RequestsFitEightyColumnsAndColourFailuresAndRefusals) {
    RequestInfo cpu;
    cpu.request = kCpuModalias;
    cpu.origin = "coldplug";
    cpu.device = "/devices/system/cpu/cpu0";
    cpu.result = "loaded";
    cpu.modules = {"kvm_intel", "kvm"};
    cpu.timeUsec = kNoonUsec;
    RequestInfo denied = cpu;
    denied.request = "fs-cramfs";
    denied.result = "denied";
    RequestInfo failed = cpu;
    failed.request = "broken";
    failed.result = "failed";
    const std::string text = formatRequestList({cpu, denied, failed}, true, {80, true, true});
    for (const std::string &line : linesOf(text)) {
        std::string visible;
        for (std::size_t i = 0; i < line.size(); i++) {
            if (line[i] == '\x1b')
                i = line.find('m', i);  // no colour code counts as a column
            else
                visible += line[i];
        }
        EXPECT_LE(displayWidth(visible), 80u) << line;
    }
    EXPECT_THAT(text, HasSubstr(std::string(colorOn(Color::Yellow, true)) + "denied"));
    EXPECT_THAT(text, HasSubstr(std::string(colorOn(Color::Red, true)) + "failed"));
    EXPECT_THAT(text, Not(HasSubstr(std::string(colorOn(Color::Red, true)) + "loaded")));
}

TEST(Table, ColumnsThatAreNeverCutStayWholeEvenIfTheLineIsTooWide) {
    Table table({{"NAME"}, {"TEXT", Table::Align::Left, 1, 4}});
    table.addRow({std::string(30, 'n'), std::string(30, 't')});
    const std::string line = linesOf(table.format(false, {20, false, true}))[0];
    EXPECT_EQ(line, std::string(30, 'n') + "  ttt…");
}

TEST(Table, ShareTheCutByWeight) {
    Table table({{"A", Table::Align::Left, 3, 1}, {"B", Table::Align::Left, 1, 1}});
    table.addRow({std::string(40, 'a'), std::string(40, 'b')});
    const std::string line = linesOf(table.format(false, {42, false, true}))[0];
    EXPECT_EQ(displayWidth(line), 42u);
    EXPECT_THAT(line, HasSubstr(std::string(9, 'a') + "…"));
    EXPECT_THAT(line, HasSubstr(std::string(29, 'b') + "…"));
}

TEST(Table, NoColourCodesWithoutColours) {
    Table table({{"RESULT"}});
    table.addRow({"failed"}, {Color::Red});
    EXPECT_EQ(table.format(true, {0, false, true}), "RESULT\nfailed\n");
}

TEST(Pager, IsLessWithSystemdsLessOptionsByDefault) {
    const PagerChoice choice = choosePager(environment({}), false, true);
    EXPECT_EQ(choice.argv, std::vector<std::string>{"less"});
    EXPECT_THAT(choice.environment,
                ::testing::Contains(std::pair<std::string, std::string>("LESS", "FRSXMK")));
}

TEST(Pager, SystemdPagerWinsOverPagerAndCatOrEmptyMeanNone) {
    EXPECT_EQ(
        choosePager(environment({{"SYSTEMD_PAGER", "most -s"}, {"PAGER", "more"}}), false, true)
            .argv,
        (std::vector<std::string>{"most", "-s"}));
    EXPECT_TRUE(choosePager(environment({{"SYSTEMD_PAGER", ""}}), false, true).argv.empty());
    EXPECT_TRUE(choosePager(environment({{"PAGER", "cat"}}), false, true).argv.empty());
}

TEST(Pager, SplitsTheCommandAsAShellWould) {
    EXPECT_EQ(
        choosePager(environment({{"PAGER", R"(sh -c 'echo "$LESS"; cat' a\ b)"}}), false, true)
            .argv,
        (std::vector<std::string>{"sh", "-c", R"(echo "$LESS"; cat)", "a b"}));
}

TEST(Pager, KeepsTheUsersLess) {
    const PagerChoice choice = choosePager(environment({{"LESS", "R"}}), false, true);
    EXPECT_THAT(choice.environment,
                Not(::testing::Contains(::testing::Pair("LESS", ::testing::_))));
}

// sudo lkmctl list: a $PAGER that is not less could run commands as root.
TEST(Pager, SecureModeTakesLessWithLessSecureOverAnUntrustedPager) {
    const PagerChoice choice = choosePager(environment({{"PAGER", "vim -"}}), true, true);
    EXPECT_EQ(choice.argv, std::vector<std::string>{"less"});
    EXPECT_THAT(choice.environment,
                ::testing::Contains(std::pair<std::string, std::string>("LESSSECURE", "1")));
}

TEST(Pager, IsSecureUnlessTheCallerOwnsTheSession) {
    EXPECT_FALSE(pagerSecure(environment({}), 1000, 1000));
    EXPECT_TRUE(pagerSecure(environment({}), 0, 1000));
    EXPECT_TRUE(pagerSecure(environment({}), 0, std::nullopt));
    EXPECT_FALSE(pagerSecure(environment({{"SYSTEMD_PAGERSECURE", "0"}}), 0, 1000));
    EXPECT_TRUE(pagerSecure(environment({{"SYSTEMD_PAGERSECURE", "yes"}}), 1000, 1000));
}

}  // namespace
}  // namespace lkmd::client

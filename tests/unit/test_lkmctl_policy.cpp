// SPDX-License-Identifier: LGPL-2.1-or-later
// lkmctl explain and lkmctl policy suggest without the bus: arguments, the text and the drop-in.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_args.h"
#include "explain_output.h"
#include "suggest_output.h"

namespace lkmd::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// 2024-05-01 12:00:00 UTC.
constexpr std::uint64_t kNoonUsec = 1714564800ULL * 1000000;

SuggestionInfo fromHistory(std::string name, std::vector<std::string> modules) {
    SuggestionInfo s;
    s.name = std::move(name);
    s.source = "history";
    s.origin = "kernel";
    s.modules = std::move(modules);
    s.requester = "'mount' uid 0 from get_fs_type";
    s.count = 3;
    s.firstUsec = s.lastUsec = kNoonUsec;
    return s;
}

std::vector<std::string> linesOf(const std::string &text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
        lines.push_back(text.substr(start, end - start));
    return lines;
}

TEST(PolicyArguments, ExplainTakesANameAndPolicyTakesSuggest) {
    ParseResult parsed = parseArguments({"explain", "fs-vfat"});
    EXPECT_EQ(parsed.error, "");
    EXPECT_EQ(parsed.args.command, Command::Explain);
    EXPECT_EQ(parsed.args.module, "fs-vfat");
    EXPECT_EQ(parseArguments({"explain"}).error, "missing module name after 'explain'");

    parsed = parseArguments({"--json", "policy", "suggest"});
    EXPECT_EQ(parsed.error, "");
    EXPECT_EQ(parsed.args.command, Command::PolicySuggest);
    EXPECT_EQ(parseArguments({"policy"}).error, "missing verb after 'policy' (suggest)");
    EXPECT_EQ(parseArguments({"policy", "enforce"}).error,
              "unknown policy verb 'enforce' (suggest)");
    EXPECT_EQ(parseArguments({"policy", "suggest", "x"}).error, "unexpected argument 'x'");
}

TEST(AllowListDropIn, IsAuditModeWithOneAllowLinePerNameUnderWhereItComesFrom) {
    SuggestionInfo loaded;
    loaded.name = "e1000";
    loaded.source = "loaded";
    loaded.loadedAs = "not loaded by lkmd";
    const std::string text = formatAllowListDropIn(
        {loaded, fromHistory("fs-vfat", {"fat", "vfat"})}, kNoonUsec, "/etc/lkmd");
    EXPECT_THAT(text, HasSubstr("on 2024-05-01T12:00:00Z\n"));
    EXPECT_THAT(text, HasSubstr("save it as /etc/lkmd/lkmd.conf.d/50-allow-list.conf\n"));
    EXPECT_THAT(text, HasSubstr("\n[Policy]\nMode=audit\n"));
    EXPECT_THAT(text, HasSubstr("\n# e1000: loaded now, not loaded by lkmd\nAllow=e1000\n"));
    EXPECT_THAT(text, HasSubstr("\n# fs-vfat: served 3 times (kernel), last 2024-05-01T12:00:00Z, "
                                "modules fat, vfat, by 'mount' uid 0 from get_fs_type\n"
                                "Allow=fs-vfat\n"));
}

TEST(AllowListDropIn, WhatThePolicyRefusesAnywayIsCommentedOutWithTheReason) {
    SuggestionInfo sctp = fromHistory("net-pf-10-proto-132", {"sctp"});
    sctp.refusedBy = "refused by the rule at /usr/lib/lkmd/profiles/hardened.conf:40: CVE";
    const std::string text = formatAllowListDropIn({sctp}, kNoonUsec, "/etc/lkmd");
    EXPECT_THAT(text, HasSubstr("# refused anyway: refused by the rule at "
                                "/usr/lib/lkmd/profiles/hardened.conf:40: CVE\n"
                                "#Allow=net-pf-10-proto-132\n"));
    EXPECT_THAT(text, Not(HasSubstr("\nAllow=")));
}

TEST(AllowListDropIn, NoTextFromLkmdEndsAComment) {
    SuggestionInfo hostile = fromHistory("fs-vfat", {"vfat"});
    hostile.requester = "'x\nMode=off\n[Deny]' uid 1000";
    hostile.refusedBy = "because\nAllow=*";
    for (const std::string &line :
         linesOf(formatAllowListDropIn({hostile}, kNoonUsec, "/etc/lkmd")))
        EXPECT_TRUE(line.empty() || line[0] == '#' || line == "[Policy]" || line == "Mode=audit")
            << line;
}

TEST(AllowListDropIn, GlobCharactersOfAModaliasAreEscapedAndBadNamesLeftOut) {
    EXPECT_EQ(allowGlobFor("pci:v00008086d*sv*"), "pci:v00008086d\\*sv\\*");
    EXPECT_EQ(allowGlobFor("usb:v1234p[5]?"), "usb:v1234p\\[5]\\?");
    EXPECT_EQ(allowGlobFor("fs-vfat"), "fs-vfat");
    EXPECT_EQ(allowGlobFor("two words"), "");
    EXPECT_EQ(allowGlobFor("#comment"), "");
    SuggestionInfo bad = fromHistory("a b", {});
    EXPECT_THAT(formatAllowListDropIn({bad}, kNoonUsec, "/etc/lkmd"),
                HasSubstr("# not written: not a name lkmd accepts\n"));
}

TEST(AllowListDropIn, SaysSoWhenThereIsNothingToAllow) {
    EXPECT_THAT(formatAllowListDropIn({}, kNoonUsec, "/etc/lkmd"),
                HasSubstr("# Nothing to allow yet"));
}

ExplainInfo ext4() {
    ExplainInfo info;
    info.request = "fs-ext4";
    info.modules = {"ext4"};
    info.steps = {{"jbd2", "ext4", "dependency", "loaded", "", false},
                  {"crc32c_generic", "ext4", "soft dependency", "not loaded", "", false},
                  {"ext4", "ext4", "requested", "not loaded", "nodelalloc", true}};
    info.rules = {{"/etc/lkmd/lkmd.conf:3", "[Policy] Allow=fs-*", "", "audit"}};
    info.judgements = {{"root", "loads", ""},
                       {"uid 65534 in a user namespace", "refused", "refused by the rule"}};
    info.idleTimeout = "1min after nothing uses it";
    return info;
}

TEST(Explanation, ShowsStepsRulesWithFileAndLineAndVerdictsInColumns) {
    EXPECT_EQ(formatExplanation(ext4(), false),
              "'fs-ext4' resolves to ext4.\n"
              "\n"
              "A load would insert, in this order:\n"
              "  jbd2            dependency of ext4       loaded\n"
              "  crc32c_generic  soft dependency of ext4  not loaded\n"
              "  ext4            requested                not loaded, options nodelalloc, "
              "through an install command\n"
              "\n"
              "Policy:\n"
              "  /etc/lkmd/lkmd.conf:3: [Policy] Allow=fs-* [audit]\n"
              "\n"
              "A load asked for by:\n"
              "  root                           loads\n"
              "  uid 65534 in a user namespace  refused: refused by the rule\n"
              "\n"
              "Unloaded when idle: 1min after nothing uses it.\n");
}

TEST(Explanation, SaysWhenNothingResolvesAndNoRuleNamesIt) {
    ExplainInfo info;
    info.request = "fs-nosuch";
    info.lookup = "no such module";
    const std::string text = formatExplanation(info, false);
    EXPECT_THAT(text, HasSubstr("'fs-nosuch' resolves to no module: no such module.\n"));
    EXPECT_THAT(text, HasSubstr("No [Deny] pattern, rule or Allow= entry names it."));
    EXPECT_THAT(text, Not(HasSubstr("A load would insert")));
}

TEST(Explanation, JsonKeepsEveryField) {
    const nlohmann::ordered_json json = explanationJson(ext4());
    EXPECT_EQ(json["steps"][2]["install_command"], true);
    EXPECT_EQ(json["rules"][0]["where"], "/etc/lkmd/lkmd.conf:3");
    EXPECT_EQ(json["judgements"][1]["verdict"], "refused");
}

}  // namespace
}  // namespace lkmd::client

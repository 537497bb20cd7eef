// SPDX-License-Identifier: LGPL-2.1-or-later
#include <fstream>

#include <gtest/gtest.h>

#include "config.h"
#include "temp_dir.h"

using namespace lkmd;

TEST(Config, ParsesDenyLists) {
    Config config;
    std::vector<ConfigDiagnostic> diagnostics;
    ASSERT_TRUE(
        parseConfigText("# comment\n[Deny]\nModules = dccp sctp\nRequests=net-pf-33* "
                        "fs-cramfs\nModules=nls-cp437\n",
                        "a.conf", &config, &diagnostics));
    EXPECT_TRUE(diagnostics.empty());
    EXPECT_EQ(config.policy.denyModules, (std::vector<std::string>{"dccp", "sctp", "nls_cp437"}));
    EXPECT_NE(config.policy.ruleDenyingRequest("net-pf-33-proto-0"), nullptr);
    EXPECT_NE(config.policy.ruleDenyingRequest("fs-cramfs"), nullptr);
    EXPECT_EQ(config.policy.ruleDenyingRequest("fs-vfat"), nullptr);
    EXPECT_TRUE(config.policy.deniesModule("nls_cp437"));
    EXPECT_TRUE(config.policy.deniesModule("nls-cp437"));
}

TEST(Config, EmptyAssignmentResetsTheList) {
    Config config;
    std::vector<ConfigDiagnostic> diagnostics;
    ASSERT_TRUE(parseConfigText("[Deny]\nModules=dccp\nModules=\nModules=sctp\n", "a.conf", &config,
                                &diagnostics));
    EXPECT_EQ(config.policy.denyModules, std::vector<std::string>{"sctp"});
}

TEST(Config, ErrorsNameFileAndLineAndLeaveThePolicyUntouched) {
    Config config;
    config.policy.denyModules = {"kept"};
    std::vector<ConfigDiagnostic> diagnostics;
    EXPECT_FALSE(parseConfigText("[Deny]\nModules=dccp\nModules=../evil\n", "bad.conf", &config,
                                 &diagnostics));
    EXPECT_EQ(config.policy.denyModules, std::vector<std::string>{"kept"});
    ASSERT_FALSE(diagnostics.empty());
    EXPECT_EQ(diagnostics[0].line, 3);
    EXPECT_EQ(formatDiagnostic(diagnostics[0]),
              "bad.conf:3: invalid module name '../evil' in Modules=: contains '/', ignoring the "
              "file");
}

TEST(Config, SyntaxErrorsAreFatalForTheFile) {
    for (const char *text : {"[Deny\nModules=x\n", "Modules=x\n", "[Deny]\njust words\n"}) {
        Config config;
        std::vector<ConfigDiagnostic> diagnostics;
        EXPECT_FALSE(parseConfigText(text, "f.conf", &config, &diagnostics)) << text;
        EXPECT_TRUE(config.policy.denyModules.empty());
    }
}

TEST(Config, UnknownKeysAreReportedAndIgnored) {
    Config config;
    std::vector<ConfigDiagnostic> diagnostics;
    EXPECT_TRUE(
        parseConfigText("[Deny]\nModulez=x\n[Future]\nKey=1\n", "f.conf", &config, &diagnostics));
    ASSERT_EQ(diagnostics.size(), 2u);
    EXPECT_FALSE(diagnostics[0].fatal);
    EXPECT_EQ(diagnostics[0].line, 2);
}

TEST(Config, BadDropInIsSkippedWholeAndOthersStillApply) {
    TempDir dir;
    std::filesystem::create_directories(dir.path() / "lkmd.conf.d");
    std::ofstream(dir.path() / "lkmd.conf") << "[Deny]\nModules=dccp\n";
    std::ofstream(dir.path() / "lkmd.conf.d" / "10-bad.conf") << "[Deny]\nModules=sctp\nbroken\n";
    std::ofstream(dir.path() / "lkmd.conf.d" / "20-good.conf") << "[Deny]\nRequests=fs-cramfs\n";
    std::ofstream(dir.path() / "lkmd.conf.d" / "ignored.txt") << "garbage";
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = loadConfig(dir.path(), &diagnostics);
    EXPECT_EQ(config.policy.denyModules, std::vector<std::string>{"dccp"});
    EXPECT_EQ(config.policy.denyRequests, std::vector<std::string>{"fs-cramfs"});
    ASSERT_FALSE(diagnostics.empty());
    EXPECT_NE(diagnostics[0].file.find("10-bad.conf"), std::string::npos);
}

TEST(Config, MissingDirectoryIsAnEmptyConfiguration) {
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = loadConfig("/nonexistent/lkmd", &diagnostics);
    EXPECT_TRUE(config.policy.denyModules.empty());
    EXPECT_TRUE(diagnostics.empty());
}

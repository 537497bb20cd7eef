// SPDX-License-Identifier: LGPL-2.1-or-later
#include <fstream>

#include <gtest/gtest.h>

#include "config.h"
#include "temp_dir.h"

using namespace lkmd;
namespace fs = std::filesystem;

namespace {

Config parse(const std::string &text, std::vector<ConfigDiagnostic> *diagnostics) {
    Config config;
    parseConfigText(text, "f.conf", &config, diagnostics);
    return config;
}

bool denies(const Config &config, const std::string &module) {
    return config.policy.judgeModule(module, nullptr).refuses();
}

Requester process(std::int64_t uid, Namespace userns, const std::string &unit = "x.service") {
    Requester requester;
    requester.known = true;
    requester.pid = 42;
    requester.uid = uid;
    requester.userns = userns;
    requester.unit = unit;
    return requester;
}

}  // namespace

TEST(Config, ParsesDenyLists) {
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = parse(
        "# comment\n[Deny]\nModules = dccp sctp\nRequests=net-pf-33* fs-cramfs\n"
        "Modules=nls-cp437 can_*\n",
        &diagnostics);
    EXPECT_TRUE(diagnostics.empty());
    EXPECT_TRUE(denies(config, "sctp"));
    EXPECT_TRUE(denies(config, "nls_cp437")) << "a module's '-' is its '_'";
    EXPECT_TRUE(denies(config, "can_raw")) << "globs";
    EXPECT_FALSE(denies(config, "vfat"));
    const Verdict request = config.policy.judgeRequest("net-pf-33-proto-0", nullptr);
    EXPECT_TRUE(request.refuses());
    EXPECT_EQ(request.because, "denied by policy (Requests=net-pf-33* at f.conf:4)");
    EXPECT_EQ(config.policy.judgeModule("sctp", nullptr).because,
              "denied by policy (Modules=sctp at f.conf:3)");
}

TEST(Config, EmptyAssignmentResetsTheList) {
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = parse("[Deny]\nModules=dccp\nModules=\nModules=sctp\n", &diagnostics);
    EXPECT_FALSE(denies(config, "dccp"));
    EXPECT_TRUE(denies(config, "sctp"));
}

// The reason for per-line errors: IdleTimeout=1min 30s (valid for systemd) once cost the whole
// file, [Deny] included, and pcspkr loaded. Every kind of error now costs its own line only.
TEST(Config, NoKindOfErrorCostsTheDenyRulesOfTheSameFile) {
    const std::pair<const char *, const char *> kinds[] = {
        {"malformed header", "[Autoclean\nIdleTimeout=5s\n"},
        {"unknown section", "[Future]\nKey=1\n"},
        {"key before any section", ""},
        {"no '='", "[Autoclean]\njust words\n"},
        {"unknown key", "[Deny]\nModulez=x\n"},
        {"invalid module name", "[Deny]\nModules=../evil e1000.x\n"},
        {"invalid pattern", "[Deny]\nRequests=fs-a/b\n"},
        {"invalid time span", "[Autoclean]\nIdleTimeout=1 minute thirty\n"},
        {"invalid mode", "[Policy]\nMode=auditt\n"},
        {"invalid boolean", "[Hotplug]\nColdplug=maybe\n"},
        {"invalid requester", "[Rule]\nModules=sctp\nRequesters=uid:root\n"},
        {"rule refusing nothing", "[Rule]\nReason=none\n"},
        {"invalid action", "[Rule]\nModules=x\nAction=maybe\n"},
        {"invalid profile name", "[Policy]\nProfile=../x\n"},
        {"invalid entry", "[Autoclean]\nModuleTimeout=vfat\n"},
    };
    for (const auto &[kind, bad] : kinds) {
        std::vector<ConfigDiagnostic> diagnostics;
        const std::string text =
            std::string(kind == std::string("key before any section") ? "Modules=x\n" : "") +
            "[Deny]\nModules=pcspkr\n" + bad + "[Deny]\nModules=sctp\n";
        const Config config = parse(text, &diagnostics);
        EXPECT_FALSE(diagnostics.empty()) << kind << ": not reported";
        EXPECT_TRUE(denies(config, "pcspkr")) << kind << ": the rule before it was lost";
        EXPECT_TRUE(denies(config, "sctp")) << kind << ": the rule after it was lost";
        for (const ConfigDiagnostic &diagnostic : diagnostics)
            EXPECT_GT(diagnostic.line, 0) << kind << ": " << formatDiagnostic(diagnostic);
    }
}

TEST(Config, ABadValueCostsOnlyItselfAndSaysWhere) {
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = parse("[Deny]\nModules=dccp ../evil sctp\n", &diagnostics);
    EXPECT_TRUE(denies(config, "dccp"));
    EXPECT_TRUE(denies(config, "sctp"));
    ASSERT_EQ(diagnostics.size(), 1u);
    EXPECT_EQ(formatDiagnostic(diagnostics[0]),
              "f.conf:2: invalid value '../evil' in Modules=: contains '/', ignoring it");
}

TEST(Config, SystemdTimeSpans) {
    std::vector<ConfigDiagnostic> diagnostics;
    EXPECT_EQ(parse("[Autoclean]\nIdleTimeout=1min 30s\n", &diagnostics).autoclean.idleTimeoutUsec,
              90'000'000u);
    EXPECT_TRUE(diagnostics.empty());
    std::uint64_t usec = 0;
    for (const auto &[text, expected] :
         std::vector<std::pair<std::string, std::uint64_t>>{{"90", 90'000'000},
                                                            {"1h30min", 5'400'000'000},
                                                            {"2.5s", 2'500'000},
                                                            {"500ms", 500'000},
                                                            {"3 weeks", 1'814'400'000'000},
                                                            {" 5 min ", 300'000'000},
                                                            {"never", kNever},
                                                            {"infinity", kNever}}) {
        ASSERT_TRUE(parseTimespan(text, &usec)) << text;
        EXPECT_EQ(usec, expected) << text;
    }
    for (const char *bad : {"", "min", "1 30", "5 mins", "1x", "-1s", "99999999999999999999s"})
        EXPECT_FALSE(parseTimespan(bad, &usec)) << bad;
    EXPECT_EQ(formatTimespan(90'000'000), "1min 30s");
    EXPECT_EQ(formatTimespan(500'000), "500ms");
}

TEST(Config, RulesNameWhoAndWhy) {
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = parse(
        "[Rule]\nModules=nf_tables\nRequesters=user-namespace\n"
        "Except=unit:podman.service\nReason=CVE-2024-1086\n",
        &diagnostics);
    ASSERT_TRUE(diagnostics.empty()) << formatDiagnostic(diagnostics[0]);
    const Policy &policy = config.policy;
    const Requester host = process(0, Namespace::Initial);
    const Requester container = process(1000, Namespace::Other);
    const Requester podman = process(1000, Namespace::Other, "podman.service");
    EXPECT_FALSE(policy.judgeModule("nf_tables", &host).refuses());
    const Verdict refused = policy.judgeModule("nf_tables", &container);
    EXPECT_TRUE(refused.refuses());
    EXPECT_EQ(refused.because, "refused by the rule at f.conf:1: CVE-2024-1086");
    EXPECT_FALSE(policy.judgeModule("nf_tables", &podman).refuses()) << "its exception";
    EXPECT_FALSE(policy.judgeModule("nf_tables", nullptr).refuses())
        << "a device load has no requester to hold against it";
}

// A rule never fails open: lkmd cannot tell who asked, so the rule holds (and no exception
// can be proven).
// A host that needs a module a profile refuses allows it for the one service that needs it.
TEST(Config, AnAllowRuleMakesAnExceptionToOtherRulesNotToDeny) {
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = parse(
        "[Rule]\nModules=algif_aead esp4\nReason=CVE\n"
        "[Rule]\nAction=allow\nModules=algif_aead\n"
        "Requesters=unit:strongswan.service\n"
        "[Deny]\nModules=esp4\n[Rule]\nAction=allow\nModules=esp4\n",
        &diagnostics);
    ASSERT_TRUE(diagnostics.empty());
    const Requester vpn = process(0, Namespace::Initial, "strongswan.service");
    const Requester user = process(1000, Namespace::Initial);
    EXPECT_FALSE(config.policy.judgeModule("algif_aead", &vpn).refuses());
    EXPECT_TRUE(config.policy.judgeModule("algif_aead", &user).refuses());
    EXPECT_TRUE(config.policy.judgeModule("esp4", &vpn).refuses()) << "[Deny] always holds";
}

TEST(Config, AnUnknownRequesterIsHeldToEveryRule) {
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = parse(
        "[Rule]\nModules=nf_tables\nRequesters=user-namespace uid:1000\n"
        "Except=uid:0\n",
        &diagnostics);
    const Requester unknown = unknownRequester("tracefs unavailable");
    EXPECT_TRUE(config.policy.judgeModule("nf_tables", &unknown).refuses());
}

TEST(Config, AuditLetsThroughAndSaysWhatItWouldRefuse) {
    std::vector<ConfigDiagnostic> diagnostics;
    Config config =
        parse("[Policy]\nMode=audit\nAllow=fs-* e1000\n[Rule]\nModules=sctp\n", &diagnostics);
    EXPECT_EQ(config.policy.judgeModule("sctp", nullptr).kind, Verdict::Kind::WouldRefuse);
    EXPECT_EQ(config.policy.judgeAllowed("vfat", "fs-vfat").kind, Verdict::Kind::Allow);
    EXPECT_EQ(config.policy.judgeAllowed("e1000", "pci:v8086d100E").kind, Verdict::Kind::Allow);
    const Verdict outside = config.policy.judgeAllowed("dummy", "rtnl-link-dummy");
    EXPECT_EQ(outside.kind, Verdict::Kind::WouldRefuse);
    EXPECT_EQ(outside.because, "refused as not in the allow-list (Mode=audit at f.conf:2)");
    parseConfigText("[Policy]\nMode=enforce\n", "g.conf", &config, &diagnostics);
    EXPECT_TRUE(config.policy.judgeAllowed("dummy", "rtnl-link-dummy").refuses());
    parseConfigText("[Policy]\nMode=off\n", "h.conf", &config, &diagnostics);
    EXPECT_FALSE(config.policy.hasAllowList());
    EXPECT_EQ(config.policy.judgeModule("sctp", nullptr).kind, Verdict::Kind::Allow);
}

TEST(Config, DenyAlwaysHoldsWhateverTheMode) {
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = parse("[Policy]\nMode=off\n[Deny]\nModules=sctp\n", &diagnostics);
    EXPECT_TRUE(denies(config, "sctp"));
}

TEST(Config, DenyUserNamespacesIsARuleForContainers) {
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = parse("[Policy]\nDenyUserNamespaces=nf_tables nft-*\n", &diagnostics);
    ASSERT_TRUE(diagnostics.empty());
    const Requester container = process(1000, Namespace::Other);
    const Requester host = process(0, Namespace::Initial);
    EXPECT_TRUE(config.policy.judgeModule("nf_tables", &container).refuses());
    EXPECT_TRUE(config.policy.judgeRequest("nft-chain-2-nat", &container).refuses());
    EXPECT_FALSE(config.policy.judgeRequest("nft-chain-2-nat", &host).refuses());
}

namespace {

void write(const fs::path &path, const std::string &text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
}

}  // namespace

// systemd's rules for drop-ins: /etc over /run over /usr/lib, by file name; lkmd.conf from the
// highest directory that has one.
TEST(ConfigFiles, DropInsFollowSystemdsPrecedence) {
    TempDir dir;
    const fs::path etc = dir.path() / "etc", run = dir.path() / "run", lib = dir.path() / "lib";
    write(lib / "lkmd.conf", "[Deny]\nModules=from_lib_main\n");
    write(run / "lkmd.conf", "[Deny]\nModules=from_run_main\n");
    write(lib / "lkmd.conf.d/10-a.conf", "[Deny]\nModules=lib_a\n");
    write(etc / "lkmd.conf.d/10-a.conf", "[Deny]\nModules=etc_a\n");
    write(lib / "lkmd.conf.d/20-b.conf", "[Deny]\nModules=lib_b\n");
    write(run / "lkmd.conf.d/20-b.conf", "");  // masks lib's
    write(lib / "lkmd.conf.d/30-c.conf", "[Deny]\nModules=lib_c\n");
    fs::create_directories(etc / "lkmd.conf.d");
    fs::create_symlink("/dev/null", etc / "lkmd.conf.d/30-c.conf");
    write(lib / "lkmd.conf.d/40-d.conf", "[Deny]\nModules=lib_d\n");
    write(lib / "lkmd.conf.d/notes.txt", "[Deny]\nModules=never\n");
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = loadConfig({{etc, run, lib}}, &diagnostics);
    EXPECT_TRUE(diagnostics.empty());
    for (const char *module : {"from_run_main", "etc_a", "lib_d"})
        EXPECT_TRUE(denies(config, module)) << module;
    for (const char *module : {"from_lib_main", "lib_a", "lib_b", "lib_c", "never"})
        EXPECT_FALSE(denies(config, module)) << module;
}

TEST(ConfigFiles, ProfilesComeWithTheirOwnMode) {
    TempDir dir;
    const fs::path etc = dir.path() / "etc", lib = dir.path() / "lib";
    write(lib / "profiles/hardened.conf",
          "[Rule]\nModules=algif_aead\nReason=CVE-2026-31431\n[Deny]\nModules=ignored\n");
    write(etc / "lkmd.conf", "[Policy]\nMode=enforce\nProfile=hardened:audit nosuch\n");
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = loadConfig({{etc, lib}}, &diagnostics);
    ASSERT_EQ(diagnostics.size(), 2u);
    EXPECT_NE(diagnostics[0].message.find("holds [Rule] sections only"), std::string::npos);
    EXPECT_EQ(formatDiagnostic(diagnostics[1]),
              (etc / "lkmd.conf").string() + ":3: no profile named 'nosuch', ignoring it");
    const Verdict verdict = config.policy.judgeModule("algif_aead", nullptr);
    EXPECT_EQ(verdict.kind, Verdict::Kind::WouldRefuse);
    EXPECT_NE(verdict.because.find("(profile hardened): CVE-2026-31431"), std::string::npos)
        << verdict.because;
    EXPECT_FALSE(denies(config, "ignored"));
}

TEST(ConfigFiles, MissingDirectoriesAreAnEmptyConfiguration) {
    std::vector<ConfigDiagnostic> diagnostics;
    const Config config = loadConfig({{"/nonexistent/a", "/nonexistent/b"}}, &diagnostics);
    EXPECT_TRUE(config.policy.denyModules.empty());
    EXPECT_TRUE(diagnostics.empty());
}

// SPDX-License-Identifier: LGPL-2.1-or-later
#include <gtest/gtest.h>

#include "core_world.h"
#include "explain.h"
#include "timespan.h"

using namespace lkmd;

namespace {

class ExplainTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(
            world_.start("module fat\n"
                         "module vfat deps=fat aliases=fs-vfat\n"
                         "module crc32c_intel init_error=ENODEV\n"
                         "module crc32c_generic\n"
                         "module jbd2\n"
                         "module ext4 deps=jbd2 softdeps=crc32c_intel,crc32c_generic "
                         "aliases=fs-ext4\n"
                         "module algif_aead aliases=algif-aead\n"
                         "module nf_tables aliases=nfnetlink-subsys-10\n"
                         "module e1000 aliases=pci:v00008086d0000100E*\n"
                         "blacklist e1000\n"
                         "builtin unix aliases=net-pf-1\n"));
    }

    Explanation explainWith(const std::string &request, const std::string &config,
                            AutocleanSettings autoclean = {}) {
        Config parsed;
        std::vector<ConfigDiagnostic> diagnostics;
        parseConfigText(config, "/etc/lkmd/lkmd.conf", &parsed, &diagnostics);
        EXPECT_TRUE(diagnostics.empty()) << formatDiagnostic(diagnostics.front());
        return explain(request, parsed.policy, *world_.backend, *world_.coordinator, autoclean);
    }

    static const Explanation::Judgement &judgementOf(const Explanation &e, const std::string &who) {
        for (const Explanation::Judgement &judgement : e.judgements)
            if (judgement.requester == who)
                return judgement;
        ADD_FAILURE() << "no judgement for " << who;
        static const Explanation::Judgement none;
        return none;
    }

    CoreWorld world_;
};

}  // namespace

TEST_F(ExplainTest, ResolutionInLoadOrderWithRolesAndStates) {
    world_.load("fat");
    const Explanation e = explainWith("fs-ext4", "");
    EXPECT_EQ(e.modules, (std::vector<std::string>{"ext4"}));
    std::vector<std::string> order, roles;
    for (const Explanation::Step &step : e.steps) {
        order.push_back(step.module);
        roles.push_back(step.role);
        EXPECT_EQ(step.forModule, "ext4");
    }
    EXPECT_EQ(order, (std::vector<std::string>{"crc32c_intel", "crc32c_generic", "jbd2", "ext4"}));
    EXPECT_EQ(roles, (std::vector<std::string>{"soft dependency", "soft dependency", "dependency",
                                               "requested"}));
    EXPECT_EQ(e.steps.back().state, "not loaded");
    const Explanation vfat = explainWith("fs-vfat", "");
    ASSERT_EQ(vfat.steps.size(), 2u);
    EXPECT_EQ(vfat.steps.front().state, "loaded");
    const Explanation unix = explainWith("net-pf-1", "");
    ASSERT_EQ(unix.steps.size(), 1u);
    EXPECT_EQ(unix.steps.front().state, "built in");
}

TEST_F(ExplainTest, NothingIsLoadedOrLogged) {
    explainWith("fs-vfat", "");
    EXPECT_EQ(world_.kernel->state("vfat"), ModuleState::Absent);
    EXPECT_EQ(world_.runner->pending(), 0u);
    EXPECT_TRUE(world_.requests.records().empty());
}

TEST_F(ExplainTest, ABlacklistedAliasSaysWhyItFindsNothing) {
    const Explanation e = explainWith("pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", "");
    EXPECT_EQ(e.lookup, "no such module");
    EXPECT_EQ(e.hiddenByBlacklist, (std::vector<std::string>{"e1000"}));
    EXPECT_TRUE(explainWith("e1000", "").hiddenByBlacklist.empty());
}

TEST_F(ExplainTest, InvalidNamesAreExplainedAsSuch) {
    const Explanation e = explainWith("..", "");
    EXPECT_NE(e.invalidName.find("'.'"), std::string::npos) << e.invalidName;
    EXPECT_TRUE(e.steps.empty());
    EXPECT_TRUE(e.judgements.empty());
}

TEST_F(ExplainTest, EveryRuleThatAppliesWithWhereAndWhy) {
    const Explanation e = explainWith("fs-vfat",
                                      "[Deny]\n"
                                      "Modules=fat\n"
                                      "[Rule]\n"
                                      "Requests=fs-*\n"
                                      "Requesters=uid:1000\n"
                                      "Reason=no mounts for 1000\n"
                                      "[Rule]\n"
                                      "Modules=ext4\n");
    ASSERT_EQ(e.rules.size(), 2u);
    EXPECT_EQ(e.rules[0].text, "[Deny] Modules=fat");
    EXPECT_EQ(e.rules[0].where, "/etc/lkmd/lkmd.conf:2");
    EXPECT_EQ(e.rules[1].text, "[Rule] Requests=fs-* Requesters=uid:1000");
    EXPECT_EQ(e.rules[1].reason, "no mounts for 1000");
    EXPECT_EQ(e.rules[1].mode, "enforce");
    // fat is a dependency: [Deny] refuses the whole load, for everyone.
    for (const Explanation::Judgement &judgement : e.judgements) {
        EXPECT_EQ(judgement.verdict, "refused") << judgement.requester;
        EXPECT_NE(judgement.because.find("Modules=fat at /etc/lkmd/lkmd.conf:2"), std::string::npos)
            << judgement.because;
    }
}

TEST_F(ExplainTest, VerdictsPerRequesterAsALoadWouldHaveThem) {
    const std::string config =
        "[Policy]\n"
        "DenyUserNamespaces=*\n"
        "[Rule]\n"
        "Modules=algif_aead\n"
        "Except=uid:0\n"
        "Reason=CVE-2026-31431\n";
    const Explanation e = explainWith("algif-aead", config);
    EXPECT_EQ(judgementOf(e, "root").verdict, "loads");
    EXPECT_EQ(judgementOf(e, "uid 65534").verdict, "refused");
    EXPECT_NE(judgementOf(e, "uid 65534").because.find("CVE-2026-31431"), std::string::npos);
    EXPECT_EQ(judgementOf(e, "uid 65534 in a user namespace").verdict, "refused");
    // A device's uevent is no process: rules with an Except= still hold for it.
    EXPECT_EQ(judgementOf(e, "a device (hotplug)").verdict, "refused");

    const Explanation nft = explainWith("nfnetlink-subsys-10", config);
    EXPECT_EQ(judgementOf(nft, "uid 65534").verdict, "loads");
    EXPECT_EQ(judgementOf(nft, "uid 65534 in a user namespace").verdict, "refused");
    EXPECT_NE(judgementOf(nft, "uid 65534 in a user namespace").because.find("DenyUserNamespaces"),
              std::string::npos);
}

TEST_F(ExplainTest, VerdictsDoNotDependOnWhatIsLoaded) {
    world_.load("fat");
    const Explanation e = explainWith("fs-vfat", "[Deny]\nModules=fat\n");
    EXPECT_EQ(judgementOf(e, "root").verdict, "refused");
}

TEST_F(ExplainTest, AuditAndTheAllowList) {
    const Explanation e = explainWith("fs-ext4", "[Policy]\nMode=audit\nAllow=fs-vfat vfat fat\n");
    EXPECT_EQ(judgementOf(e, "root").verdict, "loads (audit: would be refused)");
    EXPECT_NE(judgementOf(e, "root").because.find("allow-list"), std::string::npos);
    ASSERT_EQ(e.rules.size(), 1u);
    EXPECT_EQ(e.rules[0].mode, "audit");

    const Explanation allowed = explainWith("fs-vfat", "[Policy]\nAllow=fs-vfat\n");
    EXPECT_EQ(judgementOf(allowed, "uid 65534").verdict, "loads");
    ASSERT_EQ(allowed.rules.size(), 1u);
    EXPECT_EQ(allowed.rules[0].text, "[Policy] Allow=fs-vfat");
}

TEST_F(ExplainTest, TheIdleTimeoutThatWouldApply) {
    AutocleanSettings autoclean;
    autoclean.idleTimeoutUsec = 90'000'000;
    EXPECT_EQ(explainWith("fs-vfat", "", autoclean).idleTimeoutUsec, 90'000'000u);
    EXPECT_EQ(explainWith("fs-vfat", "", autoclean).idleTimeout.rfind("1min 30s", 0), 0u);
    autoclean.keep = {"vfat"};
    const Explanation kept = explainWith("fs-vfat", "", autoclean);
    EXPECT_EQ(kept.idleTimeoutUsec, kNever);
    EXPECT_NE(kept.idleTimeout.find("Keep="), std::string::npos);
}

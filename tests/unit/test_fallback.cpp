// SPDX-License-Identifier: LGPL-2.1-or-later
#include <gtest/gtest.h>

#include "config.h"
#include "fallback_compile.h"
#include "fallback_policy.h"

using namespace lkmd;

namespace {

ModuleIndex tree() {
    ModuleIndex index;
    index.modules = {"fat", "vfat", "nf_tables", "nft_chain_nat", "algif_aead", "dummy", "e1000"};
    index.dependencies = {{"vfat", {"fat"}}, {"nft_chain_nat", {"nf_tables"}}};
    index.aliases = {{"fs-vfat", "vfat"},
                     {"nfnetlink-subsys-10", "nf_tables"},
                     {"nft-chain-2-nat", "nft_chain_nat"},
                     {"algif-aead", "algif_aead"},
                     {"rtnl-link-dummy", "dummy"},
                     {"pci:v00008086d0000100Esv*", "e1000"}};
    return index;
}

Policy policyOf(const std::string &text) {
    Config config;
    std::vector<ConfigDiagnostic> diagnostics;
    parseConfigText(text, "f.conf", &config, &diagnostics);
    EXPECT_TRUE(diagnostics.empty()) << formatDiagnostic(diagnostics.front());
    return config.policy;
}

fallback::Verdict helperSays(const FallbackFiles &files, const char *name) {
    return fallback::judge(files.helperPolicy, name);
}

}  // namespace

// Deny fat: with lkmd down, a mount of vfat (fs-vfat, an alias of vfat, which needs fat) must
// still fail; kmod's own modprobe refuses fat too.
TEST(Fallback, ADeniedModuleStaysDeniedByAliasAndAsADependency) {
    const FallbackFiles files = compileFallback(policyOf("[Deny]\nModules=fat\n"), tree());
    EXPECT_EQ(helperSays(files, "fat"), fallback::Verdict::Refuse);
    EXPECT_EQ(helperSays(files, "fs-vfat"), fallback::Verdict::Refuse);
    EXPECT_EQ(helperSays(files, "vfat"), fallback::Verdict::Refuse);
    EXPECT_EQ(helperSays(files, "rtnl-link-dummy"), fallback::Verdict::Pass);
    EXPECT_NE(files.modprobeConf.find("install fat " + refusalInstallCommand("fat") + "\n"),
              std::string::npos);
}

// The helper cannot tell who asked: a rule for containers holds for everyone there. kmod is
// not told, since lkmd itself (reading the same modprobe.d) must still load it for root.
TEST(Fallback, ARuleAboutSomeRequestersHoldsForAllInTheHelperOnly) {
    const FallbackFiles files =
        compileFallback(policyOf("[Policy]\nDenyUserNamespaces=nf_tables\n"), tree());
    EXPECT_EQ(helperSays(files, "nfnetlink-subsys-10"), fallback::Verdict::Refuse);
    EXPECT_EQ(helperSays(files, "nft-chain-2-nat"), fallback::Verdict::Refuse);
    EXPECT_TRUE(files.modprobeConf.empty()) << files.modprobeConf;
}

TEST(Fallback, AuditAndAllowRulesDoNotRefuse) {
    const FallbackFiles audit = compileFallback(
        policyOf("[Policy]\nMode=audit\nAllow=fs-*\n[Rule]\nModules=dummy\n"), tree());
    EXPECT_EQ(helperSays(audit, "rtnl-link-dummy"), fallback::Verdict::Pass);
    EXPECT_EQ(helperSays(audit, "algif-aead"), fallback::Verdict::Pass);
    const FallbackFiles allowed = compileFallback(
        policyOf("[Rule]\nModules=algif_aead\n[Rule]\nAction=allow\nModules=algif_aead\n"
                 "Requesters=uid:0\n"),
        tree());
    EXPECT_EQ(helperSays(allowed, "algif-aead"), fallback::Verdict::Refuse);
    EXPECT_TRUE(allowed.modprobeConf.empty()) << "lkmd must still load it for root";
}

TEST(Fallback, AnEnforcedAllowListLetsOnlyItsNamesAndTheirModulesAliasesThrough) {
    const FallbackFiles files = compileFallback(policyOf("[Policy]\nAllow=fs-* e1000\n"), tree());
    EXPECT_EQ(helperSays(files, "fs-vfat"), fallback::Verdict::Pass);
    EXPECT_EQ(helperSays(files, "pci:v00008086d0000100Esv00001AF4"), fallback::Verdict::Pass);
    EXPECT_EQ(helperSays(files, "rtnl-link-dummy"), fallback::Verdict::Refuse);
    EXPECT_TRUE(files.modprobeConf.empty());
}

TEST(Fallback, ABrokenPolicyFileRefusesEverything) {
    EXPECT_EQ(fallback::judge("", "fs-vfat"), fallback::Verdict::Refuse);
    EXPECT_EQ(fallback::judge("something else\n", "fs-vfat"), fallback::Verdict::Refuse);
    EXPECT_EQ(fallback::judge("lkmd-fallback 1\nmaybe x\n", "fs-vfat"), fallback::Verdict::Refuse);
    EXPECT_EQ(fallback::judge("lkmd-fallback 1\n", "fs-vfat"), fallback::Verdict::Pass);
}

// lkmd skips reading the module index when the policy names no module (the default): that
// must never change what is written.
TEST(Fallback, OnlyAPolicyThatNamesModulesNeedsTheIndex) {
    for (const char *text :
         {"", "[Deny]\nRequests=fs-cramfs net-pf-33*\n", "[Policy]\nMode=audit\nAllow=vfat\n",
          "[Policy]\nMode=off\nAllow=vfat\n"}) {
        const Policy policy = policyOf(text);
        EXPECT_FALSE(needsModuleIndex(policy)) << text;
        const FallbackFiles with = compileFallback(policy, tree());
        const FallbackFiles without = compileFallback(policy, ModuleIndex{});
        EXPECT_EQ(with.helperPolicy, without.helperPolicy) << text;
        EXPECT_EQ(with.modprobeConf, without.modprobeConf) << text;
    }
    for (const char *text : {"[Deny]\nModules=fat\n", "[Policy]\nDenyUserNamespaces=nf_tables\n",
                             "[Policy]\nMode=enforce\nAllow=vfat\n"})
        EXPECT_TRUE(needsModuleIndex(policyOf(text))) << text;
}

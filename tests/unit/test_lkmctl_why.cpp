// SPDX-License-Identifier: LGPL-2.1-or-later
// lkmctl why: the chain from a module back to its first cause.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cli_args.h"
#include "module_info.h"
#include "why_chain.h"

namespace lkmd::client {
namespace {

ModuleInfo module(std::string name, std::string origin, std::string trigger) {
    ModuleInfo info;
    info.name = std::move(name);
    info.origin = std::move(origin);
    info.trigger = std::move(trigger);
    info.neededAs = "requested";
    return info;
}

std::vector<std::string> kinds(const std::vector<WhyLink> &chain) {
    std::vector<std::string> result;
    for (const WhyLink &link : chain)
        result.push_back(link.kind);
    return result;
}

TEST(WhyChain, ADependencyGoesBackThroughTheRequestToWhoAsked) {
    ModuleInfo fat = module("fat", "kernel", "fs-vfat");
    fat.neededAs = "dependency";
    fat.neededBy = "vfat";
    fat.requester.description = "pid 812 'mount' uid 0 (session-3.scope), called from get_fs_type";
    EXPECT_EQ(formatWhyChain(whyChain(fat), true),
              "fat \u2190 dependency of vfat \u2190 fs-vfat \u2190 pid 812 'mount' uid 0 "
              "(session-3.scope), called from get_fs_type\n");
    EXPECT_EQ(formatWhyChain(whyChain(fat), false),
              "fat <- dependency of vfat <- fs-vfat <- pid 812 'mount' uid 0 (session-3.scope), "
              "called from get_fs_type\n");
}

TEST(WhyChain, TheModulesOwnNameIsNotARequestOfItsOwn) {
    ModuleInfo dummy = module("dummy", "kernel", "dummy");
    dummy.requester.description = "pid 5 'ip' uid 0";
    EXPECT_EQ(kinds(whyChain(dummy)), (std::vector<std::string>{"module", "requester"}));
}

TEST(WhyChain, ABusLoadSaysSo) {
    ModuleInfo dummy = module("dummy", "bus", "rtnl-link-dummy");
    dummy.requester.description = "pid 9 'lkmctl' uid 0";
    EXPECT_EQ(formatWhyChain(whyChain(dummy), false),
              "dummy <- rtnl-link-dummy (over D-Bus) <- pid 9 'lkmctl' uid 0\n");
}

TEST(WhyChain, ADeviceEndsTheChain) {
    ModuleInfo e1000 = module("e1000", "hotplug", "pci:v00008086d0000100E");
    e1000.device = "/devices/pci0000:00/0000:00:03.0";
    e1000.subsystem = "pci";
    EXPECT_EQ(formatWhyChain(whyChain(e1000), false),
              "e1000 <- pci:v00008086d0000100E <- hotplug of /devices/pci0000:00/0000:00:03.0 "
              "(pci)\n");
    EXPECT_TRUE(whyChainJson(e1000, whyChain(e1000))["requester"].is_null());
}

TEST(WhyChain, AModuleLkmdDidNotLoadHasNoCauseToShow) {
    const std::vector<WhyLink> chain = whyChain(module("ext4", "external", ""));
    EXPECT_EQ(kinds(chain), (std::vector<std::string>{"module", "external"}));
}

TEST(WhyChain, NamesFromTheBusAreEscaped) {
    ModuleInfo odd = module("x", "kernel", "fs-\x1b[2J");
    odd.requester.description = "pid 1 'a\x1b' uid 0";
    EXPECT_EQ(formatWhyChain(whyChain(odd), false), "x <- fs-\\x1b[2J <- pid 1 'a\\x1b' uid 0\n");
}

TEST(WhyChain, JsonHasTheStructuredRequester) {
    ModuleInfo algif = module("algif_aead", "kernel", "algif-aead");
    algif.requester.description = "pid 40 'poc' uid 1000 in a user namespace";
    algif.requester.known = true;
    algif.requester.pid = 40;
    algif.requester.comm = "poc";
    algif.requester.uid = 1000;
    algif.requester.userNamespace = "other";
    algif.requester.callSite = "af_alg_bind";
    const auto json = whyChainJson(algif, whyChain(algif));
    EXPECT_EQ(json["module"], "algif_aead");
    EXPECT_EQ(json["chain"].size(), 3u);
    EXPECT_EQ(json["requester"]["uid"], 1000);
    EXPECT_EQ(json["requester"]["user_namespace"], "other");
    EXPECT_EQ(json["requester"]["call_site"], "af_alg_bind");
}

TEST(CliArgs, WhyTakesOneModule) {
    const ParseResult parsed = parseArguments({"why", "fat"});
    ASSERT_EQ(parsed.error, "");
    EXPECT_EQ(parsed.args.command, Command::Why);
    EXPECT_EQ(parsed.args.module, "fat");
    EXPECT_EQ(parseArguments({"why"}).error, "missing module name after 'why'");
}

}  // namespace
}  // namespace lkmd::client

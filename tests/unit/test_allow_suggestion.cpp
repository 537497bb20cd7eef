// SPDX-License-Identifier: LGPL-2.1-or-later
#include <gtest/gtest.h>

#include "allow_suggestion.h"
#include "config.h"

using namespace lkmd;

namespace {

RequestRecord served(const std::string &request, std::vector<std::string> inserted) {
    RequestRecord record;
    record.request = request;
    record.origin = Origin::Kernel;
    record.inserted = std::move(inserted);
    record.requester.known = true;
    record.requester.comm = "mount";
    record.requester.uid = 0;
    return record;
}

Policy policyOf(const std::string &text) {
    Config config;
    std::vector<ConfigDiagnostic> diagnostics;
    parseConfigText(text, "/etc/lkmd/lkmd.conf", &config, &diagnostics);
    EXPECT_TRUE(diagnostics.empty());
    return config.policy;
}

std::vector<std::string> names(const std::vector<AllowSuggestion> &suggestions) {
    std::vector<std::string> out;
    for (const AllowSuggestion &suggestion : suggestions)
        out.push_back(suggestion.name + "/" + suggestion.source);
    return out;
}

}  // namespace

TEST(AllowSuggestion, HistoryFirstThenWhatIsLoadedAndNotCovered) {
    LoadHistory history;
    history.note(served("fs-vfat", {"fat", "vfat"}));
    ModuleRegistry registry;
    ModuleRecord dummy;
    dummy.trigger = "rtnl-link-dummy";
    registry.record("dummy", dummy);
    const auto suggestions =
        suggestAllowList(history, {"fat", "vfat", "e1000", "dummy"}, registry, Policy{});
    EXPECT_EQ(names(suggestions),
              (std::vector<std::string>{"dummy/loaded", "e1000/loaded", "fs-vfat/history"}));
    EXPECT_EQ(suggestions[0].loadedAs, "loaded by lkmd for rtnl-link-dummy");
    EXPECT_EQ(suggestions[1].loadedAs, "not loaded by lkmd");
    EXPECT_EQ(suggestions[2].history.who, "'mount' uid 0");
}

// A learning period in audit mode may have seen an attack: what the rules refuse anyway is
// marked, never suggested as if it were needed.
TEST(AllowSuggestion, WhatThePolicyRefusesAnywayIsMarked) {
    LoadHistory history;
    history.note(served("algif-aead", {"algif_aead"}));
    history.note(served("fs-vfat", {"fat", "vfat"}));
    const Policy policy = policyOf(
        "[Deny]\nModules=fat\n[Rule]\nModules=algif_aead\n"
        "Reason=CVE-2026-31431\n");
    const auto suggestions = suggestAllowList(history, {"pcspkr"}, ModuleRegistry{}, policy);
    ASSERT_EQ(suggestions.size(), 3u);
    EXPECT_NE(suggestions[0].refusedBy.find("CVE-2026-31431"), std::string::npos);
    EXPECT_NE(suggestions[1].refusedBy.find("Modules=fat"), std::string::npos);
    EXPECT_EQ(suggestions[2].refusedBy, "");
    // In audit, the same rule does not mark it: audit is for learning.
    const Policy audit = policyOf("[Policy]\nMode=audit\n[Rule]\nModules=algif_aead\n");
    EXPECT_EQ(suggestAllowList(history, {}, ModuleRegistry{}, audit)[0].refusedBy, "");
}

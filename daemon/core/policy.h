// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "requester.h"

namespace lkmd {

// A shell glob and where it was written ("/etc/lkmd/lkmd.conf:12"), so that a refusal can name
// its rule.
struct Pattern {
    std::string glob;
    std::string where;

    bool matches(std::string_view text) const;
};

// Whom a rule is about.
struct RequesterMatch {
    enum class Kind { UserNamespace, Uid, Unit, Cgroup };
    Kind kind = Kind::UserNamespace;
    std::string value;  // the uid, the unit's name, the cgroup prefix

    // Unknown requesters match nothing but Kind::UserNamespace, which they match: a rule meant
    // for containers holds when lkmd cannot tell (never fails open).
    bool matches(const Requester &requester) const;
    std::string text() const;  // "user-namespace", "uid:1000", "unit:foo.service"
};

// Parses "user-namespace", "uid:N", "unit:NAME", "cgroup:/PREFIX"; nullptr or why not.
const char *parseRequesterMatch(std::string_view text, RequesterMatch *match);

enum class PolicyMode { Off, Audit, Enforce };
const char *policyModeName(PolicyMode mode);
bool parsePolicyMode(std::string_view text, PolicyMode *mode);

// A refusal with a reason, from a [Rule] section or a profile: modules or requests it is about,
// optionally only for some requesters, with exceptions.
struct Rule {
    std::vector<Pattern> modules;            // over normalized module names
    std::vector<Pattern> requests;           // over requested names
    std::vector<RequesterMatch> requesters;  // empty: anyone
    std::vector<RequesterMatch> except;
    std::string reason;  // shown with the refusal, e.g. "CVE-2026-31431"
    // Action=allow: whom it is about may load these despite other rules and profiles (never
    // despite [Deny]).
    bool allows = false;
    std::string where;               // the section's file:line
    std::string profile;             // set when the rule came from a profile
    std::optional<PolicyMode> mode;  // a profile's own Profile=NAME:MODE; else the policy's

    // requester nullptr: no process asked (a device's uevent): only rules for anyone apply.
    bool appliesTo(const Requester *requester) const;
};

// What the policy says of one module or request.
struct Verdict {
    enum class Kind { Allow, Refuse, WouldRefuse };
    Kind kind = Kind::Allow;
    std::string because;  // "denied by policy (Modules=sctp at /etc/lkmd/lkmd.conf:3)"

    bool refuses() const { return kind == Kind::Refuse; }
};

// A [Deny] pattern, a rule or the allow-list where it is about a request or one of its modules:
// what lkmctl explain lists.
struct PolicyMatch {
    std::string where;   // file:line
    std::string text;    // "[Deny] Modules=fat", "[Rule] Modules=algif_aead Action=allow ..."
    std::string reason;  // a rule's Reason=
    std::string mode;    // how it acts now: "enforce", "audit" or "off"
};

// Everything lkmd refuses, and how. [Deny] always holds; rules and the allow-list follow Mode=
// (audit: load and log "would refuse"; off: ignore).
struct Policy {
    std::vector<Pattern> denyModules;   // [Deny] Modules=
    std::vector<Pattern> denyRequests;  // [Deny] Requests=
    std::vector<Rule> rules;
    std::vector<Pattern> allow;  // [Policy] Allow=: requests or modules; empty: no allow-list
    PolicyMode mode = PolicyMode::Enforce;
    std::string modeWhere;

    // The requester is nullptr for loads no process asked for (hotplug, coldplug).

    // [Deny] Requests= and rules' Requests=, before any lookup.
    Verdict judgeRequest(std::string_view request, const Requester *requester) const;
    // [Deny] Modules= and rules' Modules= for a module a load would insert.
    Verdict judgeModule(std::string_view module, const Requester *requester) const;
    // The allow-list, for the modules a request resolves to (their dependencies come with them).
    Verdict judgeAllowed(std::string_view module, std::string_view request) const;

    bool hasAllowList() const { return !allow.empty() && mode != PolicyMode::Off; }

    // Every entry that names the request or one of the modules, for anyone: whom it applies to
    // is part of its text.
    std::vector<PolicyMatch> about(std::string_view request,
                                   const std::vector<std::string> &modules) const;
};

}  // namespace lkmd

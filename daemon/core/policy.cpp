// SPDX-License-Identifier: LGPL-2.1-or-later
#include "policy.h"

#include <fnmatch.h>

#include <algorithm>
#include <charconv>

namespace lkmd {

bool Pattern::matches(std::string_view text) const {
    return fnmatch(glob.c_str(), std::string(text).c_str(), 0) == 0;
}

bool RequesterMatch::matches(const Requester &requester) const {
    // Whom lkmd cannot tell apart matches every condition: a rule never fails open.
    if (!requester.known)
        return true;
    switch (kind) {
        case Kind::UserNamespace:
            return requester.userns != Namespace::Initial;
        case Kind::Uid:
            return requester.uid >= 0 && std::to_string(requester.uid) == value;
        case Kind::Unit:
            return requester.unit == value;
        case Kind::Cgroup:
            return requester.cgroup == value || requester.cgroup.starts_with(value + "/");
    }
    return true;
}

std::string RequesterMatch::text() const {
    switch (kind) {
        case Kind::UserNamespace:
            return "user-namespace";
        case Kind::Uid:
            return "uid:" + value;
        case Kind::Unit:
            return "unit:" + value;
        case Kind::Cgroup:
            return "cgroup:" + value;
    }
    return "?";
}

const char *parseRequesterMatch(std::string_view text, RequesterMatch *match) {
    if (text == "user-namespace") {
        *match = {RequesterMatch::Kind::UserNamespace, {}};
        return nullptr;
    }
    const std::size_t colon = text.find(':');
    if (colon == std::string_view::npos)
        return "expected user-namespace, uid:N, unit:NAME or cgroup:PATH";
    const std::string_view kind = text.substr(0, colon);
    const std::string value(text.substr(colon + 1));
    if (value.empty())
        return "nothing after ':'";
    if (kind == "uid") {
        std::uint32_t uid = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), uid);
        if (ec != std::errc() || end != value.data() + value.size())
            return "uid: takes a number";
        *match = {RequesterMatch::Kind::Uid, value};
    } else if (kind == "unit") {
        *match = {RequesterMatch::Kind::Unit, value};
    } else if (kind == "cgroup") {
        if (value.front() != '/')
            return "cgroup: takes an absolute path";
        *match = {RequesterMatch::Kind::Cgroup, value.size() > 1 && value.back() == '/'
                                                    ? value.substr(0, value.size() - 1)
                                                    : value};
    } else {
        return "expected user-namespace, uid:N, unit:NAME or cgroup:PATH";
    }
    return nullptr;
}

const char *policyModeName(PolicyMode mode) {
    switch (mode) {
        case PolicyMode::Off:
            return "off";
        case PolicyMode::Audit:
            return "audit";
        case PolicyMode::Enforce:
            return "enforce";
    }
    return "enforce";
}

bool parsePolicyMode(std::string_view text, PolicyMode *mode) {
    for (PolicyMode candidate : {PolicyMode::Off, PolicyMode::Audit, PolicyMode::Enforce})
        if (text == policyModeName(candidate)) {
            *mode = candidate;
            return true;
        }
    return false;
}

bool Rule::appliesTo(const Requester *requester) const {
    if (requester == nullptr)
        return requesters.empty();
    bool chosen = requesters.empty();
    for (const RequesterMatch &match : requesters)
        chosen = chosen || match.matches(*requester);
    if (!chosen)
        return false;
    // An exception must be certain: an unknown requester is nobody's exception.
    for (const RequesterMatch &match : except)
        if (requester->known && match.matches(*requester))
            return false;
    return true;
}

namespace {

std::string ruleSentence(const Rule &rule) {
    std::string text = "refused by the rule at " + rule.where;
    if (!rule.profile.empty())
        text += " (profile " + rule.profile + ")";
    if (!rule.reason.empty())
        text += ": " + rule.reason;
    return text;
}

Verdict byMode(PolicyMode mode, std::string because) {
    if (mode == PolicyMode::Off)
        return {};
    return {mode == PolicyMode::Enforce ? Verdict::Kind::Refuse : Verdict::Kind::WouldRefuse,
            std::move(because)};
}

}  // namespace

namespace {

// The strongest of the rules that match: a refusal beats a "would refuse", which beats nothing.
template <typename Matches>
Verdict strongestRule(const std::vector<Rule> &rules, PolicyMode mode, const Requester *requester,
                      Matches matches) {
    for (const Rule &rule : rules)
        if (rule.allows && matches(rule) && rule.appliesTo(requester))
            return {};
    Verdict verdict;
    for (const Rule &rule : rules) {
        if (rule.allows || !matches(rule) || !rule.appliesTo(requester))
            continue;
        Verdict candidate = byMode(rule.mode.value_or(mode), ruleSentence(rule));
        if (candidate.kind == Verdict::Kind::Refuse)
            return candidate;
        if (candidate.kind == Verdict::Kind::WouldRefuse && verdict.kind == Verdict::Kind::Allow)
            verdict = std::move(candidate);
    }
    return verdict;
}

}  // namespace

Verdict Policy::judgeRequest(std::string_view request, const Requester *requester) const {
    for (const Pattern &pattern : denyRequests)
        if (pattern.matches(request))
            return {Verdict::Kind::Refuse,
                    "denied by policy (Requests=" + pattern.glob + " at " + pattern.where + ")"};
    return strongestRule(rules, mode, requester, [&](const Rule &rule) {
        for (const Pattern &pattern : rule.requests)
            if (pattern.matches(request))
                return true;
        return false;
    });
}

Verdict Policy::judgeModule(std::string_view module, const Requester *requester) const {
    for (const Pattern &pattern : denyModules)
        if (pattern.matches(module))
            return {Verdict::Kind::Refuse,
                    "denied by policy (Modules=" + pattern.glob + " at " + pattern.where + ")"};
    return strongestRule(rules, mode, requester, [&](const Rule &rule) {
        for (const Pattern &pattern : rule.modules)
            if (pattern.matches(module))
                return true;
        return false;
    });
}

Verdict Policy::judgeAllowed(std::string_view module, std::string_view request) const {
    if (!hasAllowList())
        return {};
    for (const Pattern &pattern : allow)
        if (pattern.matches(request) || pattern.matches(module))
            return {};
    return byMode(mode,
                  "refused as not in the allow-list (Mode=" + std::string(policyModeName(mode)) +
                      " at " + (modeWhere.empty() ? "the default" : modeWhere) + ")");
}

namespace {

std::string globs(const std::vector<Pattern> &patterns) {
    std::string text;
    for (const Pattern &pattern : patterns)
        text += (text.empty() ? "" : " ") + pattern.glob;
    return text;
}

std::string whom(const std::vector<RequesterMatch> &matches) {
    std::string text;
    for (const RequesterMatch &match : matches)
        text += (text.empty() ? "" : " ") + match.text();
    return text;
}

std::string ruleText(const Rule &rule) {
    std::string text = rule.profile.empty() ? "[Rule]" : "[Rule] (profile " + rule.profile + ")";
    if (!rule.modules.empty())
        text += " Modules=" + globs(rule.modules);
    if (!rule.requests.empty())
        text += " Requests=" + globs(rule.requests);
    if (!rule.requesters.empty())
        text += " Requesters=" + whom(rule.requesters);
    if (!rule.except.empty())
        text += " Except=" + whom(rule.except);
    if (rule.allows)
        text += " Action=allow";
    return text;
}

}  // namespace

std::vector<PolicyMatch> Policy::about(std::string_view request,
                                       const std::vector<std::string> &modules) const {
    const auto namesAModule = [&](const Pattern &pattern) {
        return std::any_of(modules.begin(), modules.end(),
                           [&](const std::string &module) { return pattern.matches(module); });
    };
    const auto firstOf = [&](const std::vector<Pattern> &patterns, bool byRequest,
                             bool byModule) -> const Pattern * {
        for (const Pattern &pattern : patterns)
            if ((byRequest && pattern.matches(request)) || (byModule && namesAModule(pattern)))
                return &pattern;
        return nullptr;
    };
    std::vector<PolicyMatch> found;
    for (const Pattern &deny : denyRequests)
        if (deny.matches(request))
            found.push_back({deny.where, "[Deny] Requests=" + deny.glob, {}, "enforce"});
    for (const Pattern &deny : denyModules)
        if (namesAModule(deny))
            found.push_back({deny.where, "[Deny] Modules=" + deny.glob, {}, "enforce"});
    for (const Rule &rule : rules)
        if (firstOf(rule.modules, false, true) || firstOf(rule.requests, true, false))
            found.push_back({rule.where, ruleText(rule), rule.reason,
                             rule.allows ? "allow" : policyModeName(rule.mode.value_or(mode))});
    if (!allow.empty()) {
        if (const Pattern *allowed = firstOf(allow, true, true))
            found.push_back(
                {allowed->where, "[Policy] Allow=" + allowed->glob, {}, policyModeName(mode)});
        else
            found.push_back({modeWhere,
                             "[Policy] Allow= (an allow-list) names none of them",
                             {},
                             policyModeName(mode)});
    }
    return found;
}

}  // namespace lkmd
